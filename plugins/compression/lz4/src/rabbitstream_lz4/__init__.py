"""rabbitstream plugin: LZ4 sub-entry compression (wire code 3).

The body of an LZ4 sub-entry is an LZ4 *frame* (magic ``04 22 4d 18``), written
the way the Java client's ``LZ4FrameOutputStream(SIZE_64KB, BLOCK_INDEPENDENCE)``
does: 64 KiB independent blocks, no content size, no content checksum.  Frames
with a content checksum (commons-compress, Go ``pierrec/lz4``), block checksums,
content sizes or linked blocks are all accepted on decode, as are several
concatenated frames.

Decompression asks for at most the declared size plus one byte.
"""

from __future__ import annotations

import lz4.frame
from rabbitstream.plugin import CompressionCodec, hookimpl

__all__ = ["Lz4Codec", "rabbitstream_compression_codecs"]


class Lz4Codec:
    """LZ4 frame format, wire code 3."""

    __slots__ = ()

    code: int = 3
    name: str = "lz4"

    def compress(self, data: bytes) -> bytes:
        """Compress ``data`` into one LZ4 frame (64 KiB independent blocks)."""
        return bytes(
            lz4.frame.compress(
                data,
                block_size=lz4.frame.BLOCKSIZE_MAX64KB,
                block_linked=False,
                content_checksum=False,
                store_size=False,
            )
        )

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        """Decode LZ4 frames; :class:`ValueError` unless exactly ``uncompressed_size`` bytes."""
        if uncompressed_size < 0:
            raise ValueError(f"negative uncompressed size {uncompressed_size}")
        limit = uncompressed_size + 1
        parts: list[bytes] = []
        total = 0
        rest: bytes | memoryview = data
        while True:
            dec = lz4.frame.LZ4FrameDecompressor()
            try:
                out = dec.decompress(rest, max_length=limit - total)
            except (RuntimeError, ValueError, OverflowError) as exc:
                raise ValueError(f"corrupt LZ4 frame: {exc}") from None
            total += len(out)
            parts.append(out)
            if total > uncompressed_size:
                raise ValueError(f"LZ4 data decodes to more than the declared {uncompressed_size} bytes")
            if not dec.eof:
                raise ValueError("truncated LZ4 frame")
            rest = dec.unused_data
            if not rest:
                break
        if total != uncompressed_size:
            raise ValueError(f"LZ4 data decodes to {total} bytes, {uncompressed_size} declared")
        return parts[0] if len(parts) == 1 else b"".join(parts)


@hookimpl(trylast=True)
def rabbitstream_compression_codecs() -> list[CompressionCodec]:
    """Provide :class:`Lz4Codec` (code 3)."""
    return [Lz4Codec()]
