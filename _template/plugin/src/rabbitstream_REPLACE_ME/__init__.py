"""rabbitstream plugin: <REPLACE ME>.

Keep only the hooks you implement; each returns a list of objects that satisfy the
matching Protocol in :mod:`rabbitstream.plugin` (``CompressionCodec``,
``MessageCodec``, ``SaslAuthenticator``, ``PartitionRouter``).  Hooks are called once,
when the registry is built, never per message.

The example is a message codec (how application messages become stream entries): it runs in the
client only, so it works on every broker.  A compression codec would need a wire code, and
RabbitMQ 4.3.5+ refuses the codes above 4 (gzip, snappy, lz4, zstd are taken).
"""

from __future__ import annotations

import json
from typing import Any

from rabbitstream.plugin import hookimpl

__all__ = ["ReplaceMeCodec", "rabbitstream_message_codecs"]


class ReplaceMeCodec:
    """<REPLACE ME>: messages are JSON values stored as UTF-8 text."""

    name = "REPLACE_ME"

    def encode(self, message: Any) -> bytes:
        return json.dumps(message, separators=(",", ":")).encode()

    def decode(self, data: bytes | memoryview) -> Any:
        return json.loads(bytes(data))


@hookimpl
def rabbitstream_message_codecs() -> list[ReplaceMeCodec]:
    return [ReplaceMeCodec()]
