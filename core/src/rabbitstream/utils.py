"""Small public value types with rstream-compatible names (``rstream.utils``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ConfirmationStatus",
    "FilterConfiguration",
    "OnClosedErrorInfo",
    "RawMessage",
]


class RawMessage:
    """Bytes published as they are (no AMQP framing), with an optional publishing id."""

    __slots__ = ("data", "publishing_id")

    def __init__(self, data: bytes, publishing_id: int | None = None) -> None:
        self.data = data
        self.publishing_id = publishing_id

    def __bytes__(self) -> bytes:
        return bytes(self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawMessage):
            return NotImplemented
        return self.data == other.data and self.publishing_id == other.publishing_id

    def __repr__(self) -> str:
        return f"RawMessage(data={self.data!r}, publishing_id={self.publishing_id!r})"


@dataclass(slots=True)
class ConfirmationStatus:
    """Outcome of one published message, passed to ``on_publish_confirm``.

    ``response_code`` is 0 on success, the broker's code on a PublishError,
    ``-1`` when the connection was lost before the confirm and recovery could not
    re-send it, and the client-side codes of :class:`rabbitstream.exceptions`
    (e.g. 10004 confirm time-out) otherwise.
    """

    message_id: int
    is_confirmed: bool = False
    response_code: int = 0


@dataclass(slots=True)
class OnClosedErrorInfo:
    """Passed to ``on_close_handler``: ``"Connection Closed"`` or ``"Metadata Update"``."""

    reason: str
    streams: list[str] = field(default_factory=list)


class FilterConfiguration:
    """Stream filtering for a subscription.

    :param values_to_filter: the filter values the broker selects chunks by.
    :param predicate: client-side post-filter on the *decoded* message; it always
        runs, because the broker's bloom filter has false positives. Without one,
        a message passes when the producer gave it no filter value is excluded
        unless ``match_unfiltered``.
    :param match_unfiltered: also deliver messages published without a filter value.
    """

    __slots__ = ("_match_unfiltered", "_predicate", "_values")

    def __init__(
        self,
        values_to_filter: Sequence[str],
        predicate: Callable[[Any], bool] | None = None,
        match_unfiltered: bool = False,
    ) -> None:
        if isinstance(values_to_filter, str):
            values_to_filter = [values_to_filter]
        if not values_to_filter:
            raise ValueError("FilterConfiguration needs at least one filter value")
        self._values = [str(v) for v in values_to_filter]
        self._predicate = predicate
        self._match_unfiltered = bool(match_unfiltered)

    def values(self) -> list[str]:
        """The filter values."""
        return self._values

    def post_filter(self) -> Callable[[Any], bool] | None:
        """The client-side predicate, or ``None``."""
        return self._predicate

    post_filler = post_filter  # rstream's spelling

    def match_unfiltered(self) -> bool:
        """Whether messages without a filter value are delivered too."""
        return self._match_unfiltered

    def subscription_properties(self) -> dict[str, str]:
        """The ``filter.N`` / ``match-unfiltered`` subscription properties."""
        props = {f"filter.{i}": v for i, v in enumerate(self._values)}
        props["match-unfiltered"] = "true" if self._match_unfiltered else "false"
        return props
