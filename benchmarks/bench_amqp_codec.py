"""AMQP 1.0 message codec: rabbitstream_amqp vs rstream's own codec, same run.

Prints µs per message (encode = ``bytes(msg)`` of a built message, decode =
``amqp_decoder(data)``) for ours and rstream's, and the speed-up ratio, for:

- ``body-only``: one 100-byte ``data`` section;
- ``props+app``: properties (message_id, content_type, creation_time),
  3 application properties, 100-byte body.

Run: ``.venv/bin/python benchmarks/bench_amqp_codec.py`` (about 10 s).
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[1] / "plugins" / "codecs" / "amqp" / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

import rabbitstream_amqp as ours  # noqa: E402

theirs: Any
TheirProperties: Any
try:
    theirs = importlib.import_module("rstream.amqp")
    TheirProperties = importlib.import_module("rstream._pyamqp.message").Properties
except ImportError:  # pragma: no cover - rstream not installed
    theirs = TheirProperties = None

BODY = bytes(range(100))


def _bench(fn: Callable[[], Any], budget: float = 0.6) -> float:
    """Best-of-5 µs per call, each round sized to about ``budget``/5 seconds."""
    n = 1000
    while True:  # calibrate
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > 0.02:
            break
        n *= 4
    n = max(1000, int(n * (budget / 5) / dt))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def _messages(mod: Any, props_cls: Any) -> dict[str, Any]:
    return {
        "body-only": mod.AMQPMessage(body=BODY),
        "props+app": mod.AMQPMessage(
            body=BODY,
            properties=props_cls(
                message_id="msg-000123", content_type="application/json", creation_time=1_700_000_000_000
            ),
            application_properties={"region": "eu-west", "priority": 5, "tenant": "acme"},
        ),
    }


def main() -> None:
    start = time.perf_counter()
    mine = _messages(ours, ours.Properties)
    other = _messages(theirs, TheirProperties) if theirs is not None else {}
    print(f"{'case':<10} {'op':<7} {'ours µs':>9} {'rstream µs':>11} {'speed-up':>9}")
    for case, msg in mine.items():
        data = bytes(msg)
        rows: list[tuple[str, float, float | None]] = []
        enc = _bench(msg.__bytes__)
        dec = _bench(partial(ours.amqp_decoder, data))
        if case in other:
            rmsg = other[case]
            rdata = bytes(rmsg)
            assert ours.amqp_decoder(rdata).body == BODY
            assert theirs.amqp_decoder(data).body == BODY
            renc: float | None = _bench(rmsg.__bytes__)
            rdec: float | None = _bench(partial(theirs.amqp_decoder, rdata))
        else:
            renc = rdec = None
        rows.append(("encode", enc, renc))
        rows.append(("decode", dec, rdec))
        for op, us, rus in rows:
            if rus is None:
                print(f"{case:<10} {op:<7} {us:9.3f} {'n/a':>11} {'':>9}")
            else:
                print(f"{case:<10} {op:<7} {us:9.3f} {rus:11.3f} {rus / us:8.1f}x")
    print(
        f"(total {time.perf_counter() - start:.1f} s; targets: body-only encode <= 0.5 µs, decode <= 0.4 µs)"
    )


if __name__ == "__main__":
    main()
