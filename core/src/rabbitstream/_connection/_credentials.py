"""Passwords that change while connections stay open (OAuth 2.0 access tokens).

Pass an object satisfying :class:`CredentialsProvider` as ``password`` to
:meth:`Client.connect <rabbitstream.Client.connect>` (and so to a producer or consumer, which hand it to
every connection they open, recoveries included).  Each connection asks it for the current password when
it opens, then registers :meth:`Client.reauthenticate <rabbitstream.Client.reauthenticate>` as a listener:
the provider calls the listeners with each new password before the old one expires, and every open
connection authenticates again (SaslHandshake + SaslAuthenticate after Open, same mechanism and user)
without interrupting its publishers or subscriptions.  The ``rabbitstream-oauth2`` plugin provides one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

__all__ = ["CredentialsProvider", "PasswordListener"]

#: Called with each new password; raises when the connection could not re-authenticate with it.
PasswordListener = Callable[[str], Awaitable[None]]


@runtime_checkable
class CredentialsProvider(Protocol):
    """A password source that refreshes itself (for example OAuth 2.0 access tokens).

    .. versionadded:: 0.2
    """

    async def password(self) -> str:
        """A password valid now (fetched when there is none or it is about to expire)."""
        ...

    def add_listener(self, listener: PasswordListener) -> Callable[[], None]:
        """Call ``await listener(new_password)`` after each refresh, until the returned function is called.

        The provider reports a listener's exception (a connection that failed to re-authenticate) through
        its own error reporting; it never stops refreshing because of it.
        """
        ...
