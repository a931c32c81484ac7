"""Cross-check against rstream 1.1.1's own codec: each decodes what the other encodes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rabbitstream_amqp import AMQPMessage, Header, Properties, amqp_decoder

rstream_amqp = pytest.importorskip("rstream.amqp")
rstream_message = pytest.importorskip("rstream._pyamqp.message")
TheirMessage = rstream_amqp.AMQPMessage
their_decoder = rstream_amqp.amqp_decoder
TheirProperties = rstream_message.Properties
TheirHeader = rstream_message.Header

FIELDS = AMQPMessage._fields


def _cases(msg_cls: Any, props_cls: Any, header_cls: Any) -> list[Any]:
    return [
        msg_cls(body=b"hello"),
        msg_cls(body=b"x" * 1000),
        msg_cls(body=b"b", application_properties={"id": "1", "n": 5, "big": 1 << 40, "f": 1.25, "t": True}),
        msg_cls(
            body=b"b",
            properties=props_cls(
                message_id="m-1",
                user_id=b"guest",
                to="dest",
                subject="subj",
                reply_to="r",
                correlation_id=42,
                content_type="text/plain",
                content_encoding="utf-8",
                absolute_expiry_time=1_700_000_100_000,
                creation_time=1_700_000_000_000,
                group_id="g",
                group_sequence=3,
                reply_to_group_id="rg",
            ),
        ),
        msg_cls(body=b"b", properties=props_cls(message_id=uuid.UUID(int=1), creation_time=5)),
        msg_cls(body=b"b", header=header_cls(durable=True, priority=5, ttl=100, first_acquirer=False)),
        msg_cls(
            body=b"b",
            message_annotations={"x-opt-a": "v", "x-opt-n": 3},
            delivery_annotations={"x-d": b"raw"},
            footer={"x-f": 1},
        ),
        msg_cls(value="text"),
        msg_cls(value={"k": [1, "a", None]}),
        msg_cls(sequence=[[1, 2, 3], ["x"]]),
    ]


def _fields(msg: Any) -> dict[str, Any]:
    return {name: getattr(msg, name) for name in FIELDS}


@pytest.mark.parametrize("index", range(len(_cases(TheirMessage, TheirProperties, TheirHeader))))
def test_we_decode_what_rstream_encodes(index: int) -> None:
    theirs = _cases(TheirMessage, TheirProperties, TheirHeader)[index]
    data = bytes(theirs)
    assert _fields(amqp_decoder(data)) == _fields(their_decoder(data))


@pytest.mark.parametrize("index", range(len(_cases(AMQPMessage, Properties, Header))))
def test_rstream_decodes_what_we_encode(index: int) -> None:
    ours = _cases(AMQPMessage, Properties, Header)[index]
    data = bytes(ours)
    assert _fields(their_decoder(data)) == _fields(amqp_decoder(data))


@pytest.mark.parametrize("index", range(len(_cases(AMQPMessage, Properties, Header))))
def test_same_messages_same_meaning(index: int) -> None:
    ours = _cases(AMQPMessage, Properties, Header)[index]
    theirs = _cases(TheirMessage, TheirProperties, TheirHeader)[index]
    assert _fields(amqp_decoder(bytes(ours))) == _fields(amqp_decoder(bytes(theirs)))


def test_body_only_bytes_are_identical() -> None:
    assert bytes(AMQPMessage(body=b"abc")) == bytes(TheirMessage(body=b"abc"))
    assert bytes(AMQPMessage(body=b"a" * 300)) == bytes(TheirMessage(body=b"a" * 300))
