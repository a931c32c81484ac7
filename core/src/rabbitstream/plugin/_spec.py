"""Hook specifications: the four kinds of rabbitstream plugin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from rabbitstream.plugin._types import (
        CompressionCodec,
        Instrumentation,
        MessageCodec,
        PartitionRouter,
        SaslAuthenticator,
    )

NAME = "rabbitstream"
#: Entry-point group and pluggy project name.

_hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)

__all__ = [
    "NAME",
    "hookimpl",
    "rabbitstream_compression_codecs",
    "rabbitstream_instrumentations",
    "rabbitstream_message_codecs",
    "rabbitstream_routing_strategies",
    "rabbitstream_sasl_mechanisms",
]

_spec = _hookspec


@_spec
def rabbitstream_compression_codecs() -> Sequence[CompressionCodec]:  # type: ignore[empty-body]
    """Called once when the registry is built.

    :return: the sub-entry compression codecs this plugin provides, each with a
        wire ``code`` no other installed plugin claims.

    .. versionadded:: 0.1.0
    """


@_spec
def rabbitstream_message_codecs() -> Sequence[MessageCodec]:  # type: ignore[empty-body]
    """Called once when the registry is built.

    :return: the message codecs (``amqp``, ``binary``, ...) this plugin provides.

    .. versionadded:: 0.1.0
    """


@_spec
def rabbitstream_sasl_mechanisms() -> Sequence[SaslAuthenticator]:  # type: ignore[empty-body]
    """Called once when the registry is built.

    :return: the SASL mechanisms this plugin provides, keyed by ``name``.

    .. versionadded:: 0.1.0
    """


@_spec
def rabbitstream_routing_strategies() -> Sequence[PartitionRouter]:  # type: ignore[empty-body]
    """Called once when the registry is built.

    :return: the super-stream routing strategies this plugin provides.

    .. versionadded:: 0.1.0
    """


@_spec
def rabbitstream_instrumentations() -> Sequence[Instrumentation]:  # type: ignore[empty-body]
    """Called once when the registry is built.

    :return: the telemetry instrumentations this plugin provides (metrics, tracing), keyed by
        ``name``; each producer and consumer asks every one of them for an observer once, when it
        is created (never per message).

    .. versionadded:: 0.1.0
    """
