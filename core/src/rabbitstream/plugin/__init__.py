"""The rabbitstream plugin host.

A plugin is a module or object with functions marked :data:`hookimpl`, published
through an entry point in group ``rabbitstream``::

    [project.entry-points.rabbitstream]
    brotli = "rabbitstream_brotli"

.. code-block:: python

    from rabbitstream.plugin import hookimpl

    class BrotliCodec:
        code = 5
        name = "brotli"
        def compress(self, data: bytes) -> bytes: ...
        def decompress(self, data, uncompressed_size: int) -> bytes: ...

    @hookimpl
    def rabbitstream_compression_codecs():
        return [BrotliCodec()]

Hooks run once, when the registry is built (lazily, on first use), never per
message.  See ``docs/plugins.md`` for the full guide.
"""

from __future__ import annotations

from rabbitstream.plugin._manager import (
    DuplicatePluginError,
    PluginAttributeError,
    PluginHost,
    PluginInfo,
    PluginNotFoundError,
    Registry,
    build_registry,
    get_registry,
    reset_registry,
)
from rabbitstream.plugin._spec import NAME, hookimpl
from rabbitstream.plugin._types import (
    ClientInfo,
    CompressionCodec,
    ConsumerObserver,
    Instrumentation,
    MessageCodec,
    PartitionRouter,
    ProducerObserver,
    SaslAuthenticator,
    SuperStreamMetadata,
)

__all__ = [
    "NAME",
    "ClientInfo",
    "CompressionCodec",
    "ConsumerObserver",
    "DuplicatePluginError",
    "MessageCodec",
    "Instrumentation",
    "PluginAttributeError",
    "PluginHost",
    "PluginInfo",
    "PluginNotFoundError",
    "Registry",
    "PartitionRouter",
    "ProducerObserver",
    "SaslAuthenticator",
    "SuperStreamMetadata",
    "build_registry",
    "get_registry",
    "hookimpl",
    "reset_registry",
]
