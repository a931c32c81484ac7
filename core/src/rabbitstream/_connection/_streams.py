"""Stream management commands of :class:`~rabbitstream.Client`: streams, super streams, offsets.

Create and delete streams and super streams, read their metadata, statistics, partitions and
routes, and query or store consumer offsets and publisher sequences: request/response commands
over :meth:`~._rpc.RpcClient._rpc`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rabbitstream._connection._rpc import OK, RpcClient
from rabbitstream.exceptions import StreamDoesNotExist
from rabbitstream.protocol._frames import (
    CreateRequest,
    CreateSuperStreamRequest,
    DeleteRequest,
    DeleteSuperStreamRequest,
    MetadataRequest,
    MetadataResponse,
    PartitionsRequest,
    PartitionsResponse,
    QueryOffsetRequest,
    QueryOffsetResponse,
    QueryPublisherSequenceRequest,
    QueryPublisherSequenceResponse,
    ResolveOffsetSpecRequest,
    ResolveOffsetSpecResponse,
    RouteRequest,
    RouteResponse,
    StoreOffset,
    StreamStatsRequest,
    StreamStatsResponse,
)

__all__ = ["Broker", "StreamCommands", "StreamMetadata"]


@dataclass(frozen=True, slots=True)
class Broker:
    """A broker node as advertised in Metadata."""

    host: str
    port: int
    reference: int = 0


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """Metadata of one stream: ``code`` 1 = OK; ``leader`` None when unavailable."""

    stream: str
    code: int
    leader: Broker | None
    replicas: list[Broker] = field(default_factory=list)


class StreamCommands(RpcClient):
    """The stream management commands of a connection."""

    async def create_stream(self, stream: str, arguments: Mapping[str, object] | None = None) -> None:
        """Create ``stream`` (argument values are sent as strings).

        :raises StreamAlreadyExists: 0x05 (the caller decides whether that is fine).
        """
        args = {str(k): str(v) for k, v in (arguments or {}).items()}
        await self._simple(
            lambda c: CreateRequest(correlation_id=c, stream=stream, arguments=args),
            f"create stream {stream!r}",
        )

    async def delete_stream(self, stream: str) -> None:
        """Delete ``stream`` (:class:`StreamDoesNotExist` if it does not exist)."""
        await self._simple(
            lambda c: DeleteRequest(correlation_id=c, stream=stream), f"delete stream {stream!r}"
        )

    async def metadata(self, streams: Iterable[str]) -> dict[str, StreamMetadata]:
        """Leader and replicas of each stream (per-stream ``code``; no exception for missing streams)."""
        names = tuple(streams)
        resp = await self._rpc(
            lambda c: MetadataRequest(correlation_id=c, streams=names), MetadataResponse, "metadata"
        )
        brokers = {b.reference: Broker(b.host, b.port, b.reference) for b in resp.brokers}
        out: dict[str, StreamMetadata] = {}
        for s in resp.streams:
            leader = brokers.get(s.leader_reference) if s.code == OK else None
            replicas = [brokers[r] for r in s.replica_references if r in brokers]
            out[s.stream] = StreamMetadata(s.stream, s.code, leader, replicas)
        return out

    async def stream_exists(self, stream: str) -> bool:
        """True unless Metadata reports :class:`StreamDoesNotExist` for ``stream``."""
        meta = (await self.metadata([stream])).get(stream)
        return meta is not None and meta.code != StreamDoesNotExist.code

    async def stream_stats(self, stream: str) -> dict[str, int]:
        """``first_chunk_id``, ``committed_chunk_id``, ``last_chunk_id`` (-1 = none)."""
        resp = await self._rpc(
            lambda c: StreamStatsRequest(correlation_id=c, stream=stream),
            StreamStatsResponse,
            f"stream stats of {stream!r}",
        )
        return dict(resp.stats)

    async def partitions(self, super_stream: str) -> list[str]:
        """The partitions of ``super_stream`` in the broker's order."""
        resp = await self._rpc(
            lambda c: PartitionsRequest(correlation_id=c, super_stream=super_stream),
            PartitionsResponse,
            f"partitions of {super_stream!r}",
        )
        return list(resp.streams)

    async def route(self, routing_key: str, super_stream: str) -> list[str]:
        """The partitions bound to ``routing_key`` (possibly none)."""
        resp = await self._rpc(
            lambda c: RouteRequest(correlation_id=c, routing_key=routing_key, super_stream=super_stream),
            RouteResponse,
            f"route {routing_key!r} in {super_stream!r}",
        )
        return list(resp.streams)

    async def create_super_stream(
        self,
        name: str,
        partitions: Sequence[str],
        binding_keys: Sequence[str],
        arguments: Mapping[str, object] | None = None,
    ) -> None:
        """Create a super stream (3.13+) with its partition streams and bindings."""
        args = {str(k): str(v) for k, v in (arguments or {}).items()}
        await self._simple(
            lambda c: CreateSuperStreamRequest(
                correlation_id=c,
                name=name,
                partitions=tuple(partitions),
                binding_keys=tuple(binding_keys),
                arguments=args,
            ),
            f"create super stream {name!r}",
        )

    async def delete_super_stream(self, name: str) -> None:
        """Delete a super stream and its partitions."""
        await self._simple(
            lambda c: DeleteSuperStreamRequest(correlation_id=c, name=name), f"delete super stream {name!r}"
        )

    async def query_offset(self, reference: str, stream: str) -> int:
        """The offset stored for ``reference`` (:class:`OffsetNotFound` if none)."""
        resp = await self._rpc(
            lambda c: QueryOffsetRequest(correlation_id=c, reference=reference, stream=stream),
            QueryOffsetResponse,
            f"query offset {reference!r} on {stream!r}",
        )
        return resp.value

    def store_offset(self, reference: str, stream: str, offset: int) -> None:
        """Store ``offset`` for ``reference`` (one-way, no answer).

        :raises ValueError: ``offset`` is not in 0..2**64-1.
        """
        if not 0 <= offset < 1 << 64:
            raise ValueError(f"offset must be in 0..2**64-1, not {offset!r}")
        self._send(StoreOffset(reference=reference, stream=stream, offset=offset))

    async def query_publisher_sequence(self, reference: str, stream: str) -> int:
        """The last publishing id stored for producer ``reference`` (0 if none)."""
        resp = await self._rpc(
            lambda c: QueryPublisherSequenceRequest(correlation_id=c, reference=reference, stream=stream),
            QueryPublisherSequenceResponse,
            f"query publisher sequence {reference!r} on {stream!r}",
        )
        return resp.value

    async def resolve_offset_spec(
        self,
        stream: str,
        offset_type: int,
        offset: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> int:
        """Resolve an offset specification to an offset (broker 4.3+)."""
        resp = await self._rpc(
            lambda c: ResolveOffsetSpecRequest(
                correlation_id=c,
                stream=stream,
                offset_type=int(offset_type),
                offset=offset,
                properties=dict(properties or {}),
            ),
            ResolveOffsetSpecResponse,
            f"resolve offset spec on {stream!r}",
        )
        return resp.offset
