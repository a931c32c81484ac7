"""Example routing plugin: ``"region"``.

Routing keys look like ``"<region>:<anything>"`` (``"eu:customer-42"``); the
message goes to partition ``<super stream>-<region>`` when it exists, else to
``<super stream>-default`` when that exists, else nowhere (the producer then
raises ``NoRouteFound`` or skips, as configured).  Pure: no broker round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

from rabbitstream.plugin import PartitionRouter, SuperStreamMetadata, hookimpl

__all__ = ["RegionRoutingStrategy", "rabbitstream_routing_strategies"]


class RegionRoutingStrategy:
    """Route ``"<region>:..."`` keys to ``<super stream>-<region>``."""

    name = "region"

    def route(self, routing_key: str, metadata: SuperStreamMetadata) -> Sequence[str]:
        region = routing_key.split(":", 1)[0]
        partitions = metadata.partitions()
        for candidate in (f"{metadata.super_stream}-{region}", f"{metadata.super_stream}-default"):
            if candidate in partitions:
                return [candidate]
        return []


@hookimpl
def rabbitstream_routing_strategies() -> Sequence[PartitionRouter]:
    """Provide ``"region"``."""
    return [RegionRoutingStrategy()]
