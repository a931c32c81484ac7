"""Recovery strategies with rstream-compatible names (``rstream.recovery``).

A strategy decides *whether* and *when* a producer or consumer re-establishes
its publishers/subscriptions after a connection loss or a MetadataUpdate; the
owner does the work through the ``recovery_fun`` it passes in.  Strategies hold
no per-owner state (the attempt number is passed in), so one instance may be
shared safely; every owner still gets its own default instance.
"""

from __future__ import annotations

import abc
import asyncio
import random
from collections.abc import Awaitable, Callable

__all__ = ["BackOffRecoveryStrategy", "IReliableEntity", "RecoveryStrategy"]


class IReliableEntity(abc.ABC):
    """What a recovery strategy may ask of the producer/consumer it recovers."""

    @abc.abstractmethod
    async def stream_exists(self, stream: str, on_close_event: bool = False) -> bool:
        """Whether ``stream`` still exists (asked through a live connection)."""

    def clean_list(self, stream: str) -> None:
        """Forget per-stream state when a stream is gone for good."""


class RecoveryStrategy(abc.ABC):
    """Base class: enabled flag, retry bound and the recovery loop step."""

    def __init__(self, enable: bool = True, max_retries: int = 10) -> None:
        if max_retries < 1:
            raise ValueError("max_retries must be >= 1")
        self._enabled = bool(enable)
        self.max_retries = max_retries

    @property
    def is_enabled(self) -> bool:
        """Whether recovery runs when a connection is lost (rstream API)."""
        return self._enabled

    def enable(self) -> None:
        """Turn recovery on."""
        self._enabled = True

    def disable(self) -> None:
        """Turn recovery off: a lost connection stays lost."""
        self._enabled = False

    @abc.abstractmethod
    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (1-based)."""

    async def recover(
        self,
        entity: IReliableEntity,
        stream: str,
        error: BaseException | None,
        attempt: int,
        recovery_fun: Callable[[str], Awaitable[object]],
    ) -> bool:
        """One recovery attempt: wait, check the stream still exists, re-create.

        :return: ``True`` when ``recovery_fun`` succeeded, ``False`` when the
            stream is gone (stop retrying); raises what ``recovery_fun`` raised
            so that the caller retries up to :attr:`max_retries`.
        """
        await asyncio.sleep(self.delay(attempt))
        if not await entity.stream_exists(stream, on_close_event=True):
            entity.clean_list(stream)
            return False
        await recovery_fun(stream)
        return True


class BackOffRecoveryStrategy(RecoveryStrategy):
    """Exponential back-off: ``min(initial_delay * 2**(attempt-1), max_delay)``
    plus a random extra of at most ``min(jitter, that delay)`` seconds.

    rstream's positional signature ``BackOffRecoveryStrategy(enable, jitter)`` is
    kept; unlike rstream the first retry comes quickly (0.2-0.4 s by default).
    """

    def __init__(
        self,
        enable: bool = True,
        jitter: float = 8,
        *,
        initial_delay: float = 0.2,
        max_delay: float = 30.0,
        max_retries: int = 10,
    ) -> None:
        super().__init__(enable, max_retries)
        if initial_delay < 0 or max_delay < 0 or jitter < 0:
            raise ValueError("delays and jitter must be >= 0")
        self.jitter = jitter
        self.initial_delay = initial_delay
        self.max_delay = max_delay

    def delay(self, attempt: int) -> float:
        """``initial_delay`` doubled per attempt and capped at ``max_delay``, plus a random jitter of at most
        ``min(jitter, that delay)`` seconds."""
        base: float = min(self.initial_delay * 2.0 ** max(attempt - 1, 0), self.max_delay)
        return base + random.uniform(0, min(self.jitter, base))
