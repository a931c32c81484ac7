"""Protocol constants with rstream-compatible names (``rstream.constants``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "ConsumerOffsetSpecification",
    "OffsetSpecification",
    "OffsetType",
    "SaslMechanism",
    "SlasMechanism",
]


class OffsetType(int, enum.Enum):
    """Where a subscription starts; the values are the wire codes."""

    FIRST = 1
    LAST = 2
    NEXT = 3
    OFFSET = 4
    TIMESTAMP = 5


@dataclass
class ConsumerOffsetSpecification:
    """Offset specification given to :meth:`Consumer.subscribe`.

    ``OFFSET`` takes an offset and ``TIMESTAMP`` milliseconds since the epoch;
    ``FIRST``, ``LAST`` and ``NEXT`` take none.
    """

    offset_type: OffsetType = OffsetType.FIRST
    offset: int | None = None

    def __post_init__(self) -> None:
        self.offset_type = OffsetType(self.offset_type)
        if self.offset_type in (OffsetType.OFFSET, OffsetType.TIMESTAMP):
            if self.offset is None:
                raise ValueError(f"{self.offset_type.name} needs an offset value")
            if not isinstance(self.offset, int) or isinstance(self.offset, bool):
                raise TypeError(f"offset must be an int, not {type(self.offset).__name__}")
            if self.offset_type is OffsetType.OFFSET and self.offset < 0:
                raise ValueError("offset must be >= 0")
        elif self.offset is not None:
            raise ValueError(f"{self.offset_type.name} takes no offset value")


@dataclass
class OffsetSpecification:
    """The wire pair (type, offset) answered to a ConsumerUpdate."""

    offset_type: int
    offset: int


class SlasMechanism(str, enum.Enum):
    """SASL mechanisms (rstream's historical spelling is kept)."""

    MechanismPlain = "PLAIN"
    MechanismExternal = "EXTERNAL"
    MechanismAnonymous = "ANONYMOUS"


SaslMechanism = SlasMechanism
"""Correctly spelt alias of :class:`SlasMechanism`."""
