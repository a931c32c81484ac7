"""The recovery loop shared by producers (publishers) and consumers (subscriptions).

When a connection is lost or a MetadataUpdate takes a stream away, the owner detaches what it lost
and hands it to :meth:`Recovery.lost`.  From there one loop, the same for both, runs: the
``on_close_handler``, then per item up to ``max_retries`` attempts of the owner's
:class:`~rabbitstream.recovery.RecoveryStrategy` (its back-off, its check that the stream still
exists, then the owner's re-open), each step reported as a
:class:`~rabbitstream._connection._locator.StateChange`.  What differs between a publisher and a
subscription is behind :class:`Recoverable`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from rabbitstream._connection._locator import (
    DISCONNECTED,
    FAILED,
    RECOVERED,
    RECOVERING,
    StateChange,
    StateListener,
    notify_state,
)
from rabbitstream.exceptions import StreamDoesNotExist
from rabbitstream.utils import OnClosedErrorInfo

if TYPE_CHECKING:
    from rabbitstream._connection._client import Client
    from rabbitstream.recovery import IReliableEntity, RecoveryStrategy

__all__ = ["Recoverable", "Recovery", "strategy_enabled", "strategy_max_retries"]

log = logging.getLogger("rabbitstream.recovery")


class Recoverable(Protocol):
    """One publisher or subscription as the recovery loop sees it."""

    @property
    def stream(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    @property
    def client(self) -> Client | None: ...

    def wanted(self) -> bool:
        """Still to be recovered (not closed or deleted meanwhile)."""

    def ready(self) -> bool:
        """Attached to a live connection again."""

    async def reopen(self, stream: str) -> None:
        """Declare / subscribe again (raises to make the loop retry)."""

    def forget(self) -> None:
        """Recovery is disabled: drop it from the owner (before the ``on_close_handler``)."""

    def give_up(self, error: BaseException) -> None:
        """Recovery failed for good: fail what waits on it."""


def strategy_enabled(strategy: object) -> bool:
    """``is_enabled`` of a strategy (duck-typed ones with ``_enabled`` are accepted too)."""
    return bool(getattr(strategy, "is_enabled", getattr(strategy, "_enabled", True)))


def strategy_max_retries(strategy: object) -> int:
    """``max_retries`` of a strategy (10 if it has none)."""
    return int(getattr(strategy, "max_retries", getattr(strategy, "_max_retries", 10)))


class Recovery:
    """The recovery loop of one producer or consumer.

    :param entity: what the strategy asks whether a stream still exists.
    :param strategy: back-off and retry bound.
    :param kind: ``"producer"`` or ``"consumer"`` (:attr:`StateChange.entity`).
    :param spawn: runs a coroutine as a background task of the owner (cancelled by its close).
    :param closing: whether the owner is closing (nothing is recovered then).
    """

    __slots__ = ("_closing", "_spawn", "_tasks", "entity", "kind", "on_close_handler", "on_state_change",
                 "strategy")  # fmt: skip

    def __init__(
        self,
        entity: IReliableEntity,
        strategy: RecoveryStrategy,
        kind: str,
        *,
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        closing: Callable[[], bool],
        on_close_handler: Callable[[OnClosedErrorInfo], Any] | None = None,
        on_state_change: StateListener | None = None,
    ) -> None:
        self.entity = entity
        self.strategy = strategy
        self.kind = kind
        self._spawn = spawn
        self._closing = closing
        self.on_close_handler = on_close_handler
        self.on_state_change = on_state_change
        self._tasks: set[asyncio.Task[Any]] = set()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self._spawn(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self, keep: Collection[asyncio.Task[Any] | None] = ()) -> None:
        """Cancel every recovery under way (the owner is closing), but the calling task and
        ``keep`` (tasks waiting for that close)."""
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and task not in keep:
                task.cancel()

    def state(self, item: Recoverable, state: str, reason: str, **kw: Any) -> None:
        """Report one step of ``item`` (log + ``on_state_change``)."""
        notify_state(
            self.on_state_change, StateChange(self.kind, item.stream, item.name, state, reason, **kw)
        )

    def lost(self, items: Sequence[Recoverable], reason: str, error: BaseException) -> None:
        """``items`` (already detached) lost their connection: report and start recovering them."""
        if not items:
            return
        for item in items:
            self.state(item, DISCONNECTED, reason, error=error)
        self._run(self.handle_loss(list(items), reason, error))

    async def handle_loss(self, items: list[Recoverable], reason: str, error: BaseException) -> None:
        """``on_close_handler``, then one recovery task per item (or fail them all when disabled)."""
        enabled = strategy_enabled(self.strategy)
        if not enabled:
            for item in items:
                item.forget()
        if self.on_close_handler is not None:
            try:
                result = self.on_close_handler(OnClosedErrorInfo(reason, sorted({i.stream for i in items})))
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_close_handler failed")
        for item in items:
            if not enabled:
                self.state(item, FAILED, reason, error=error)
                item.give_up(error)
            elif not self._closing() and not item.ready():
                self._run(self.recover(item, error, reason))

    async def recover(self, item: Recoverable, error: BaseException, reason: str = "") -> None:
        """Up to ``max_retries`` attempts of the strategy; RECOVERED, or FAILED and ``give_up``."""
        strategy = self.strategy
        t0 = time.monotonic()
        attempt = 1
        while attempt <= strategy_max_retries(strategy):
            if self._closing() or not item.wanted():
                return  # closed, unsubscribed or deleted meanwhile
            self.state(item, RECOVERING, reason, attempt=attempt, error=error)
            try:
                ok = await strategy.recover(self.entity, item.stream, error, attempt, item.reopen)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info(
                    "%s recovery of stream %r, attempt %d failed: %r", self.kind, item.stream, attempt, exc
                )
                error = exc
                attempt += 1
                continue
            if ok is False or (ok is None and not item.ready()):
                error = StreamDoesNotExist(f"stream {item.stream!r} no longer exists")
                break
            if not item.ready():  # re-opened, and lost again at once
                attempt += 1
                continue
            client = item.client
            node = None if client is None else f"{client.advertised_host}:{client.advertised_port}"
            self.state(item, RECOVERED, reason, attempt=attempt, node=node, elapsed=time.monotonic() - t0)
            return
        if not self._closing():
            log.warning("giving up recovery of a %s on stream %r: %r", self.kind, item.stream, error)
            self.state(item, FAILED, reason, attempt=attempt, error=error, elapsed=time.monotonic() - t0)
            item.give_up(error)
