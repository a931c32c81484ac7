"""Consumer value types and the pure (I/O-free) rules of subscriptions.

Everything here is unit-testable without a broker: contexts handed to callbacks, the
per-chunk batch of :meth:`Consumer.iterate_batches`, offset-specification and
subscription-property normalisation (single active consumer, filtering) and the
credit policy names.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Generic, Protocol, TypeVar

from rabbitstream.constants import ConsumerOffsetSpecification, OffsetSpecification, OffsetType
from rabbitstream.utils import FilterConfiguration

__all__ = [
    "ConsumerHandle",
    "CreditPolicy",
    "EventContext",
    "MessageBatch",
    "MessageContext",
    "OffsetTracking",
    "SubscriptionOwner",
    "SubscriptionProperties",
    "build_subscription_properties",
    "wire_offset",
]

_M = TypeVar("_M")


class ConsumerHandle(Protocol):
    """The consumer a callback gets in ``context.consumer`` (a :class:`~rabbitstream.Consumer`)."""

    async def store_offset(self, stream: str, subscriber_name: str, offset: int) -> None: ...

    async def query_offset(self, stream: str, subscriber_name: str) -> int: ...

    async def unsubscribe(self, subscriber_id: int) -> None: ...

    def stop(self) -> None: ...

    async def close(self) -> None: ...


class SubscriptionOwner(ConsumerHandle, Protocol):
    """What a subscription and its iterators need from the consumer that owns them.

    Handed to them at construction; they never import the consumer (no import cycle).
    """

    @property
    def _subs(self) -> Mapping[int, object]:
        """The live subscriptions by subscriber id."""

    async def _activate(self, sub: Any) -> None:
        """First Subscribe of ``sub`` (iterators subscribe lazily)."""

    def _store_offset_nowait(self, sub: Any, offset: int) -> bool:
        """StoreOffset for ``sub`` without waiting; ``False`` when no connection can take it."""

    def _sub_failed(self, sub: Any, exc: BaseException) -> None:
        """``sub`` failed on its own (a chunk needing a missing plugin): drop it, here and on the broker."""


MAX_CREDIT = 32767
"""The broker parses Credit as a signed int16."""

MAX_REFERENCE_BYTES = 255
"""Consumer names (offset-tracking references, SAC names) are at most 255 UTF-8 bytes."""

_SAC_KEY = "single-active-consumer"
_OFFSET_NONE = 0  # ConsumerUpdate answer "no offset" (passive consumer)


class MessageContext(tuple):  # type: ignore[type-arg]
    """Where a delivered message comes from (rstream's ``MessageContext``, plus Deliver v2).

    An immutable tuple subclass: creating one per message costs about half of a slotted
    dataclass and it is safe to keep.  Fields: ``consumer``, ``stream`` (the partition for
    super-stream consumers), ``subscriber_id``, ``subscriber_name``, ``offset`` (of the
    message), ``timestamp`` (chunk timestamp, ms since the epoch) and
    ``committed_chunk_id`` (Deliver v2: the last chunk id committed by the quorum, or
    ``None`` when the broker did not negotiate Deliver v2).
    """

    __slots__ = ()

    def __new__(
        cls,
        consumer: ConsumerHandle,
        stream: str,
        subscriber_id: int,
        subscriber_name: str | None,
        offset: int,
        timestamp: int,
        committed_chunk_id: int | None = None,
    ) -> MessageContext:
        return tuple.__new__(
            cls, (consumer, stream, subscriber_id, subscriber_name, offset, timestamp, committed_chunk_id)
        )

    consumer: ConsumerHandle = property(itemgetter(0))  # type: ignore[assignment]
    stream: str = property(itemgetter(1))  # type: ignore[assignment]
    subscriber_id: int = property(itemgetter(2))  # type: ignore[assignment]
    subscriber_name: str | None = property(itemgetter(3))  # type: ignore[assignment]
    offset: int = property(itemgetter(4))  # type: ignore[assignment]
    timestamp: int = property(itemgetter(5))  # type: ignore[assignment]
    committed_chunk_id: int | None = property(itemgetter(6))  # type: ignore[assignment]

    def __getnewargs__(self) -> tuple[Any, ...]:  # copy / pickle
        return tuple(self)

    def __repr__(self) -> str:
        return (
            f"MessageContext(stream={self[1]!r}, subscriber_id={self[2]}, subscriber_name={self[3]!r}, "
            f"offset={self[4]}, timestamp={self[5]}, committed_chunk_id={self[6]})"
        )


@dataclass
class EventContext:
    """Passed to ``consumer_update_listener`` (single active consumer)."""

    consumer: ConsumerHandle
    stream: str
    subscriber_id: int
    subscriber_name: str | None
    reference: str | None


class MessageBatch(Generic[_M]):
    """The messages of one chunk, as yielded by :meth:`Consumer.iterate_batches`.

    ``messages[i]`` has offset ``offsets[i]`` (``offsets`` is a :class:`range` unless the
    post-filter dropped messages).  Iterating a batch yields ``(message, offset)`` pairs.
    """

    __slots__ = (
        "chunk_id",
        "committed_chunk_id",
        "messages",
        "offsets",
        "stream",
        "subscriber_id",
        "timestamp",
    )

    def __init__(
        self,
        stream: str,
        subscriber_id: int,
        chunk_id: int,
        timestamp: int,
        committed_chunk_id: int | None,
        messages: list[_M],
        offsets: Sequence[int],
    ) -> None:
        self.stream = stream
        self.subscriber_id = subscriber_id
        self.chunk_id = chunk_id
        self.timestamp = timestamp
        self.committed_chunk_id = committed_chunk_id
        self.messages = messages
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[tuple[_M, int]]:
        return zip(self.messages, self.offsets, strict=True)

    @property
    def last_offset(self) -> int | None:
        """Offset of the last message of the batch (``None`` if empty)."""
        return self.offsets[-1] if self.offsets else None

    def __repr__(self) -> str:
        return (
            f"MessageBatch(stream={self.stream!r}, chunk_id={self.chunk_id}, "
            f"messages={len(self.messages)}, timestamp={self.timestamp})"
        )


class CreditPolicy(str, enum.Enum):
    """When a subscription gives the broker one more chunk of credit.

    ``AFTER_PROCESSING`` (default): once every message of a chunk has been handed to the
    application; at most ``initial_credit`` chunks are ever buffered per subscription.
    ``ON_ARRIVAL``: as soon as a chunk arrives while fewer than ``initial_credit`` chunks
    are queued (else when the worker takes one); keeps the pipe fuller, buffers at most
    ``2 * initial_credit`` chunks.
    """

    AFTER_PROCESSING = "after_processing"
    ON_ARRIVAL = "on_arrival"


@dataclass(frozen=True)
class OffsetTracking:
    """Automatic server-side offset tracking for a named subscription.

    The offset of the last processed message is stored (StoreOffset) when ``messages``
    messages were processed since the last store, or ``seconds`` elapsed with unstored
    progress, and on unsubscribe / close.  Checks happen at chunk boundaries.
    """

    messages: int = 10_000
    seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.messages < 1:
            raise ValueError("OffsetTracking.messages must be >= 1")
        if self.seconds <= 0:
            raise ValueError("OffsetTracking.seconds must be > 0")


def wire_offset(spec: ConsumerOffsetSpecification | OffsetSpecification | None) -> tuple[int, int]:
    """The ``(offset_type, offset)`` pair sent in Subscribe / ConsumerUpdate answers.

    ``None`` means ``FIRST`` (rstream's default).  The offset is 0 for types that take none.

    :raises ValueError: on an unknown type or a missing / negative offset.
    """
    if spec is None:
        return int(OffsetType.FIRST), 0
    otype = int(spec.offset_type)
    if otype == _OFFSET_NONE and isinstance(spec, OffsetSpecification):
        return _OFFSET_NONE, 0
    if otype not in (1, 2, 3, 4, 5):
        raise ValueError(f"unknown offset type {otype}")
    if otype in (OffsetType.OFFSET, OffsetType.TIMESTAMP):
        if spec.offset is None:
            raise ValueError(f"{OffsetType(otype).name} needs an offset value")
        off = int(spec.offset)
        if otype == OffsetType.OFFSET and not 0 <= off < 1 << 64:
            raise ValueError(f"offset out of range: {off}")
        if otype == OffsetType.TIMESTAMP and not -(1 << 63) <= off < 1 << 63:
            raise ValueError(f"timestamp out of range: {off}")
        return otype, off
    return otype, 0


@dataclass(frozen=True)
class SubscriptionProperties:
    """Normalised subscription properties (see :func:`build_subscription_properties`)."""

    properties: dict[str, str]
    single_active: bool
    name: str | None  # offset-tracking reference (= the SAC group name under SAC)
    post_filter: Callable[[Any], bool] | None


def _check_reference(name: str, what: str) -> None:
    if not name:
        raise ValueError(f"{what} must not be empty")
    if len(name.encode()) > MAX_REFERENCE_BYTES:
        raise ValueError(f"{what} is longer than {MAX_REFERENCE_BYTES} bytes")


def _sac_flag(value: object) -> bool:
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return True
    if value is False or value is None or (isinstance(value, str) and value.strip().lower() == "false"):
        return False
    raise ValueError(f'subscription property {_SAC_KEY!r} must be "true" (or True), got {value!r}')


def build_subscription_properties(
    properties: Mapping[str, object] | None,
    filter_input: FilterConfiguration | None = None,
    subscriber_name: str | None = None,
    *,
    super_stream: str | None = None,
) -> SubscriptionProperties:
    """Validate and normalise what :meth:`Consumer.subscribe` sends as properties.

    * values are stringified (``True`` → ``"true"``);
    * ``single-active-consumer`` must be ``"true"``/``True`` (``"false"``/``False`` drops it);
      ``x-single-active-consumer`` (an AMQP queue argument) is rejected with a hint; SAC
      needs a group name: ``properties["name"]``, else ``subscriber_name``;
    * ``filter_input`` adds ``filter.N`` and ``match-unfiltered`` (and its predicate
      becomes the client-side post-filter);
    * ``super_stream`` adds the ``super-stream`` property (SAC partition rebalancing).

    :raises ValueError: with a message saying what to change.
    """
    props: dict[str, str] = {}
    sac = False
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"subscription property names must be non-empty strings, got {key!r}")
        if key in ("x-single-active-consumer", "x-single-active-consumer-name"):
            raise ValueError(
                f"{key!r} is an AMQP queue argument; for streams use "
                f"properties={{'single-active-consumer': 'true', 'name': '<group>'}}"
            )
        if key == _SAC_KEY:
            sac = _sac_flag(value)
            continue
        if (key.startswith("filter.") or key == "match-unfiltered") and filter_input is not None:
            raise ValueError(f"property {key!r} conflicts with filter_input; use one or the other")
        if value is None:
            raise ValueError(f"subscription property {key!r} has no value")
        if isinstance(value, bool):
            props[key] = "true" if value else "false"
        else:
            props[key] = str(value)
    name = subscriber_name
    if name is not None:
        _check_reference(name, "subscriber_name")
    if sac:
        group = props.get("name") or name
        if not group:
            raise ValueError(
                "single active consumer needs a name: pass subscriber_name=... or properties['name']"
            )
        _check_reference(group, "single active consumer name")
        props[_SAC_KEY] = "true"
        props["name"] = group
        if name is None:
            name = group
    if super_stream is not None:
        props["super-stream"] = super_stream
    post_filter = None
    if filter_input is not None:
        props.update(filter_input.subscription_properties())
        post_filter = filter_input.post_filter()
    return SubscriptionProperties(props, sac, name, post_filter)


def check_credit(initial_credit: int) -> int:
    """:raises ValueError: unless 1 <= ``initial_credit`` <= 32767."""
    if isinstance(initial_credit, bool) or not isinstance(initial_credit, int):
        raise TypeError("initial_credit must be an int")
    if not 1 <= initial_credit <= MAX_CREDIT:
        raise ValueError(f"initial_credit must be between 1 and {MAX_CREDIT}, got {initial_credit}")
    return initial_credit
