"""Cost of the instrumentation hook points: bench_producer / bench_consumer with and without the plugin.

Usage::

    .venv/bin/python benchmarks/bench_telemetry.py [--count N] [--repeat R]

Runs ``bench_producer.py`` (``ours-send-amqp``, ``ours-batch-amqp``) and ``bench_consumer.py``
(rabbitstream only) as subprocesses, interleaved, R times, in three set-ups:

* ``without``: the ``opentelemetry`` entry point blocked (``RABBITSTREAM_DISABLED_PLUGINS``): the
  registry holds no instrumentation, exactly as when ``rabbitstream-opentelemetry`` is not installed,
  so producers and consumers use their plain classes (no observer, no call per message);
* ``installed``: the plugin loaded, OpenTelemetry API only (no SDK: the global providers are no-ops);
* ``sdk``: the plugin plus the OpenTelemetry SDK, spans to an in-memory exporter through a
  ``BatchSpanProcessor`` and metrics to an in-memory reader (a real application's set-up, minus the
  network export), every trace sampled;
* ``sdk-1%``: the same with ``ParentBased(TraceIdRatioBased(0.01))``: 1 % of the traces recorded
  (the trace context is still carried by every message).

Prints each run's figures and, at the end, the best run of each mode per set-up.  Figures only, never
asserted; they move a lot on a shared machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_LINE = re.compile(r"^(?P<mode>[a-z][a-z -]*?)\s{2,}(?P<rate>[\d,]+) msg/s", re.M)

_SDK = """
import runpy, sys
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
ratio = float(sys.argv.pop(1))
tp = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
tp.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=1 << 20))
trace.set_tracer_provider(tp)
metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""

SETUPS = ("without", "installed", "sdk", "sdk-1%")


def _run(setup: str, script: str, args: list[str]) -> str:
    env = dict(os.environ)
    env.pop("RABBITSTREAM_DISABLED_PLUGINS", None)
    cmd = [sys.executable, str(HERE / script), *args]
    if setup == "without":
        env["RABBITSTREAM_DISABLED_PLUGINS"] = "opentelemetry"
    elif setup.startswith("sdk"):
        ratio = "0.01" if setup == "sdk-1%" else "1.0"
        cmd = [sys.executable, "-c", _SDK, ratio, str(HERE / script), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{setup} {script} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    best: dict[tuple[str, str], int] = {}
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for r in range(opts.repeat):
        for setup in SETUPS:
            outs = [
                _run(
                    setup,
                    "bench_producer.py",
                    ["--count", str(opts.count), "--modes", "ours-send-amqp,ours-batch-amqp"],
                ),
                _run(
                    setup,
                    "bench_consumer.py",
                    ["--count", str(opts.count), "--skip-rstream", "--rss-seconds", "0"],
                ),
            ]
            for out in outs:
                for m in _LINE.finditer(out):
                    mode = m["mode"].strip()
                    rate = int(m["rate"].replace(",", ""))
                    print(f"run {r + 1} {setup:<10} {mode:<18} {rate:>12,} msg/s", flush=True)
                    best[(mode, setup)] = max(best.get((mode, setup), 0), rate)
    modes = list(dict.fromkeys(mode for mode, _ in best))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nbest of {opts.repeat} (count {opts.count:,}); load average {load}")
    print(f"{'mode':<18}" + "".join(f"{s:>12}" for s in SETUPS) + "   ratios to 'without'")
    for mode in modes:
        rates = [best.get((mode, s), 0) for s in SETUPS]
        base = rates[0] or 1
        ratios = " ".join(f"{x / base:.2f}" for x in rates[1:])
        print(f"{mode:<18}" + "".join(f"{x:>12,}" for x in rates) + f"   {ratios}")


if __name__ == "__main__":
    main()
