"""Compression codecs and chunk parsing: throughput figures (prints a table, < 30 s).

Run: ``.venv/bin/python benchmarks/bench_compression.py``.  Codecs: ratio and
MB/s (of uncompressed bytes) to compress / decompress one sub-entry body of
1,000 JSON-like messages of ~100 bytes.  Chunk parsing: records/s for
``parse_chunk(...)`` + iterating ``records()`` (CRC on), for 1,000 simple
100-byte entries, 1,000 entries of 50-100 bytes, and 10 gzip sub-entries of 100
messages.  Best of several repeats, in process CPU time (the machine is shared).
"""

from __future__ import annotations

import importlib
import random
import struct
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from rabbitstream.plugin import CompressionCodec, build_registry
from rabbitstream.protocol._chunk import parse_chunk
from rabbitstream.testing import build_chunk

ROOT = Path(__file__).resolve().parents[1]


def load_codecs() -> list[CompressionCodec]:
    mods = []
    for name in ("gzip", "snappy", "lz4", "zstd"):
        try:
            mods.append(importlib.import_module(f"rabbitstream_{name}"))
        except ImportError:
            print(f"(plugin {name} not installed: skipped)")
    reg = build_registry(autoload=False, plugins=mods)
    return [reg.compression[c] for c in sorted(reg.compression)]


def messages(n: int = 1000) -> list[bytes]:
    rng = random.Random(3)
    out = []
    for i in range(n):
        m = b'{"id":%d,"device":"dev-%03d","temp":%.2f,"ok":%s,"site":"%s"}' % (
            i,
            rng.randrange(500),
            rng.uniform(-20, 45),
            rng.choice([b"true", b"false"]),
            rng.choice([b"paris", b"berlin", b"madrid", b"rome"]),
        )
        out.append(m.ljust(100, b" "))
    return out


def best(fn: Callable[[], object], budget: float = 0.4) -> float:
    """CPU seconds per call: best of 5 repeats of a loop sized to ``budget``/5.

    Process CPU time, not wall time, so that other jobs on a shared machine
    distort the figures less.
    """
    n = max(1, int(budget / 5 / max(timeit.timeit(fn, number=3) / 3, 1e-6)))
    return min(timeit.repeat(fn, number=n, repeat=5, timer=time.process_time)) / n


def main() -> None:
    msgs = messages()
    body = b"".join(struct.pack(">I", len(m)) + m for m in msgs)
    print(f"Sub-entry body: {len(msgs)} messages, {len(body):,} bytes\n")
    print(f"{'codec':8} {'code':>4} {'ratio':>7} {'compress MB/s':>14} {'decompress MB/s':>16}")
    codecs = load_codecs()
    for codec in codecs:
        packed = codec.compress(body)
        assert codec.decompress(packed, len(body)) == body
        tc = best(lambda codec=codec: codec.compress(body))  # type: ignore[misc]
        td = best(lambda codec=codec, packed=packed: codec.decompress(packed, len(body)))  # type: ignore[misc]
        print(
            f"{codec.name:8} {codec.code:>4} {len(body) / len(packed):>7.2f} "
            f"{len(body) / tc / 1e6:>14.0f} {len(body) / td / 1e6:>16.0f}"
        )

    reg = build_registry(autoload=False, plugins=[])
    gzip_codec = next((c for c in codecs if c.code == 1), None)
    rng = random.Random(5)
    cases: list[tuple[str, bytes]] = [
        ("1000 simple entries, 100 B", build_chunk(msgs)),
        ("1000 simple entries, 50-100 B", build_chunk([m[: rng.randrange(50, 101)] for m in msgs])),
        ("10 uncompressed sub-entries x 100", build_chunk(msgs, sub_entries=100)),
    ]
    if gzip_codec is not None:
        cases.append(("10 gzip sub-entries x 100", build_chunk(msgs, sub_entries=100, codec=gzip_codec)))
        reg = build_registry(autoload=False, plugins=[sys.modules["rabbitstream_gzip"]])

    def iterate(raw: bytes, crc: bool = True) -> None:
        for _offset, _msg in parse_chunk(raw, check_crc=crc, registry=reg).records():
            pass

    def listing(raw: bytes) -> None:
        parse_chunk(raw, registry=reg).messages()

    def skipping(raw: bytes) -> None:
        for _offset, _msg in parse_chunk(raw, registry=reg).records_from(900):
            pass

    print(
        f"\n{'chunk (1000 records)':36} {'records() M/s':>14} {'no CRC':>8}"
        f" {'messages()':>11} {'from 900':>9}"
    )
    for name, raw in cases:
        n = parse_chunk(raw, registry=reg).num_records
        cols = [
            n / best(lambda raw=raw: iterate(raw)) / 1e6,  # type: ignore[misc]
            n / best(lambda raw=raw: iterate(raw, False)) / 1e6,  # type: ignore[misc]
            n / best(lambda raw=raw: listing(raw)) / 1e6,  # type: ignore[misc]
            n / best(lambda raw=raw: skipping(raw)) / 1e6,  # type: ignore[misc]
        ]
        print(f"{name:36} {cols[0]:>14.2f} {cols[1]:>8.2f} {cols[2]:>11.2f} {cols[3]:>9.2f}")
    print("\n('from 900' = records_from(chunk_id + 900), counted per record of the whole chunk)")


if __name__ == "__main__":
    main()
