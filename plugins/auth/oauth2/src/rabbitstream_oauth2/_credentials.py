"""Refresh ahead of expiry and re-authentication of every connection using the token."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rabbitstream import CredentialsProvider
from rabbitstream.exceptions import ConnectionClosed

from rabbitstream_oauth2._token import RefreshFailure, Token, TokenError, TokenProvider

__all__ = ["OAuth2Credentials"]

_A = TypeVar("_A")
log = logging.getLogger("rabbitstream.oauth2")

ErrorCallback = Callable[[RefreshFailure], "Awaitable[None] | None"]
RefreshCallback = Callable[[Token], "Awaitable[None] | None"]
PasswordListener = Callable[[str], Awaitable[None]]


class OAuth2Credentials:
    """OAuth 2.0 access tokens as a password that refreshes itself (a
    :class:`rabbitstream.CredentialsProvider`).

    Pass it as ``password`` to a :class:`~rabbitstream.Producer`, :class:`~rabbitstream.Consumer`,
    super-stream producer or consumer, or :meth:`Client.connect <rabbitstream.Client.connect>`; one object
    may serve any number of them.  Every connection opens with the current token and registers itself;
    when ``refresh_ratio`` of a token's lifetime has passed (default 80 %: a 20 s token is replaced after
    16 s) a new token is fetched and every open connection re-authenticates with it, publishing and
    consuming carrying on.  A failed fetch is reported to ``on_error`` and retried with exponential
    back-off (``retry_initial`` doubling up to ``retry_max``, never later than half the time the current
    token has left), so an identity server outage is visible well before the token runs out.

    :param provider: a :data:`~rabbitstream_oauth2.TokenProvider`: a callable, sync (run in a worker
        thread) or async, returning a :class:`~rabbitstream_oauth2.Token`; e.g.
        :class:`~rabbitstream_oauth2.ClientCredentials`.
    :param on_error: called (sync or async) with a :class:`~rabbitstream_oauth2.RefreshFailure` for each
        failed fetch and each connection that refused the new token.
    :param on_refresh: called (sync or async) with each new token, after the connections re-authenticated.
    :param min_validity: a token with fewer seconds left is not handed to a new connection; one is fetched.
    """

    def __init__(
        self,
        provider: TokenProvider,
        *,
        refresh_ratio: float = 0.8,
        retry_initial: float = 1.0,
        retry_max: float = 30.0,
        min_validity: float = 1.0,
        on_error: ErrorCallback | None = None,
        on_refresh: RefreshCallback | None = None,
    ) -> None:
        if not 0 < refresh_ratio < 1:
            raise ValueError("refresh_ratio must be between 0 and 1 (exclusive)")
        if retry_initial <= 0 or retry_max < retry_initial:
            raise ValueError("need 0 < retry_initial <= retry_max")
        self._provider = provider
        self.refresh_ratio = refresh_ratio
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.min_validity = min_validity
        self._on_error = on_error
        self._on_refresh = on_refresh
        self._token: Token | None = None
        self._fetched_at = 0.0
        self._listeners: dict[object, PasswordListener] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        #: tokens fetched by the refresh loop (not counting the first one)
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"OAuth2Credentials({self._provider!r}, connections={len(self._listeners)})"

    # ------------------------------------------------------------------ CredentialsProvider

    @property
    def token(self) -> Token | None:
        """The current token (``None`` before the first fetch)."""
        return self._token

    @property
    def connections(self) -> int:
        """How many open connections use these credentials."""
        return len(self._listeners)

    async def password(self) -> str:
        """The current token, fetched first when there is none or it has under ``min_validity`` s left.

        :raises TokenError: the provider failed (the connection attempt fails with it; a producer's or
            consumer's recovery retries).
        """
        token = self._token
        if token is None or token.expires_in() <= self.min_validity:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                token = self._token
                if token is None or token.expires_in() <= self.min_validity:
                    token = await self._fetch()
                    self._set(token)
        return token.value

    def add_listener(self, listener: PasswordListener) -> Callable[[], None]:
        """Register a connection's re-authentication; starts the refresh loop (see the class doc)."""
        key = object()
        self._listeners[key] = listener
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresh_loop(), name="oauth2-refresh")

        def remove() -> None:
            self._listeners.pop(key, None)
            if not self._listeners and self._task is not None:
                self._task.cancel()  # nothing to keep alive; the next connection fetches on demand
                self._task = None

        return remove

    async def aclose(self) -> None:
        """Stop refreshing (connections keep their current token until it expires)."""
        task, self._task = self._task, None
        self._listeners.clear()
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    # ------------------------------------------------------------------ internals

    def refresh_delay(self, now: float | None = None) -> float:
        """Seconds until the current token is due for refresh (0 when there is none)."""
        token = self._token
        if token is None:
            return 0.0
        now = time.time() if now is None else now
        due = self._fetched_at + self.refresh_ratio * (token.expires_at - self._fetched_at)
        return max(due - now, 0.0)

    def retry_delay(self, attempt: int, now: float | None = None) -> float:
        """Back-off before retry ``attempt`` (1-based): doubling, capped, and at most half the time left."""
        delay = min(self.retry_initial * 2.0 ** (attempt - 1), self.retry_max)
        token = self._token
        if token is not None:
            left = token.expires_in(now)
            if left > 0:
                delay = min(delay, max(left / 2.0, 0.1))
        return delay

    def _set(self, token: Token) -> None:
        self._token = token
        self._fetched_at = time.time()

    async def _fetch(self) -> Token:
        provider = self._provider
        if inspect.iscoroutinefunction(provider) or inspect.iscoroutinefunction(
            getattr(provider, "__call__", None)  # noqa: B004 - an async __call__
        ):
            result: object = provider()
        else:
            result = await asyncio.to_thread(provider)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Token):
            raise TokenError(f"the token provider returned {type(result).__name__}, not a Token")
        if result.expires_in() <= 0:
            raise TokenError("the token provider returned an expired token")
        return result

    async def _refresh_loop(self) -> None:
        attempt = 0
        delay = self.refresh_delay()
        while True:
            await asyncio.sleep(delay)
            try:
                token = await self._fetch()
            except Exception as exc:
                attempt += 1
                delay = self.retry_delay(attempt)
                left = self._token.expires_in() if self._token is not None else None
                log.warning(
                    "OAuth 2.0 token refresh failed (attempt %d, retry in %.1fs, token left %s s): %s",
                    attempt, delay, f"{left:.1f}" if left is not None else "-", exc,
                )  # fmt: skip
                await self._report(RefreshFailure("fetch", exc, attempt, delay, left))
                continue
            attempt = 0
            self._set(token)
            self.refreshes += 1
            await self._reauthenticate_all(token)
            if self._on_refresh is not None:
                await self._call(self._on_refresh, token)
            delay = self.refresh_delay()

    async def _reauthenticate_all(self, token: Token) -> None:
        listeners = list(self._listeners.values())
        results = await asyncio.gather(
            *(listener(token.value) for listener in listeners), return_exceptions=True
        )
        for result in results:
            if isinstance(result, ConnectionClosed):
                continue  # closed meanwhile: its owner's recovery reconnects with the new token
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                log.warning("a connection refused the refreshed OAuth 2.0 token: %s", result)
                await self._report(RefreshFailure("reauthenticate", result, 1, None, token.expires_in()))

    async def _report(self, failure: RefreshFailure) -> None:
        if self._on_error is not None:
            await self._call(self._on_error, failure)

    @staticmethod
    async def _call(cb: Callable[[_A], object], arg: _A) -> None:
        try:
            result = cb(arg)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("OAuth 2.0 credentials callback %r failed", cb)


def _check_protocol(c: OAuth2Credentials) -> CredentialsProvider:
    return c  # mypy: OAuth2Credentials satisfies rabbitstream.CredentialsProvider
