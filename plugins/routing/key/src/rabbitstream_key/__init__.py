"""rabbitstream plugin: key routing for super streams (``"key"``).

The partitions of a message are the broker's answer to the ``Route`` command
for its routing key, i.e. the streams whose binding key equals the routing key
(possibly several, possibly none).  The super-stream metadata caches the answer
**per key**, so the broker is asked once per distinct key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from rabbitstream.plugin import PartitionRouter, SuperStreamMetadata, hookimpl

__all__ = ["KeyRoutingStrategy", "rabbitstream_routing_strategies"]


class KeyRoutingStrategy:
    """Route by binding key through the broker's ``Route`` command."""

    __slots__ = ()
    name = "key"

    def route(self, routing_key: str, metadata: SuperStreamMetadata) -> Awaitable[Sequence[str]]:
        """The awaitable ``metadata.routes(routing_key)`` (cached per key by the metadata)."""
        return metadata.routes(routing_key)

    def __repr__(self) -> str:
        return "KeyRoutingStrategy()"


@hookimpl(trylast=True)
def rabbitstream_routing_strategies() -> Sequence[PartitionRouter]:
    """Provide ``"key"``."""
    return [KeyRoutingStrategy()]
