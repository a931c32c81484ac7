"""Exceptions raised by rabbitstream.

The names follow ``rstream.exceptions`` so that code catching rstream errors keeps
working: :class:`ServerError` with one subclass per broker response code
(``code`` and ``retriable`` class attributes, :meth:`ServerError.from_code`),
:class:`ClientError` and its subclasses, :class:`ConnectionClosed`.  On top of
that, protocol violations follow h11's split: :class:`LocalProtocolError` (we
were about to send something invalid, nothing was sent) and
:class:`RemoteProtocolError` (the broker sent something we cannot accept).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

__all__ = [
    "AccessRefused",
    "AuthenticationFailure",
    "BrokerResolutionMaxRetryError",
    "ClientError",
    "ConnectError",
    "ConnectionClosed",
    "DecodeError",
    "FrameTooLarge",
    "FrameTooLargeError",
    "InboundFrameTooLarge",
    "InternalError",
    "InvalidArgument",
    "LeaderNotAvailable",
    "LocalProtocolError",
    "MaxConsumersPerInstance",
    "MaxPublishersPerInstance",
    "OffsetNotFound",
    "PreconditionFailed",
    "ProtocolError",
    "PublisherDoesNotExist",
    "RPCTimeout",
    "RabbitStreamError",
    "RemoteProtocolError",
    "SASLAuthenticationFailureLoopback",
    "SASLCannotChangeMechanism",
    "SASLCannotChangeUsername",
    "SASLChallenge",
    "SASLError",
    "SASLMechanismNotOffered",
    "SASLMechanismNotSupported",
    "ServerError",
    "StreamAlreadyExists",
    "StreamAlreadySubscribed",
    "StreamDoesNotExist",
    "StreamNotAvailable",
    "SubscriptionIDAlreadyExists",
    "SubscriptionIDDoesNotExist",
    "UnknownFrame",
    "VirtualHostAccessFailure",
]


class RabbitStreamError(Exception):
    """Base class of every rabbitstream error."""


# --------------------------------------------------------------------------- server codes


class ServerError(RabbitStreamError):
    """The broker answered with a response code other than OK (0x01).

    ``code`` is the response code, ``retriable`` tells whether retrying the same
    operation later may succeed (e.g. a stream whose leader is being elected).
    """

    code: int = 0
    retriable: bool = False
    _registry: ClassVar[dict[int, type[ServerError]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if isinstance(code, int) and code not in ServerError._registry:
            ServerError._registry[code] = cls

    def __init__(self, message: str | None = None, *, code: int | None = None) -> None:
        self.code = code if code is not None else type(self).code
        if message is None:
            message = f"{type(self).__name__} (response code 0x{self.code:02x})"
        super().__init__(message)

    @classmethod
    def from_code(cls, code: int) -> type[ServerError]:
        """The subclass for response ``code``, or :class:`ServerError` for an unknown code."""
        return ServerError._registry.get(code, ServerError)

    @classmethod
    def for_code(cls, code: int, context: str | None = None) -> ServerError:
        """An instance for response ``code`` (keeps the numeric code when unknown).

        :param code: the response code.
        :param context: what was being done, prepended to the message.
        """
        exc_cls = ServerError._registry.get(code, ServerError)
        name = exc_cls.__name__ if exc_cls is not ServerError else "unknown response code"
        msg = f"{name} (response code 0x{code:02x})"
        if context:
            msg = f"{context}: {msg}"
        return exc_cls(msg, code=code)


class StreamDoesNotExist(ServerError):
    """0x02: the stream does not exist."""

    code = 0x02


class SubscriptionIDAlreadyExists(ServerError):
    """0x03: the subscription id is already in use on this connection."""

    code = 0x03


class SubscriptionIDDoesNotExist(ServerError):
    """0x04: no subscription with this id (also the Credit error response)."""

    code = 0x04


class StreamAlreadyExists(ServerError):
    """0x05: the stream already exists (with identical arguments)."""

    code = 0x05


class StreamNotAvailable(ServerError):
    """0x06: the stream is not available right now (leader election...); retry later."""

    code = 0x06
    retriable = True


class SASLMechanismNotSupported(ServerError):
    """0x07: the broker does not support this SASL mechanism on this listener."""

    code = 0x07


class AuthenticationFailure(ServerError):
    """0x08: wrong credentials (or unknown user)."""

    code = 0x08


class SASLError(ServerError):
    """0x09: SASL error."""

    code = 0x09


class SASLChallenge(ServerError):
    """0x0a: SASL challenge (handled by the connection; raised only when unexpected)."""

    code = 0x0A


class SASLAuthenticationFailureLoopback(ServerError):
    """0x0b: the user may only connect from localhost (e.g. ``guest``)."""

    code = 0x0B


class VirtualHostAccessFailure(ServerError):
    """0x0c: the virtual host does not exist or the user may not access it."""

    code = 0x0C


class UnknownFrame(ServerError):
    """0x0d: the broker did not understand a frame we sent."""

    code = 0x0D


class FrameTooLarge(ServerError):
    """0x0e: the broker received a frame larger than the negotiated frame_max."""

    code = 0x0E


class InternalError(ServerError):
    """0x0f: internal broker error."""

    code = 0x0F
    retriable = True


class AccessRefused(ServerError):
    """0x10: the user lacks the permission for this operation."""

    code = 0x10


class PreconditionFailed(ServerError):
    """0x11: precondition failed (different stream arguments, limits, invalid batch...)."""

    code = 0x11


class PublisherDoesNotExist(ServerError):
    """0x12: no publisher with this id."""

    code = 0x12


class OffsetNotFound(ServerError):
    """0x13: no offset stored for this reference (or empty stream)."""

    code = 0x13


class SASLCannotChangeMechanism(ServerError):
    """0x14: re-authentication tried another SASL mechanism (3.13+)."""

    code = 0x14


class SASLCannotChangeUsername(ServerError):
    """0x15: re-authentication tried another username (3.13+)."""

    code = 0x15


# --------------------------------------------------------------------------- client side


class ClientError(RabbitStreamError):
    """A client-side usage error or limit."""


class MaxConsumersPerInstance(ClientError):
    """No free subscription id (256 per connection)."""


class MaxPublishersPerInstance(ClientError):
    """No free publisher id (256 per connection)."""


class StreamAlreadySubscribed(ClientError):
    """This consumer already has a subscription on that stream."""


class LeaderNotAvailable(ClientError):
    """Metadata reports no leader for the stream (leader reference 0xFFFF)."""


class BrokerResolutionMaxRetryError(ClientError):
    """Load-balancer mode gave up reaching the wanted node."""


class SASLMechanismNotOffered(ClientError):
    """The broker does not offer the requested SASL mechanism.

    ``mechanism`` is what was requested, ``offered`` what the broker lists.
    """

    def __init__(self, mechanism: str, offered: list[str]) -> None:
        self.mechanism = mechanism
        self.offered = list(offered)
        have = ", ".join(offered) or "none"
        super().__init__(f"SASL mechanism {mechanism!r} is not offered by the broker (offered: {have})")


class ConnectionClosed(RabbitStreamError, ConnectionError):
    """The connection is closed (by us, by the broker, or lost)."""


class ConnectError(RabbitStreamError, ConnectionError):
    """A connection to ``host:port`` could not be established (refused, DNS, timeout, TLS)."""


class RPCTimeout(RabbitStreamError, asyncio.TimeoutError):
    """The broker did not answer a request in time.

    A subclass of :class:`asyncio.TimeoutError` (= :class:`TimeoutError` on 3.11+).
    """


# --------------------------------------------------------------------------- protocol


class ProtocolError(RabbitStreamError):
    """A violation of the RabbitMQ Streams protocol."""


class LocalProtocolError(ProtocolError):
    """We were about to send something invalid; nothing was sent."""


class InvalidArgument(LocalProtocolError, ValueError):
    """An argument we cannot send as given (a NUL in a SASL password, ...); nothing was sent."""


class FrameTooLargeError(LocalProtocolError):
    """An outgoing frame exceeds the negotiated ``frame_max``.

    ``size`` is the frame size (including the 4-byte size prefix), ``frame_max`` the limit.
    """

    def __init__(self, size: int, frame_max: int, what: str = "frame") -> None:
        self.size = size
        self.frame_max = frame_max
        super().__init__(f"{what} of {size} bytes exceeds the negotiated frame_max of {frame_max} bytes")


class RemoteProtocolError(ProtocolError):
    """The broker sent something malformed or unexpected."""


class InboundFrameTooLarge(RemoteProtocolError):
    """The broker announced a frame larger than the client's ``max_inbound_frame_size``.

    ``size`` is the announced frame size (without its 4-byte size prefix), ``limit`` the cap.
    The connection is closed before the frame is buffered.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the broker sent a frame of {size} bytes, over the inbound limit of {limit} bytes "
            "(max_inbound_frame_size)"
        )


class DecodeError(RemoteProtocolError, ValueError):
    """Bytes received from the broker (or a codec) could not be decoded."""
