"""rabbitstream plugin: zstd sub-entry compression (wire code 4).

The body of a zstd sub-entry is one (or more) standard zstd frames.  The Java
client writes it with zstd-jni's streaming ``ZstdOutputStream``, so the frame
header usually has **no content size**; Go (``klauspost/compress``) writes one.
Both are accepted: decoding goes through a streaming reader that is asked for
at most the declared size plus one byte, never through a one-shot call that
would trust (and allocate) a content size found in the frame header.
"""

from __future__ import annotations

import threading

import zstandard
from rabbitstream.plugin import CompressionCodec, hookimpl

__all__ = ["ZstdCodec", "rabbitstream_compression_codecs"]


class _Contexts(threading.local):
    """zstandard contexts are not thread-safe: one pair per thread, made lazily."""

    def __init__(self, level: int) -> None:
        self.cctx = zstandard.ZstdCompressor(level=level)
        self.dctx = zstandard.ZstdDecompressor()


class ZstdCodec:
    """Zstandard frames, wire code 4.

    :param level: compression level (zstd's default is 3).
    """

    __slots__ = ("_ctx", "level")

    code: int = 4
    name: str = "zstd"

    def __init__(self, level: int = 3) -> None:
        self.level = level
        self._ctx = _Contexts(level)

    def compress(self, data: bytes) -> bytes:
        """Compress ``data`` into one zstd frame (with its content size)."""
        return self._ctx.cctx.compress(data)

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        """Decode zstd frames; :class:`ValueError` unless exactly ``uncompressed_size`` bytes."""
        if uncompressed_size < 0:
            raise ValueError(f"negative uncompressed size {uncompressed_size}")
        limit = uncompressed_size + 1
        parts: list[bytes] = []
        total = 0
        try:
            reader = self._ctx.dctx.stream_reader(data, read_across_frames=True)
            while total < limit:
                out = reader.read(limit - total)
                if not out:
                    break
                total += len(out)
                parts.append(out)
        except zstandard.ZstdError as exc:
            raise ValueError(f"corrupt zstd data: {exc}") from None
        if total > uncompressed_size:
            raise ValueError(f"zstd data decodes to more than the declared {uncompressed_size} bytes")
        if total != uncompressed_size:
            raise ValueError(f"zstd data decodes to {total} bytes, {uncompressed_size} declared")
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)


@hookimpl(trylast=True)
def rabbitstream_compression_codecs() -> list[CompressionCodec]:
    """Provide :class:`ZstdCodec` (code 4)."""
    return [ZstdCodec()]
