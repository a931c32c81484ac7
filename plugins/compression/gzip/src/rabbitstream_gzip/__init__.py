"""rabbitstream plugin: gzip sub-entry compression (wire code 1).

The body of a gzip sub-entry is an RFC 1952 gzip stream, exactly what the Java
client's ``GZIPOutputStream``, Go's ``compress/gzip``, .NET's ``GZipStream`` and
rstream write (not raw deflate, not zlib).  Several concatenated gzip members
are accepted on decode, as Java's ``GZIPInputStream`` does.

Decompression never produces more than the declared size plus one byte, so a
"zip bomb" costs at most the declared size, which the sub-entry parser has
already bounded.
"""

from __future__ import annotations

import zlib

from rabbitstream.plugin import CompressionCodec, hookimpl

__all__ = ["GzipCodec", "rabbitstream_compression_codecs"]

#: ``wbits`` for zlib: 16 + 15 = gzip header and trailer, 32 KiB window.
_GZIP_WBITS = 31


class GzipCodec:
    """RFC 1952 gzip, wire code 1.

    :param level: deflate level 0-9; 6 is the JDK ``Deflater`` default.
    """

    __slots__ = ("level",)

    code: int = 1
    name: str = "gzip"

    def __init__(self, level: int = 6) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"gzip level must be 0-9, not {level}")
        self.level = level

    def compress(self, data: bytes) -> bytes:
        """Compress ``data`` into one gzip member (mtime 0, no file name)."""
        comp = zlib.compressobj(self.level, zlib.DEFLATED, _GZIP_WBITS)
        return comp.compress(data) + comp.flush()

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        """Inflate ``data``; :class:`ValueError` unless it is exactly ``uncompressed_size`` bytes."""
        if uncompressed_size < 0:
            raise ValueError(f"negative uncompressed size {uncompressed_size}")
        limit = uncompressed_size + 1
        parts: list[bytes] = []
        total = 0
        rest: bytes | memoryview = data
        while True:
            inflater = zlib.decompressobj(_GZIP_WBITS)
            try:
                out = inflater.decompress(rest, limit - total)
            except zlib.error as exc:
                raise ValueError(f"corrupt gzip data: {exc}") from None
            total += len(out)
            parts.append(out)
            if total > uncompressed_size:
                raise ValueError(f"gzip data inflates to more than the declared {uncompressed_size} bytes")
            if not inflater.eof:
                raise ValueError("truncated gzip data")
            rest = inflater.unused_data
            if not rest:
                break
        if total != uncompressed_size:
            raise ValueError(f"gzip data inflates to {total} bytes, {uncompressed_size} declared")
        return parts[0] if len(parts) == 1 else b"".join(parts)


@hookimpl(trylast=True)
def rabbitstream_compression_codecs() -> list[CompressionCodec]:
    """Provide :class:`GzipCodec` (code 1)."""
    return [GzipCodec()]
