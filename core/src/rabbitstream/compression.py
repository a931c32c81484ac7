"""rstream-compatible compression names, mapped onto the plugin registry.

``rstream.compression`` users keep their code: :class:`CompressionType`,
:class:`ICompressionCodec`, :class:`StreamCompressionCodecs` and
:class:`CompressionHelper` behave as in rstream 1.1.1.  The codecs themselves
come from plugins (``rabbitstream-gzip`` ships by default; ``snappy``, ``lz4``
and ``zstd`` are extras).  A codec registered with
:meth:`StreamCompressionCodecs.register_codec` takes precedence over the plugin
of the same code, for encoding and, through :func:`effective_registry`, for
decoding.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import struct
from collections.abc import Sequence
from enum import Enum
from types import MappingProxyType
from typing import Any, ClassVar

from rabbitstream.plugin import CompressionCodec, Registry, get_registry

__all__ = [
    "CompressionHelper",
    "CompressionType",
    "ICompressionCodec",
    "NoneCompressionCodec",
    "PluginCompressionCodec",
    "StreamCompressionCodecs",
    "effective_registry",
]

_U32 = struct.Struct(">I")


class CompressionType(Enum):
    """Sub-entry compression codes (the 3-bit field of the sub-entry header)."""

    No = 0
    Gzip = 1
    Snappy = 2
    Lz4 = 3
    Zstd = 4


def _as_bytes(message: Any) -> bytes:
    if isinstance(message, bytes):
        return message
    if isinstance(message, (bytearray, memoryview)):
        return bytes(message)
    return bytes(message)  # AMQPMessage / RawMessage implement __bytes__


def _body(messages: Sequence[Any]) -> bytes:
    parts: list[bytes] = []
    for message in messages:
        data = _as_bytes(message)
        parts.append(_U32.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


class ICompressionCodec(abc.ABC):
    """rstream's stateful codec: ``compress`` one batch, then read its figures."""

    @abc.abstractmethod
    def compress(self, messages: Sequence[Any]) -> None:
        """Encode ``messages`` (bytes or objects with ``__bytes__``) as one body and compress it."""

    @abc.abstractmethod
    def uncompress(self, compressed_data: bytes, uncompressed_data_size: int) -> bytes:
        """Decompress a sub-entry body of ``uncompressed_data_size`` bytes."""

    @abc.abstractmethod
    def compressed_size(self) -> int:
        """Size of :meth:`data`."""

    @abc.abstractmethod
    def uncompressed_size(self) -> int:
        """Size of the body before compression."""

    @abc.abstractmethod
    def messages_count(self) -> int:
        """Number of messages of the last :meth:`compress`."""

    @abc.abstractmethod
    def compression_type(self) -> int:
        """The wire code (0-7)."""

    @abc.abstractmethod
    def data(self) -> bytes:
        """The compressed body of the last :meth:`compress`."""


class _BatchState(ICompressionCodec):
    """Shared per-batch bookkeeping of the built-in adapters."""

    def __init__(self) -> None:
        self._data = b""
        self._uncompressed = 0
        self._count = 0

    def _pack(self, body: bytes) -> bytes:
        return body

    def compress(self, messages: Sequence[Any]) -> None:
        body = _body(messages)
        self._count = len(messages)
        self._uncompressed = len(body)
        self._data = self._pack(body)

    def compressed_size(self) -> int:
        return len(self._data)

    def uncompressed_size(self) -> int:
        return self._uncompressed

    def messages_count(self) -> int:
        return self._count

    def data(self) -> bytes:
        return self._data


class NoneCompressionCodec(_BatchState):
    """Code 0: the body is stored as is."""

    def uncompress(self, compressed_data: bytes, uncompressed_data_size: int) -> bytes:
        if len(compressed_data) != uncompressed_data_size:
            raise ValueError(f"{len(compressed_data)} bytes, {uncompressed_data_size} declared")
        return bytes(compressed_data)

    def compression_type(self) -> int:
        return 0


class PluginCompressionCodec(_BatchState):
    """An :class:`ICompressionCodec` over a plugin's :class:`~rabbitstream.plugin.CompressionCodec`."""

    def __init__(self, codec: CompressionCodec) -> None:
        super().__init__()
        self.codec = codec

    def _pack(self, body: bytes) -> bytes:
        return self.codec.compress(body)

    def uncompress(self, compressed_data: bytes, uncompressed_data_size: int) -> bytes:
        return self.codec.decompress(compressed_data, uncompressed_data_size)

    def compression_type(self) -> int:
        return int(self.codec.code)


class _UserCodecAdapter:
    """A :class:`CompressionCodec` over a user-registered :class:`ICompressionCodec` (for decoding)."""

    def __init__(self, prototype: ICompressionCodec) -> None:
        self.prototype = prototype
        self.code = int(prototype.compression_type())
        self.name = f"{type(prototype).__name__} (registered)"

    def compress(self, data: bytes) -> bytes:
        messages: list[bytes] = []
        pos = 0
        while pos < len(data):
            (size,) = _U32.unpack_from(data, pos)
            messages.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        codec = copy.copy(self.prototype)
        codec.compress(messages)
        return codec.data()

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        out = copy.copy(self.prototype).uncompress(bytes(data), uncompressed_size)
        if len(out) != uncompressed_size:
            raise ValueError(f"{self.name}: {len(out)} bytes, {uncompressed_size} declared")
        return out


class StreamCompressionCodecs:
    """Class-level codec table, as in rstream: user codecs first, then plugins."""

    available_compress_codecs: ClassVar[dict[CompressionType, ICompressionCodec]] = {}

    @staticmethod
    def register_codec(compression_type: CompressionType, codec: ICompressionCodec) -> None:
        """Use ``codec`` (a prototype, copied per batch) for ``compression_type``."""
        StreamCompressionCodecs.available_compress_codecs[compression_type] = codec

    @staticmethod
    def get_compression_codec(compression_type: CompressionType) -> ICompressionCodec:
        """A fresh codec for one batch.

        :raises PluginNotFoundError: no registered codec and no plugin for the code.
        """
        registered = StreamCompressionCodecs.available_compress_codecs.get(compression_type)
        if registered is not None:
            return copy.copy(registered)
        if compression_type is CompressionType.No:
            return NoneCompressionCodec()
        return PluginCompressionCodec(get_registry().compression_codec(compression_type.value))


class CompressionHelper:
    """rstream's one-call helpers."""

    @staticmethod
    def compress(messages: Sequence[Any], compression_type: CompressionType) -> ICompressionCodec:
        """Compress ``messages`` as one batch; the returned codec holds the result."""
        codec = StreamCompressionCodecs.get_compression_codec(compression_type)
        codec.compress(messages)
        return codec

    @staticmethod
    def uncompress(data: bytes, compression_type: CompressionType, uncompressed_data_size: int) -> bytes:
        """Decompress one sub-entry body."""
        codec = StreamCompressionCodecs.get_compression_codec(compression_type)
        return codec.uncompress(data, uncompressed_data_size)


def effective_registry(registry: Registry | None = None) -> Registry:
    """``registry`` (default: the process one) with the user-registered codecs on top.

    Consumers pass this to the chunk parser so that a codec registered through
    :meth:`StreamCompressionCodecs.register_codec` also decodes.  Returns
    ``registry`` itself when no codec is registered.
    """
    base = registry if registry is not None else get_registry()
    user = {
        t.value: _UserCodecAdapter(c)
        for t, c in StreamCompressionCodecs.available_compress_codecs.items()
        if t is not CompressionType.No
    }
    if not user:
        return base
    table: dict[int, CompressionCodec] = dict(base.compression)
    table.update(user)
    providers = dict(base.providers)
    for code in user:
        providers[("compression", code)] = "StreamCompressionCodecs.register_codec"
    return dataclasses.replace(
        base, compression=MappingProxyType(table), providers=MappingProxyType(providers)
    )
