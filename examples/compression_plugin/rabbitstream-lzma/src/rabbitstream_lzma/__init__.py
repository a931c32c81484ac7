"""Example third-party rabbitstream plugin: xz (LZMA2) sub-entry compression on wire code 5.

Codes 1-4 are the standard codecs (gzip, snappy, lz4, zstd) every client knows; 5-7
are free for experiments, so only clients with this plugin can read these sub-entries.
Standard library only (:mod:`lzma`).
"""

from __future__ import annotations

import lzma

from rabbitstream.plugin import CompressionCodec, hookimpl

__all__ = ["LzmaCodec", "rabbitstream_compression_codecs"]


class LzmaCodec:
    """xz container, LZMA2 filter, preset 6 (the ``xz`` default)."""

    code: int = 5
    name: str = "lzma"

    def compress(self, data: bytes) -> bytes:
        """Compress a whole sub-entry body."""
        return lzma.compress(data, format=lzma.FORMAT_XZ)

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        """Decompress, never producing more than ``uncompressed_size`` (+1 to detect a lie) bytes."""
        inflater = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            out = inflater.decompress(bytes(data), max_length=uncompressed_size + 1)
        except lzma.LZMAError as exc:
            raise ValueError(f"corrupt xz data: {exc}") from None
        if len(out) != uncompressed_size or not inflater.eof:
            raise ValueError(f"xz data does not inflate to the declared {uncompressed_size} bytes")
        return out


@hookimpl
def rabbitstream_compression_codecs() -> list[CompressionCodec]:
    """Provide :class:`LzmaCodec` (code 5, name ``"lzma"``)."""
    return [LzmaCodec()]
