"""AMQP 1.0 message codec: rabbitstream_amqp vs rstream's own codec, same run.

Prints µs per message (encode = ``bytes(msg)`` of a built message, decode =
``amqp_decoder(data)``) for ours and rstream's, and the speed-up ratio (best of
7 interleaved rounds, garbage collector off while timing, as ``timeit``), for:

- ``body-only``: one 100-byte ``data`` section;
- ``props+app``: properties (message_id, content_type, creation_time),
  3 application properties, 100-byte body.

then the producer's side of a body-only message (20 bytes): ``build`` =
``AMQPMessage(body=...)``, ``encode`` = ``bytes(msg)``, ``batch`` = per message of
``AMQPMessage.__rabbitstream_encode_batch__`` over 100 messages (what ``send_batch`` uses).

Run: ``.venv/bin/python benchmarks/bench_amqp_codec.py`` (about 10 s).
"""

from __future__ import annotations

import gc
import importlib
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import rabbitstream_amqp as ours

theirs: Any
TheirProperties: Any
try:
    theirs = importlib.import_module("rstream.amqp")
    TheirProperties = importlib.import_module("rstream._pyamqp.message").Properties
except ImportError:  # pragma: no cover - rstream not installed
    theirs = TheirProperties = None

BODY = bytes(range(100))


def _calibrate(fn: Callable[[], Any], seconds: float) -> int:
    """How many calls of ``fn`` take about ``seconds``."""
    n = 500
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > 0.02:
            return max(500, int(n * seconds / dt))
        n *= 4


def _race(fns: list[Callable[[], Any]], rounds: int = 7, seconds: float = 0.08) -> list[float]:
    """Best µs per call of each function, rounds interleaved so that noise hits all alike.

    The garbage collector is off while timing, as in :mod:`timeit`.
    """
    counts = [_calibrate(fn, seconds) for fn in fns]
    best = [float("inf")] * len(fns)
    gc.disable()
    try:
        for _ in range(rounds):
            for i, (fn, n) in enumerate(zip(fns, counts, strict=True)):
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                best[i] = min(best[i], (time.perf_counter() - t0) / n)
    finally:
        gc.enable()
    return [b * 1e6 for b in best]


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
        encoders: list[Callable[[], Any]] = [msg.__bytes__]
        decoders: list[Callable[[], Any]] = [partial(ours.amqp_decoder, data)]
        if case in other:
            rmsg = other[case]
            rdata = bytes(rmsg)
            assert ours.amqp_decoder(rdata).body == BODY
            assert theirs.amqp_decoder(data).body == BODY
            encoders.append(rmsg.__bytes__)
            decoders.append(partial(theirs.amqp_decoder, rdata))
        for op, fns in (("encode", encoders), ("decode", decoders)):
            us, *rest = _race(fns)
            if not rest:
                print(f"{case:<10} {op:<7} {us:9.3f} {'n/a':>11} {'':>9}")
            else:
                print(f"{case:<10} {op:<7} {us:9.3f} {rest[0]:11.3f} {rest[0] / us:8.1f}x")
    small = b"hello: 0123456789abc"
    rmsg_cls = theirs.AMQPMessage if theirs is not None else None
    one = ours.AMQPMessage(body=small)
    hundred = [ours.AMQPMessage(body=small) for _ in range(100)]
    encode_batch = ours.AMQPMessage.__rabbitstream_encode_batch__
    rows: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
        (
            "build",
            partial(ours.AMQPMessage, body=small),
            partial(rmsg_cls, body=small) if rmsg_cls is not None else None,
        ),
        ("encode", one.__bytes__, rmsg_cls(body=small).__bytes__ if rmsg_cls is not None else None),
    ]
    for op, fn, other_fn in rows:
        us, *rest = _race([fn] if other_fn is None else [fn, other_fn])
        ratio = f"{rest[0] / us:8.1f}x" if rest else ""
        theirs_us = f"{rest[0]:11.3f}" if rest else f"{'n/a':>11}"
        print(f"{'small':<10} {op:<7} {us:9.3f} {theirs_us} {ratio:>9}")
    (us,) = _race([partial(encode_batch, hundred)])
    print(f"{'small':<10} {'batch':<7} {us / 100:9.3f} {'n/a':>11} {'':>9}")
    total = time.perf_counter() - start
    print(f"(total {total:.1f} s; targets: body-only encode <= 0.5 µs, decode <= 0.4 µs)")


if __name__ == "__main__":
    main()
