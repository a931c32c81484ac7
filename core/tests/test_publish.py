"""Publish frame encoder: golden bytes (protocol.md §16) and frame splitting."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.exceptions import FrameTooLargeError
from rabbitstream.protocol._publish import (
    FRAME_OVERHEAD,
    encode_publish,
    encode_publish_sub_entries,
    encode_publish_v1,
    encode_publish_v2,
    entry_size,
)


def hx(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def test_publish_v1_golden() -> None:
    frames = encode_publish_v1(0, [(0, b"hi")], 1048576)
    assert frames == [hx("00000017 0002 0001 00 00000001 0000000000000000 00000002 6869")]


def test_publish_v2_golden() -> None:
    frames = encode_publish_v2(0, [(0, b"hi", "ca")], 1048576)
    assert frames == [hx("0000001b 0002 0002 00 00000001 0000000000000000 0002 6361 00000002 6869")]


def test_publish_v2_no_filter_value() -> None:
    (frame,) = encode_publish(3, [7], [b"x"], 0, [None])
    assert frame == hx("00000018 0002 0002 03 00000001 0000000000000007 ffff 00000001 78")


def test_sub_entry_golden() -> None:
    entry = hx("80 0002 0000000c 0000000c 00000002 6d31 00000002 6d32")
    (frame,) = encode_publish_sub_entries(0, [1], [entry], 1048576)
    body = hx("0000000000000001 80 0002 0000000c 0000000c 00000002 6d31 00000002 6d32")
    assert frame == struct.pack(">IHHBI", 9 + len(body), 2, 1, 0, 1) + body


def test_empty() -> None:
    assert encode_publish(0, [], [], 100) == []
    assert encode_publish_sub_entries(0, [], [], 100) == []


def test_length_mismatch() -> None:
    with pytest.raises(ValueError):
        encode_publish(0, [1, 2], [b"a"], 100)
    with pytest.raises(ValueError):
        encode_publish(0, [1], [b"a"], 100, [None, None])


def _decode(frames: list[bytes], *, v2: bool = False) -> list[tuple[int, bytes, bytes | None]]:
    out: list[tuple[int, bytes, bytes | None]] = []
    for f in frames:
        size, key, ver, _pub, count = struct.unpack_from(">IHHBI", f)
        assert size == len(f) - 4 and key == 2 and ver == (2 if v2 else 1)
        off = 13
        for _ in range(count):
            (pid,) = struct.unpack_from(">Q", f, off)
            off += 8
            fv: bytes | None = None
            if v2:
                (fl,) = struct.unpack_from(">h", f, off)
                off += 2
                if fl >= 0:
                    fv = f[off : off + fl]
                    off += fl
            (n,) = struct.unpack_from(">I", f, off)
            off += 4
            out.append((pid, f[off : off + n], fv))
            off += n
        assert off == len(f)
    return out


def test_split_exact_boundary() -> None:
    # two 10-byte messages fit exactly in 13 + 2 * 22 bytes
    frame_max = FRAME_OVERHEAD + 2 * entry_size(10)
    frames = encode_publish(0, [1, 2, 3], [b"a" * 10] * 3, frame_max)
    assert [len(f) for f in frames] == [frame_max, FRAME_OVERHEAD + entry_size(10)]
    frames = encode_publish(0, [1, 2, 3], [b"a" * 10] * 3, frame_max - 1)
    assert len(frames) == 3


def test_too_large_message_raises_before_encoding() -> None:
    with pytest.raises(FrameTooLargeError) as info:
        encode_publish(0, [1, 2], [b"ok", b"x" * 100], 100)
    assert info.value.frame_max == 100
    with pytest.raises(FrameTooLargeError):
        encode_publish(0, [1], [b"x" * 80], 100, ["abcdefghij"])
    with pytest.raises(FrameTooLargeError):
        encode_publish_sub_entries(0, [1], [b"\x80" + b"x" * 100], 100)


def test_filter_value_too_long() -> None:
    with pytest.raises(ValueError):
        encode_publish(0, [1], [b"x"], 0, ["f" * 40000])


def test_big_batch_split_8192() -> None:
    bodies = [b"m%06d" % i for i in range(100_000)]
    ids = list(range(1, 100_001))
    frames = encode_publish(5, ids, bodies, 8192)
    assert all(len(f) <= 8192 for f in frames)
    decoded = _decode(frames)
    assert [d[0] for d in decoded] == ids
    assert [d[1] for d in decoded] == bodies


@settings(max_examples=150, deadline=None)
@given(
    msgs=st.lists(
        st.tuples(st.binary(max_size=60), st.one_of(st.none(), st.text(max_size=8))), min_size=1, max_size=40
    ),
    frame_max=st.integers(min_value=120, max_value=600),
    v2=st.booleans(),
)
def test_split_roundtrip(msgs: list[tuple[bytes, str | None]], frame_max: int, v2: bool) -> None:
    ids = list(range(10, 10 + len(msgs)))
    bodies = [m for m, _ in msgs]
    filters = [f for _, f in msgs] if v2 else None
    frames = encode_publish(1, ids, bodies, frame_max, filters)
    assert all(len(f) <= frame_max for f in frames)
    decoded = _decode(frames, v2=v2)
    assert [d[0] for d in decoded] == ids
    assert [d[1] for d in decoded] == bodies
    if v2:
        assert [d[2] for d in decoded] == [None if f is None else f.encode() for _, f in msgs]


def test_sub_entries_split() -> None:
    entries = [b"\x80" + bytes(10) + b"y" * 50 for _ in range(10)]
    frames = encode_publish_sub_entries(2, list(range(1, 11)), entries, FRAME_OVERHEAD + 2 * (8 + 61))
    assert len(frames) == 5
    assert all(struct.unpack_from(">IHHBI", f)[4] == 2 for f in frames)
