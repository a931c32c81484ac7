"""``rabbitstream perf`` against the real broker (short runs; figures are printed, never asserted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from support.process import sigint_default

if TYPE_CHECKING:
    from support.testenv import BrokerInfo

pytestmark = pytest.mark.integration


def _perf(broker: BrokerInfo, *args: str, timeout: float = 90) -> tuple[dict[str, Any], str]:
    cmd = [
        sys.executable,
        "-m",
        "rabbitstream_cli",
        "perf",
        "--host",
        broker.host,
        "--port",
        str(broker.port),
        "--username",
        broker.username,
        "--password",
        broker.password,
        "--json",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    )
    return json.loads(proc.stdout), proc.stderr


def _check(summary: dict[str, Any]) -> None:
    assert summary["errors"] == 0, summary["error_messages"]
    assert summary["published"] == summary["confirmed"] > 0
    assert summary["consumed"] > 0
    assert summary["latency_p50_ms"] is not None
    assert summary["latency_p50_ms"] <= summary["latency_p95_ms"] <= summary["latency_p99_ms"]


def test_perf_time_json(broker: BrokerInfo) -> None:
    summary, progress = _perf(broker, "--time", "3")
    _check(summary)
    assert summary["library"] == "rabbitstream"
    assert summary["consumed"] == summary["confirmed"]  # fresh stream, offset next, one consumer
    assert "published" in progress and "latency p50" in progress  # progress lines go to stderr with --json
    assert "one process each" in progress
    assert [row["second"] for row in summary["timeline"]][:2] == [1, 2]
    print(
        f"\nperf 3 s: {summary['published_rate']:,.0f} msg/s published, "
        f"{summary['consumed_rate']:,.0f} consumed, p50 {summary['latency_p50_ms']} ms"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--count", "20000", "--codec", "binary", "--producers", "2", "--consumers", "2"],
        ["--count", "5000", "--api", "send", "--batch-size", "50"],
        ["--count", "10000", "--sub-entry-size", "100", "--compression", "gzip"],
        ["--count", "3000", "--super-stream", "--partitions", "3", "--codec", "binary"],
        ["--time", "2", "--rate", "2000", "--quiet"],
    ],
    ids=["binary-2x2", "send-api", "sub-entry-gzip", "super-stream", "rate-limited"],
)
def test_perf_workloads(broker: BrokerInfo, args: list[str]) -> None:
    summary, _ = _perf(broker, *args)
    _check(summary)
    if "--count" in args:
        count = int(args[args.index("--count") + 1])
        consumers = int(args[args.index("--consumers") + 1]) if "--consumers" in args else 1
        assert summary["published"] == count
        assert summary["consumed"] == count * consumers
    if "--rate" in args:
        assert summary["published_rate"] < 3000


def test_perf_compare_rstream(broker: BrokerInfo) -> None:
    pytest.importorskip("rstream")
    out, _ = _perf(broker, "--time", "2", "--compare", "rstream", "--quiet")
    assert set(out) == {"rabbitstream", "rstream", "ratio"}
    _check(out["rabbitstream"])
    _check(out["rstream"])
    assert out["ratio"]["published_rate"] is not None
    print(f"\nratio ours/rstream: {out['ratio']}")


def test_perf_without_broker_hints() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rabbitstream_cli", "perf", "--port", "1", "--time", "1", "--codec", "binary"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no RabbitMQ stream listener answers on localhost:1" in proc.stderr
    assert "tools/broker.py" not in proc.stderr and "Traceback" not in proc.stderr


def test_perf_streams_option(broker: BrokerInfo) -> None:
    """--streams 2: producer i and consumer i on stream i mod 2; each consumer sees its stream's messages."""
    summary, _ = _perf(
        broker,
        "--count",
        "4000",
        "--streams",
        "2",
        "--producers",
        "2",
        "--consumers",
        "2",
        "--codec",
        "binary",
    )
    _check(summary)
    assert summary["published"] == summary["consumed"] == 4000


def test_perf_wrong_password_is_not_printed(broker: BrokerInfo) -> None:
    """#14 item 9: a rejected password appears nowhere in the output, from --uri or the environment."""
    secret = "n0t-the-Passw0rd"
    uri = f"rabbitmq-stream://{broker.username}:{secret}@{broker.host}:{broker.port}/"
    for args, env in (
        (["--uri", uri], {}),
        ([], {"RABBITSTREAM_BROKER_URI": uri}),
        (["--uri", uri.replace("rabbitmq-stream", "amqp")], {}),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "rabbitstream_cli", "perf", "--time", "1", "-q", *args],
            capture_output=True,
            text=True,
            timeout=90,
            env={**os.environ, **env},
        )
        assert proc.returncode in (1, 2), proc.stderr
        assert secret not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr


def test_perf_ctrl_c_prints_the_summary(broker: BrokerInfo) -> None:
    """Ctrl-C (SIGINT to the whole process group) stops the workers and still prints the summary."""
    cmd = [
        sys.executable,
        "-m",
        "rabbitstream_cli",
        "perf",
        "--time",
        "60",
        "-q",
        "--json",
        "--codec",
        "binary",
    ]
    cmd += ["--host", broker.host, "--port", str(broker.port)]
    cmd += ["--username", broker.username, "--password", broker.password]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=sigint_default,
    )
    try:
        time.sleep(6)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    summary = json.loads(out)
    assert proc.returncode == 1  # "interrupted" counts as an error
    assert summary["error_messages"] == ["interrupted"]
    assert summary["published"] == summary["confirmed"] == summary["consumed"] > 0
    assert "Traceback" not in err
