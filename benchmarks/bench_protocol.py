"""Raw-protocol micro-benchmark: Publish encode and Deliver decode costs (no broker, < 30 s).

- Publish encode: ``protocol._publish.encode_publish_v1`` (the producer's fast path) and the
  reference ``protocol.Publish`` dataclass, for 1 and 100 messages of 100 bytes per frame.
- Deliver decode: ``ProtocolConnection.receive_data`` over a buffer of Deliver v2 frames (framing +
  dispatch only), then + ``parse_chunk`` (CRC on) + iterating the records, for chunks of 1 and
  100 messages.

Run: ``.venv/bin/python benchmarks/bench_protocol.py`` (``--quick`` for fewer rounds).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable

from rabbitstream.protocol import Deliver, ProtocolConnection, Publish
from rabbitstream.protocol._connection import ConnectionState


def bench(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best-of-``repeat`` seconds per call."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def report(what: str, n: int, unit: str, t: float) -> None:
    """Print one line: cost per frame and per message."""
    print(f"  {what:<28} {n:4d} msg/{unit}: {t * 1e6:8.2f} us/frame  {t / n * 1e9:8.0f} ns/msg")


def _encode_fresh(pub: Publish) -> bytes:
    return Publish(publisher_id=pub.publisher_id, messages=pub.messages).encode()


def open_connection() -> ProtocolConnection:
    conn = ProtocolConnection()
    conn.state = ConnectionState.OPEN  # skip the handshake: framing/dispatch only
    conn.frame_max = 1048576
    return conn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    args = ap.parse_args()
    scale = 0.2 if args.quick else 1.0
    body = b"x" * 100
    print(f"Python {sys.version.split()[0]}; message body 100 B")
    print()
    print("Publish encode (per frame / per message)")
    try:
        from rabbitstream.protocol._publish import encode_publish_v1
    except ImportError:  # pragma: no cover - fast path not landed
        encode_publish_v1 = None  # type: ignore[assignment]
    for n in (1, 100):
        entries = [(i, body) for i in range(n)]
        number = int((20000 if n == 1 else 2000) * scale)
        if encode_publish_v1 is not None:
            t = bench(functools.partial(encode_publish_v1, 0, entries, 1048576), number)
            report("_publish.encode_publish_v1", n, "frame", t)
        pub = Publish(publisher_id=0, messages=tuple(entries))
        t = bench(functools.partial(_encode_fresh, pub), number)
        report("Publish dataclass", n, "frame", t)

    print()
    print("Deliver decode (per frame / per message)")
    try:
        from rabbitstream.protocol._chunk import parse_chunk
        from rabbitstream.testing import build_chunk
    except ImportError:  # pragma: no cover - chunk parser not landed
        parse_chunk = None  # type: ignore[assignment]
        build_chunk = None  # type: ignore[assignment]
    for n in (1, 100):
        if build_chunk is not None:
            chunk = build_chunk([body] * n, chunk_id=1000)
        else:  # pragma: no cover
            chunk = b"\x50" + bytes(47) + body * n
        frame = Deliver(subscription_id=0, committed_chunk_id=999, chunk=chunk).encode()
        frames_per_buffer = max(1, 65536 // len(frame))
        buf = frame * frames_per_buffer
        number = int(300 * scale) or 1

        def framing(b: bytes = buf) -> None:
            conn = open_connection()
            conn.receive_data(b)

        t = bench(framing, number) / frames_per_buffer
        report("receive_data (framing)", n, "chunk", t)
        if parse_chunk is not None:

            def full(b: bytes = buf) -> None:
                conn = open_connection()
                for ev in conn.receive_data(b):
                    assert isinstance(ev, Deliver)
                    ch = parse_chunk(ev.chunk, committed_chunk_id=ev.committed_chunk_id)
                    for _ in ch.records():
                        pass

            t = bench(full, number) / frames_per_buffer
            report("+ parse_chunk + records", n, "chunk", t)


if __name__ == "__main__":
    main()
