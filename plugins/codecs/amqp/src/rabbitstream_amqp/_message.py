"""``AMQPMessage``, ``Header`` and ``Properties``: rstream-compatible message tuples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from rabbitstream_amqp._encode_message import _DATA8, encode_message

__all__ = ["AMQPMessage", "Header", "Properties"]


class Header(NamedTuple):
    """The ``header`` section (descriptor ``0x70``): transport headers."""

    durable: bool | None = None
    priority: int | None = None  # ubyte
    ttl: int | None = None  # uint, milliseconds
    first_acquirer: bool | None = None
    delivery_count: int | None = None  # uint


class Properties(NamedTuple):
    """The ``properties`` section (descriptor ``0x73``): the immutable standard properties.

    Text fields accept ``str`` or ``bytes``; ``message_id``/``correlation_id`` also
    accept ``int`` (``ulong``) and :class:`uuid.UUID`; the two times are int
    milliseconds (or :class:`datetime.datetime`).  The decoder returns text as
    ``bytes`` (:func:`amqp_decoder`) or ``str`` (:func:`amqp_decoder_str`).
    """

    message_id: Any = None
    user_id: bytes | str | None = None
    to: Any = None
    subject: Any = None
    reply_to: Any = None
    correlation_id: Any = None
    content_type: Any = None
    content_encoding: Any = None
    absolute_expiry_time: Any = None
    creation_time: Any = None
    group_id: Any = None
    group_sequence: int | None = None
    reply_to_group_id: Any = None


class _Fields(NamedTuple):
    header: Header | None = None
    delivery_annotations: Mapping[Any, Any] | None = None
    message_annotations: Mapping[Any, Any] | None = None
    properties: Properties | None = None
    application_properties: Mapping[Any, Any] | None = None
    body: Any = None
    sequence: list[Any] | None = None
    value: Any = None
    footer: Mapping[Any, Any] | None = None


_new = tuple.__new__


class AMQPMessage(_Fields):
    """An AMQP 1.0 message (a :class:`~typing.NamedTuple`, as in rstream).

    - ``body``: the ``data`` section (``bytes``; a ``str`` is encoded as UTF-8, a
      list of bytes-like gives one ``data`` section each);
    - ``sequence``: a list of ``amqp-sequence`` sections, each a list;
    - ``value``: the ``amqp-value`` section (any AMQP value);
    - AMQP wants one kind of body: set one of ``body``/``sequence``/``value`` (if several
      are set, all are written, as rstream does);
    - ``publishing_id``: the producer's deduplication id (keyword only).

    ``bytes(msg)`` is the AMQP encoding; ``str(msg)`` is ``str(msg.body)``.

    Speed (producer hot path): an instance has no ``__dict__`` until ``publishing_id``
    is set; a body-only message (``bytes`` body under 256 bytes, the common case) is
    encoded with one concatenation of a precomputed section prefix, and
    :meth:`__rabbitstream_encode_batch__` encodes a whole batch in one call.
    """

    #: Deduplication id, set with ``AMQPMessage(..., publishing_id=n)`` (class default ``None``).
    publishing_id: int | None = None
    #: Every ``data`` section of a decoded message with several (set by the decoder), else ``None``.
    _data_sections: list[bytes] | None = None

    def __new__(
        cls,
        header: Header | None = None,
        delivery_annotations: Mapping[Any, Any] | None = None,
        message_annotations: Mapping[Any, Any] | None = None,
        properties: Properties | None = None,
        application_properties: Mapping[Any, Any] | None = None,
        body: Any = None,
        sequence: list[Any] | None = None,
        value: Any = None,
        footer: Mapping[Any, Any] | None = None,
        *,
        publishing_id: int | None = None,
    ) -> AMQPMessage:
        fields = (
            header,
            delivery_annotations,
            message_annotations,
            properties,
            application_properties,
            body,
            sequence,
            value,
            footer,
        )
        if publishing_id is None:
            return _new(cls, fields)
        self: AMQPMessage = _new(cls, fields)
        self.publishing_id = publishing_id
        return self

    @property
    def data_sections(self) -> list[bytes]:
        """Every ``data`` section of a decoded message (``body`` is the last one)."""
        sections = self._data_sections
        if sections is not None:
            return sections
        body = self.body
        if body is None:
            return []
        if isinstance(body, (list, tuple)):
            return list(body)
        return [body]

    def __bytes__(self) -> bytes:
        body = self[5]
        # body only (the 8 other fields None), one short data section: 00 53 75 a0 <n> <body>
        if type(body) is bytes and self.count(None) == 8 and len(body) < 256 and self._data_sections is None:
            return _DATA8[len(body)] + body
        return encode_message(self, self._data_sections)

    @classmethod
    def __rabbitstream_encode_batch__(cls, messages: Sequence[Any]) -> list[bytes]:
        """``[bytes(m) for m in messages]`` in one call (the producer's batch encoder).

        Body-only messages of this class are encoded inline; anything else (another
        type, more sections) goes through ``bytes()``.
        """
        if cls.__bytes__ is not AMQPMessage.__bytes__:  # a subclass with its own encoding
            return list(map(bytes, messages))
        d8 = _DATA8
        return [
            d8[len(b)] + b
            if type(m) is cls
            and type(b := m[5]) is bytes
            and m.count(None) == 8
            and m._data_sections is None
            and len(b) < 256
            else _bytes_of(m)
            for m in messages
        ]

    def __str__(self) -> str:
        return str(self.body)

    def __reduce__(self) -> Any:
        state = dict(self.__dict__)
        return (_rebuild, (type(self), tuple(self), state))


def _bytes_of(message: Any) -> bytes:
    if isinstance(message, int):  # bytes(n) would be n zero bytes
        raise TypeError("a message must be bytes or have __bytes__ (RawMessage, AMQPMessage), not int")
    return bytes(message)


def _rebuild(cls: type[AMQPMessage], fields: tuple[Any, ...], state: dict[str, Any]) -> AMQPMessage:
    msg: AMQPMessage = _new(cls, fields)
    msg.__dict__.update(state)
    return msg
