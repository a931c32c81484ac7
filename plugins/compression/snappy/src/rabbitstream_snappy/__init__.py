"""rabbitstream plugin: snappy sub-entry compression (wire code 2).

The body of a snappy sub-entry uses the Snappy *framing format*: a stream
identifier chunk (``ff 06 00 00 "sNaPpY"``) followed by compressed (or
uncompressed) chunks of at most 64 KiB, each with a masked CRC-32C of its
uncompressed bytes.  That is what the Java client (xerial
``SnappyFramedOutputStream``) and Go (``snappy.NewBufferedWriter``) write; raw
snappy blocks and xerial's legacy stream format are *not* compatible.

The codec runs on `cramjam <https://pypi.org/project/cramjam/>`_ (the engine of
python-snappy >= 0.7).  Decompression writes into a buffer of the declared size
plus one byte, so it can never produce more than that.
"""

from __future__ import annotations

import cramjam
from rabbitstream.plugin import CompressionCodec, hookimpl

__all__ = ["STREAM_IDENTIFIER", "SnappyCodec", "rabbitstream_compression_codecs"]

#: The mandatory first chunk of a framed snappy stream.
STREAM_IDENTIFIER = b"\xff\x06\x00\x00sNaPpY"


class SnappyCodec:
    """Snappy framing format, wire code 2."""

    __slots__ = ()

    code: int = 2
    name: str = "snappy"

    def compress(self, data: bytes) -> bytes:
        """Compress ``data`` into a framed snappy stream (never empty: the identifier comes first)."""
        if not data:
            return STREAM_IDENTIFIER
        return bytes(cramjam.snappy.compress(data))

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        """Decode a framed stream; :class:`ValueError` unless it is exactly ``uncompressed_size`` bytes."""
        if uncompressed_size < 0:
            raise ValueError(f"negative uncompressed size {uncompressed_size}")
        if not data and not uncompressed_size:
            return b""  # some writers emit nothing at all for an empty stream
        if bytes(data[:10]) != STREAM_IDENTIFIER:
            raise ValueError("not a framed snappy stream (missing stream identifier chunk)")
        out = bytearray(uncompressed_size + 1)
        try:
            n = cramjam.snappy.decompress_into(data, out)
        except cramjam.DecompressionError as exc:
            # A too-small output buffer is reported as "failed to write whole buffer".
            raise ValueError(
                f"corrupt snappy data, or more than the declared {uncompressed_size} bytes: {exc}"
            ) from None
        if n != uncompressed_size:
            raise ValueError(f"snappy data decodes to {n} bytes, {uncompressed_size} declared")
        del out[n:]
        return bytes(out)


@hookimpl(trylast=True)
def rabbitstream_compression_codecs() -> list[CompressionCodec]:
    """Provide :class:`SnappyCodec` (code 2)."""
    return [SnappyCodec()]
