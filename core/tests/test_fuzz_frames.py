"""Fuzzing the frame decoder and ``ProtocolConnection.receive_data``.

Properties: random and mutated input yields a frame or a typed
:class:`~rabbitstream.exceptions.RabbitStreamError` (never ``struct.error``,
``IndexError``, ...); ``receive_data`` never raises at all (errors become a
final ``ConnectionTerminated``); nothing allocates much more than the input.

Run the coverage-guided variant with atheris (``pip install atheris``)::

    python core/tests/test_fuzz_frames.py -runs=200000
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rabbitstream.exceptions import RabbitStreamError
from rabbitstream.protocol import _frames as F
from rabbitstream.protocol._connection import (
    ConnectionState,
    ConnectionTerminated,
    HandshakeComplete,
    HandshakeFailed,
    ProtocolConnection,
)
from rabbitstream.protocol._framebase import FRAMES, Frame, decode_frame

SIMPLE: dict[str, Any] = {
    "correlation_id": 7,
    "code": 1,
    "properties": {"product": "RabbitMQ", "version": "4.0.5"},
    "arguments": {"max-age": "3600s"},
    "mechanisms": ("PLAIN", "EXTERNAL"),
    "mechanism": "PLAIN",
    "data": b"\0guest\0guest",
    "challenge": b"abc",
    "frame_max": 1048576,
    "heartbeat": 60,
    "virtual_host": "/",
    "closing_code": 13,
    "closing_reason": "unknown frame",
    "commands": ((8, 1, 2), (2, 1, 2)),
    "stream": "s1",
    "streams": ("s1", "s2"),
    "name": "super",
    "partitions": ("super-0", "super-1"),
    "binding_keys": ("0", "1"),
    "routing_key": "k",
    "super_stream": "super",
    "reference": "ref",
    "offset": 42,
    "value": 5,
    "stats": {"first_chunk_id": 0, "committed_chunk_id": -1},
    "publisher_id": 1,
    "publishing_ids": (1, 2, 3),
    "errors": ((4, 0x12),),
    "subscription_id": 2,
    "credit": 10,
    "committed_chunk_id": 9,
    "chunk": b"\x50" + bytes(47) + b"payload",
    "active": True,
    "offset_type": 4,
}
OVERRIDES: dict[type[Frame], dict[str, Any]] = {
    F.Publish: {"messages": ((1, b"hello"), (2, b""))},
    F.PublishV2: {"messages": ((1, "f", b"hello"), (2, None, b"x"))},
    F.MetadataResponse: {
        "brokers": (F.MetadataBroker(reference=0, host="localhost", port=5552),),
        "streams": (F.MetadataStream(stream="s", code=1, leader_reference=0, replica_references=(0, 1)),),
    },
    F.ConsumerUpdateResponse: {"offset_type": 1, "offset": None},
}


def sample(cls: type[Frame]) -> Frame:
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kw = {n: OVERRIDES.get(cls, {}).get(n, SIMPLE.get(n)) for n in names}
    return cls(**kw)


SEEDS: list[bytes] = [sample(c).encode() for c in sorted(set(FRAMES.values()), key=lambda c: c.__name__)]


def check_decode(body: bytes) -> None:
    """Decode one frame body: a frame or a typed error, within an allocation budget."""
    tracemalloc.start()
    try:
        try:
            decode_frame(memoryview(body))
        except RabbitStreamError:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 8 * len(body) + 64 * 1024, f"peak {peak} B for a {len(body)} B frame"


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bodies(body: bytes) -> None:
    try:
        decode_frame(memoryview(body))
    except RabbitStreamError:
        pass


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 10_000),
    extra=st.binary(max_size=8),
)
def test_mutated_frames(seed: bytes, flips: list[tuple[int, int]], cut: int, extra: bytes) -> None:
    body = bytearray(seed[4:])
    for pos, val in flips:
        if body:
            body[pos % len(body)] = val
    body = body[: cut % (len(body) + 1)] + extra if cut % 3 == 0 else body
    check_decode(bytes(body))


@settings(max_examples=300, deadline=None)
@given(seed=st.sampled_from(SEEDS), count=st.sampled_from([0x7FFFFFFF, 0xFFFFFFFF, 0x10000000]))
def test_huge_counts_do_not_allocate(seed: bytes, count: int) -> None:
    """Overwrite every 4-byte window of a frame with a huge count: bounded memory, typed error."""
    body = seed[4:]
    for pos in range(4, max(5, len(body) - 3)):
        mutated = body[:pos] + count.to_bytes(4, "big") + body[pos + 4 :]
        check_decode(mutated)


_ALLOWED_EVENTS = (Frame, HandshakeComplete, HandshakeFailed, ConnectionTerminated)


class _Mech:
    name = "PLAIN"

    def initial_response(self, username: str, password: str) -> bytes | None:
        return b"\0u\0p"

    def respond(self, challenge: bytes) -> bytes:
        return b"r"


def _open_conn() -> ProtocolConnection:
    conn = ProtocolConnection()
    conn.initiate_connection(properties={}, mechanism=_Mech())
    script = [
        F.PeerPropertiesResponse(correlation_id=1, properties={"version": "4.0.5"}),
        F.SaslHandshakeResponse(correlation_id=2, mechanisms=("PLAIN",)),
        F.SaslAuthenticateResponse(correlation_id=3),
        F.TuneRequest(frame_max=4096, heartbeat=60),
        F.OpenResponse(correlation_id=4),
    ]
    for fr in script:
        conn.receive_data(fr.encode())
    assert conn.state is ConnectionState.OPEN
    conn.data_to_send()
    return conn


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    opened=st.booleans(),
    pieces=st.lists(
        st.one_of(
            st.binary(max_size=64), st.sampled_from(SEEDS), st.sampled_from(SEEDS).map(lambda s: s[:-1])
        ),
        max_size=8,
    ),
    split=st.integers(1, 64),
)
def test_receive_data_never_raises(opened: bool, pieces: list[bytes], split: int) -> None:
    if opened:
        conn = _open_conn()
    else:
        conn = ProtocolConnection()
        conn.initiate_connection(properties={}, mechanism=_Mech())
    stream = b"".join(pieces)
    t0 = time.perf_counter()
    for i in range(0, len(stream), split):
        for ev in conn.receive_data(stream[i : i + split]):
            assert isinstance(ev, _ALLOWED_EVENTS)
            if isinstance(ev, ConnectionTerminated):
                assert conn.state is ConnectionState.CLOSED
    assert time.perf_counter() - t0 < 2.0
    # A huge declared size only buffers what actually arrived.
    assert len(conn._buf) <= len(stream)


def test_declared_size_without_data_is_not_allocated() -> None:
    conn = _open_conn()
    tracemalloc.start()
    try:
        # 200 MiB: under the inbound cap (a larger size ends the connection, see
        # test_hostile_connection.py)
        conn.receive_data((200 << 20).to_bytes(4, "big") + b"\x00\x08\x00\x01")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert conn.state is ConnectionState.OPEN  # still waiting for the rest


def test_atheris_smoke() -> None:
    """Run the coverage-guided harness briefly when atheris is installed."""
    pytest.importorskip("atheris")
    runs = os.environ.get("RABBITSTREAM_FUZZ_RUNS", "20000")
    proc = subprocess.run(
        [sys.executable, __file__, f"-runs={runs}", "-max_len=512"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


# --------------------------------------------------------------------------- atheris harness


def _atheris_one(data: bytes) -> None:
    if not data:
        return
    mode = data[0] % 3
    rest = data[1:]
    if mode == 0:
        try:
            decode_frame(memoryview(rest))
        except RabbitStreamError:
            pass
    elif mode == 1:
        idx = rest[0] % len(SEEDS) if rest else 0
        seed = bytearray(SEEDS[idx][4:])
        for i, b in enumerate(rest[1:16]):
            if seed:
                seed[(i * 7 + b) % len(seed)] ^= b
        try:
            decode_frame(memoryview(bytes(seed)))
        except RabbitStreamError:
            pass
    else:
        conn = _open_conn()
        for ev in conn.receive_data(rest):
            assert isinstance(ev, _ALLOWED_EVENTS)


def _main() -> None:  # pragma: no cover - fuzzing entry point
    import importlib

    import atheris  # type: ignore[import-untyped]

    # Re-import the package under instrumentation (instrumenting everything loaded is very slow).
    for mod in [m for m in sys.modules if m == "rabbitstream" or m.startswith("rabbitstream.")]:
        del sys.modules[mod]
    with atheris.instrument_imports(include=["rabbitstream"]):
        exc = importlib.import_module("rabbitstream.exceptions")
        fb = importlib.import_module("rabbitstream.protocol._framebase")
        frames = importlib.import_module("rabbitstream.protocol._frames")
        conn = importlib.import_module("rabbitstream.protocol._connection")
    g = globals()
    g.update(
        RabbitStreamError=exc.RabbitStreamError,
        decode_frame=fb.decode_frame,
        F=frames,
        ProtocolConnection=conn.ProtocolConnection,
        ConnectionState=conn.ConnectionState,
        _ALLOWED_EVENTS=(fb.Frame, conn.HandshakeComplete, conn.HandshakeFailed, conn.ConnectionTerminated),
    )
    atheris.Setup(sys.argv, _atheris_one)
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    _main()
