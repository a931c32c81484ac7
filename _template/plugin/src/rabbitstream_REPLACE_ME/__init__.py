"""rabbitstream plugin: <REPLACE ME>.

Keep only the hooks you implement; each returns a list of objects that satisfy the
matching Protocol in :mod:`rabbitstream.plugin` (``CompressionCodec``,
``MessageCodec``, ``SaslAuthenticator``, ``PartitionRouter``).  Hooks are called once,
when the registry is built, never per message.
"""

from __future__ import annotations

from rabbitstream.plugin import hookimpl

__all__ = ["ReplaceMeCodec", "rabbitstream_compression_codecs"]


class ReplaceMeCodec:
    """<REPLACE ME>: a sub-entry compression codec (wire codes 5-7 are free)."""

    code = 5
    name = "REPLACE_ME"

    def compress(self, data: bytes) -> bytes:
        return bytes(data)

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        out = bytes(data)
        if len(out) != uncompressed_size:
            raise ValueError(f"expected {uncompressed_size} bytes, got {len(out)}")
        return out


@hookimpl
def rabbitstream_compression_codecs() -> list[ReplaceMeCodec]:
    return [ReplaceMeCodec()]
