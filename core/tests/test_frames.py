"""Frame classes: golden bytes (protocol.md §16) and Hypothesis round trips for every class."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.exceptions import DecodeError, RemoteProtocolError
from rabbitstream.protocol import _frames as F
from rabbitstream.protocol._framebase import FRAMES, Frame, UnknownCommandError, decode_frame


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def roundtrip(frame: Frame) -> Frame:
    data = frame.encode()
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    return decode_frame(memoryview(data)[4:])


# --------------------------------------------------------------------------- golden vectors

GOLDEN: list[tuple[str, Frame, str]] = [
    ("heartbeat", F.Heartbeat(), "00000004 0017 0001"),
    (
        "subscribe first",
        F.SubscribeRequest(correlation_id=5, subscription_id=1, stream="s", offset_type=1, credit=10),
        "00000010 0007 0001 00000005 01 0001 73 0001 000a",
    ),
    (
        "subscribe offset 42",
        F.SubscribeRequest(
            correlation_id=5, subscription_id=1, stream="s", offset_type=4, offset=42, credit=10
        ),
        "00000018 0007 0001 00000005 01 0001 73 0004 000000000000002a 000a",
    ),
    ("credit", F.Credit(subscription_id=1, credit=1), "00000007 0009 0001 01 0001"),
    ("tune reply", F.TuneResponse(frame_max=1048576, heartbeat=60), "0000000c 8014 0001 00100000 0000003c"),
    (
        "sasl plain",
        F.SaslAuthenticateRequest(correlation_id=3, mechanism="PLAIN", data=b"\0guest\0guest"),
        "0000001f 0013 0001 00000003 0005 504c41494e 0000000c 006775657374006775657374",
    ),
    (
        "publish v1",
        F.Publish(publisher_id=0, messages=((0, b"hi"),)),
        "00000017 0002 0001 00 00000001 0000000000000000 00000002 6869",
    ),
    (
        "publish v2",
        F.PublishV2(publisher_id=0, messages=((0, "ca", b"hi"),)),
        "0000001b 0002 0002 00 00000001 0000000000000000 0002 6361 00000002 6869",
    ),
]


@pytest.mark.parametrize(("name", "frame", "hexstr"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_encode_decode(name: str, frame: Frame, hexstr: str) -> None:
    assert frame.encode() == h(hexstr)
    assert decode_frame(memoryview(h(hexstr))[4:]) == frame


def test_golden_publish_fast_path_matches() -> None:
    """The producer's fast-path encoder produces the same bytes as the reference classes."""
    pub = pytest.importorskip("rabbitstream.protocol._publish")
    assert pub.encode_publish_v1(0, [(0, b"hi")]) == [h(GOLDEN[6][2])]
    assert pub.encode_publish_v2(0, [(0, b"hi", "ca")]) == [h(GOLDEN[7][2])]


def test_golden_sub_entry() -> None:
    sub = pytest.importorskip("rabbitstream.protocol._subentry")
    entry = h("0000000000000001 80 0002 0000000c 0000000c 00000002 6d31 00000002 6d32")
    assert (1).to_bytes(8, "big") + sub.encode_sub_entry([b"m1", b"m2"], None) == entry


def test_other_known_frames() -> None:
    # Close from the broker (frame too large), then our answer.
    close = F.CloseRequest(correlation_id=1, closing_code=0x0E, closing_reason="frame too large")
    data = close.encode()
    assert data[4:8] == h("0016 0001")
    assert roundtrip(close) == close
    assert F.CloseResponse(correlation_id=1).encode() == h("0000000a 8016 0001 00000001 0001")
    # Credit error response: no correlation id.
    assert F.CreditResponse(code=4, subscription_id=7).encode() == h("00000007 8009 0001 0004 07")
    # Metadata response: no top-level code.
    meta = F.MetadataResponse(
        correlation_id=2,
        brokers=(F.MetadataBroker(reference=0, host="h", port=5552),),
        streams=(F.MetadataStream(stream="s", code=1, leader_reference=0, replica_references=(0,)),),
    )
    assert meta.encode() == h(
        "00000026 800f 0001 00000002 00000001 0000 0001 68 000015b0 00000001 0001 73 0001 0000 00000001 0000"
    )
    # Open response without properties (failure) is just the header.
    assert F.OpenResponse(correlation_id=9, code=0x0C).encode() == h("0000000a 8015 0001 00000009 000c")
    # SaslAuthenticate with null data: length -1.
    assert (
        F.SaslAuthenticateRequest(correlation_id=1, mechanism="EXTERNAL", data=None)
        .encode()
        .endswith(h("ffffffff"))
    )


def test_sasl_challenge_both_length_encodings() -> None:
    head = h("8013 0001 00000004 000a")
    as_u16 = decode_frame(memoryview(head + h("0003 616263")))
    as_i32 = decode_frame(memoryview(head + h("00000003 616263")))
    assert isinstance(as_u16, F.SaslAuthenticateResponse)
    assert as_u16.challenge == as_i32.challenge == b"abc"  # type: ignore[attr-defined]
    with pytest.raises(DecodeError):
        decode_frame(memoryview(head + h("0009 6162")))


def test_deliver_v1_v2_split() -> None:
    chunk = b"\x50" + bytes(60)
    v1 = decode_frame(memoryview(h("0008 0001 03") + chunk))
    v2 = decode_frame(memoryview(h("0008 0002 03 0000000000000009") + chunk))
    assert isinstance(v1, F.Deliver) and isinstance(v2, F.Deliver)
    assert (v1.subscription_id, v1.committed_chunk_id, bytes(v1.chunk)) == (3, None, chunk)
    assert (v2.subscription_id, v2.committed_chunk_id, bytes(v2.chunk)) == (3, 9, chunk)
    assert isinstance(v1.chunk, memoryview)  # no copy


def test_unknown_key_is_typed() -> None:
    with pytest.raises(UnknownCommandError) as ei:
        decode_frame(memoryview(h("7777 0001 00000001")))
    assert isinstance(ei.value, RemoteProtocolError)
    assert ei.value.key == 0x7777
    with pytest.raises(UnknownCommandError):
        decode_frame(memoryview(h("0008 0009 01")))  # Deliver v9


@pytest.mark.parametrize(
    "body",
    [
        "",
        "00",
        "8011 0001 00000001 0001 7fffffff",  # map count far larger than the frame
        "8011 0001 00000001 0001 00000001 0003 6162",  # truncated string
        "0011 0001 00000001 00000001 0001 ff 0000",  # invalid UTF-8 key
        "8003 0001",
        "0003 0001 00 00000002 0000000000000001",  # confirm count 2, one id
        "0014 0001 00000001",  # short Tune
        "8014 0001 00100000 0000003c 00",  # trailing byte
        "8012 0001 00000001 0001 fffffffe",  # negative count
    ],
)
def test_malformed_bodies_raise_decode_error(body: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_frame(memoryview(h(body)))


# --------------------------------------------------------------------------- Hypothesis round trips

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
text = st.text(max_size=20)
opt_text = st.none() | text
blob = st.binary(max_size=40)
smap = st.dictionaries(text, text, max_size=4)
texts = st.lists(text, max_size=4).map(tuple)


def offset_spec(allow_none: bool = False) -> st.SearchStrategy[tuple[int, int | None]]:
    types = st.sampled_from([0, 1, 2, 3] if allow_none else [1, 2, 3])
    return st.one_of(
        types.map(lambda t: (t, None)),
        u64.map(lambda o: (4, o)),
        i64.map(lambda o: (5, o)),
    )


FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "correlation_id": u32,
    "code": u16,
    "properties": smap,
    "arguments": smap,
    "mechanisms": texts,
    "mechanism": text,
    "data": st.none() | blob,
    "challenge": st.none() | blob,
    "frame_max": u32,
    "heartbeat": u32,
    "virtual_host": text,
    "closing_code": u16,
    "closing_reason": text,
    "commands": st.lists(st.tuples(u16, u16, u16), max_size=4).map(tuple),
    "stream": text,
    "streams": texts,
    "name": text,
    "partitions": texts,
    "binding_keys": texts,
    "routing_key": text,
    "super_stream": text,
    "reference": text,
    "offset": u64,
    "value": u64,
    "stats": st.dictionaries(text, i64, max_size=4),
    "publisher_id": u8,
    "publishing_ids": st.lists(u64, max_size=8).map(tuple),
    "errors": st.lists(st.tuples(u64, u16), max_size=8).map(tuple),
    "subscription_id": u8,
    "credit": u16,
    "committed_chunk_id": st.none() | u64,
    "chunk": blob,
    "active": st.booleans(),
    "offset_type": u16,
}

CLASS_OVERRIDES: dict[type[Frame], dict[str, st.SearchStrategy[Any]]] = {
    F.DeclarePublisherRequest: {"reference": st.text(max_size=20)},
    F.Publish: {"messages": st.lists(st.tuples(u64, blob), max_size=5).map(tuple)},
    F.PublishV2: {"messages": st.lists(st.tuples(u64, opt_text, blob), max_size=5).map(tuple)},
    F.MetadataResponse: {
        "brokers": st.lists(st.builds(F.MetadataBroker, reference=u16, host=text, port=u32), max_size=3).map(
            tuple
        ),
        "streams": st.lists(
            st.builds(
                F.MetadataStream,
                stream=text,
                code=u16,
                leader_reference=u16,
                replica_references=st.lists(u16, max_size=3).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
        "code": st.just(1),
    },
}

#: Classes whose (offset_type, offset) pair must be consistent.
OFFSET_SPEC_CLASSES = {
    F.SubscribeRequest: False,
    F.ResolveOffsetSpecRequest: False,
    F.ConsumerUpdateResponse: True,
}


def frame_strategy(cls: type[Frame]) -> st.SearchStrategy[Frame]:
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    overrides = CLASS_OVERRIDES.get(cls, {})
    missing = [n for n in fields if n not in overrides and n not in FIELD_STRATEGIES]
    assert not missing, f"no strategy for {cls.__name__}.{missing}"
    kwargs = {n: overrides[n] if n in overrides else FIELD_STRATEGIES[n] for n in fields}
    base = st.fixed_dictionaries(kwargs)
    if cls in OFFSET_SPEC_CLASSES:
        allow_none = OFFSET_SPEC_CLASSES[cls]
        base = st.tuples(base, offset_spec(allow_none)).map(
            lambda t: {**t[0], "offset_type": t[1][0], "offset": t[1][1]}
        )
    return base.map(lambda kw: cls(**kw))


ALL_CLASSES = sorted(set(FRAMES.values()), key=lambda c: c.__name__)


def test_dispatch_table_covers_every_command() -> None:
    keys = {k for k, _ in FRAMES}
    requests = {k for k in keys if not k & 0x8000}
    # Every command of protocol.md §2, 0x01..0x1f, has a request-side class.
    assert requests == set(range(0x01, 0x20))
    assert (0x0008, 2) in FRAMES and (0x0002, 2) in FRAMES
    assert len(ALL_CLASSES) >= 56


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=[c.__name__ for c in ALL_CLASSES])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_roundtrip(cls: type[Frame], data: st.DataObject) -> None:
    frame = data.draw(frame_strategy(cls))
    assert roundtrip(frame) == frame
