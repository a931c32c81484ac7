"""``AMQPMessage`` fast paths (``bytes(msg)``, ``__rabbitstream_encode_batch__``) = the generic encoder."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rabbitstream_amqp import AMQPMessage, Properties, amqp_decoder
from rabbitstream_amqp._encode_message import encode_message

encode_batch = AMQPMessage.__rabbitstream_encode_batch__


def _generic(msg: AMQPMessage) -> bytes:
    return encode_message(msg, msg._data_sections)


def _cases() -> list[AMQPMessage]:
    multi = bytes(AMQPMessage(body=[b"one", b"two"]))
    return [
        AMQPMessage(body=b""),
        AMQPMessage(body=b"hello"),
        AMQPMessage(body=b"x" * 255),
        AMQPMessage(body=b"x" * 256),
        AMQPMessage(body=b"x" * 70_000),
        AMQPMessage(body="text"),
        AMQPMessage(body=bytearray(b"ba")),
        AMQPMessage(body=b"p", publishing_id=7),
        AMQPMessage(body=b"props", properties=Properties(message_id="m-1")),
        AMQPMessage(body=b"ap", application_properties={"k": 1}),
        AMQPMessage(value=42),
        AMQPMessage(),
        amqp_decoder(multi),  # two data sections: must not be cut to the last one
    ]


@pytest.mark.parametrize("msg", _cases())
def test_bytes_and_batch_match_generic_encoder(msg: AMQPMessage) -> None:
    expected = _generic(msg)
    assert bytes(msg) == expected
    assert encode_batch([msg]) == [expected]


def test_batch_mixed_types() -> None:
    from rabbitstream.utils import RawMessage

    class Custom(AMQPMessage):
        def __bytes__(self) -> bytes:
            return b"custom"

    items: list[Any] = [*_cases(), b"raw-bytes", RawMessage(b"rm"), Custom(body=b"c")]
    assert encode_batch(items) == [bytes(m) for m in items]
    # called on a subclass with its own encoding: that encoding wins
    assert Custom.__rabbitstream_encode_batch__([Custom(body=b"c")]) == [b"custom"]


def test_batch_rejects_int() -> None:
    with pytest.raises(TypeError, match="not int"):
        encode_batch([AMQPMessage(body=b"a"), 10**12])


def test_multi_section_round_trip() -> None:
    back = amqp_decoder(bytes(AMQPMessage(body=[b"one", b"two", b"three"])))
    assert back.body == b"three"
    assert bytes(back) == bytes(AMQPMessage(body=[b"one", b"two", b"three"]))


def test_no_instance_dict_unless_publishing_id() -> None:
    plain = AMQPMessage(body=b"a")
    assert plain.publishing_id is None
    assert not hasattr(plain, "__dict__") or not plain.__dict__
    with_id = AMQPMessage(body=b"a", publishing_id=3)
    assert with_id.publishing_id == 3
    assert with_id == plain  # tuple equality, as rstream
    back = pickle.loads(pickle.dumps(with_id))
    assert back.publishing_id == 3 and back == with_id
    assert plain._replace(body=b"b").body == b"b"


@given(
    body=st.one_of(st.binary(max_size=600), st.text(max_size=50)),
    subject=st.one_of(st.none(), st.text(max_size=10)),
)
def test_batch_property(body: bytes | str, subject: str | None) -> None:
    props = None if subject is None else Properties(subject=subject)
    msg = AMQPMessage(body=body, properties=props)
    assert encode_batch([msg, msg]) == [_generic(msg)] * 2 == [bytes(msg)] * 2


def test_uniform_batch_fast_path_matches_bytes() -> None:
    """A batch of body-only messages (the inline path), and each kind of message that leaves it."""
    plain = [AMQPMessage(body=b"m%d" % i) for i in range(50)]
    assert encode_batch(plain) == [bytes(m) for m in plain]
    multi = amqp_decoder(bytes(AMQPMessage(body=[b"x", b"yz"])))  # several data sections
    for odd in (
        AMQPMessage(body=b"x" * 300),  # data section with a 4-byte length
        AMQPMessage(body=b"p", properties=Properties(message_id=1)),
        AMQPMessage(body="text"),
        AMQPMessage(body=bytearray(b"ba")),
        multi,
    ):
        batch = [*plain[:3], odd, *plain[3:5]]
        assert encode_batch(batch) == [_generic(m) for m in batch]
