"""What :class:`SuperStreamProducer` and :class:`SuperStreamConsumer` share.

Both wrap one inner :class:`~rabbitstream.Producer` / :class:`~rabbitstream.Consumer`, created on
first use with the keywords the super-stream client was given, and manage super streams through its
locator connection.  :class:`SuperStreamClient` holds that once: the inner client's life cycle, the
locator, ``state`` and ``repr``, creating / deleting super streams (partition names and binding keys
from :func:`super_stream_layout`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from rabbitstream.exceptions import StreamAlreadyExists, StreamDoesNotExist

if TYPE_CHECKING:
    from typing_extensions import Self

    from rabbitstream._connection._client import Client
    from rabbitstream.superstream import SuperStreamCreationOption

__all__ = ["InnerClient", "SuperStreamClient", "inner_kwargs", "super_stream_layout"]


def super_stream_layout(
    super_stream: str, n_partitions: int = 0, binding_keys: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """Partition names and binding keys of a new super stream (Java's conventions).

    ``n_partitions`` gives ``<ss>-0 … <ss>-<n-1>`` bound with ``"0" … "<n-1>"``;
    ``binding_keys`` gives ``<ss>-<key>`` bound with each key.

    :raises ValueError: both or neither given, duplicate or empty keys.
    """
    if binding_keys is not None and n_partitions:
        raise ValueError("give either n_partitions or binding_keys, not both")
    if binding_keys is None:
        if isinstance(n_partitions, bool) or not isinstance(n_partitions, int) or n_partitions < 1:
            raise ValueError(f"n_partitions must be a positive int, got {n_partitions!r}")
        keys = [str(i) for i in range(n_partitions)]
    else:
        if isinstance(binding_keys, str):
            raise TypeError("binding_keys must be a list of strings, not a string")
        keys = [str(k) for k in binding_keys]
        if not keys:
            raise ValueError("binding_keys must not be empty")
        if any(not k for k in keys):
            raise ValueError("binding keys must not be empty strings")
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate binding keys in {keys!r}")
    return [f"{super_stream}-{k}" for k in keys], keys


def inner_kwargs(arguments: Mapping[str, Any], own: Collection[str], rest: str) -> dict[str, Any]:
    """The keywords a super-stream client hands to its inner producer / consumer.

    :param arguments: the constructor's ``locals()``, taken before it binds any other name.
    :param own: its parameters the inner client does not take (``self``, ``host``, ``port`` are
        always left out).
    :param rest: the name of its ``**`` parameter, whose keywords are passed on as they are.
    """
    skip = {"self", "host", "port", "__class__", rest, *own}
    kwargs = {k: v for k, v in arguments.items() if k not in skip}
    kwargs.update(arguments[rest])
    return kwargs


class InnerClient(Protocol):
    """What :class:`SuperStreamClient` uses of its inner :class:`~rabbitstream.Producer` /
    :class:`~rabbitstream.Consumer`."""

    @property
    def state(self) -> str: ...

    @property
    def default_client(self) -> Awaitable[Client]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


_C = TypeVar("_C", bound=InnerClient)


class SuperStreamClient(Generic[_C]):
    """One inner producer / consumer (``_C``) and the super-stream management done through it.

    :param new_inner: creates the inner client from ``host``, ``port`` and ``kwargs``.
    :param kwargs: its keywords (:func:`inner_kwargs`).
    :param describe: the end of :func:`repr` (what this client has: partitions, routing).
    :param on_layout_change: called with a super stream's name and whether it was deleted, after
        :meth:`create_super_stream` / :meth:`delete_super_stream`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        super_stream: str,
        super_stream_creation_option: SuperStreamCreationOption | None,
        *,
        new_inner: Callable[[str, int, dict[str, Any]], _C],
        kwargs: dict[str, Any],
        describe: Callable[[], str],
        on_layout_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        if not super_stream:
            raise ValueError("super_stream must not be empty")
        self.host = host
        self.port = port
        self.super_stream = super_stream
        self.super_stream_creation_option = super_stream_creation_option
        self._new_inner = new_inner
        self._kwargs = kwargs
        self._describe = describe
        self._on_layout_change = on_layout_change
        self._inner: _C | None = None
        self._closed = False  # close() ran (repr: "closed" rather than "new")

    # ------------------------------------------------------------------ lifecycle

    async def _start_inner(self) -> _C:
        if self._inner is None:
            inner = self._new_inner(self.host, self.port, self._kwargs)
            await inner.start()
            self._inner = inner
        return self._inner

    @property
    async def default_client(self) -> Client:
        """The locator connection (of the inner client)."""
        inner = await self._start_inner()
        client: Client = await inner.default_client
        return client

    async def start(self) -> None:
        """Connect and create the super stream if a creation option was given."""
        await self._start_inner()
        opt = self.super_stream_creation_option
        if opt is not None:
            await self.create_super_stream(
                self.super_stream, opt.n_partitions, opt.binding_keys, opt.arguments, exists_ok=True
            )

    async def _close_inner(self) -> None:
        inner, self._inner = self._inner, None
        self._closed = True
        if inner is not None:
            await inner.close()

    @property
    def state(self) -> str:
        """``"new"`` (never started), ``"open"``, ``"closing"`` or ``"closed"`` (of the inner client)."""
        inner = self._inner
        if inner is not None:
            return inner.state
        return "closed" if self._closed else "new"

    def __repr__(self) -> str:
        kw = self._kwargs
        return (
            f"<{type(self).__name__} super_stream={self.super_stream!r} host={self.host!r} port={self.port} "
            f"vhost={kw.get('vhost', '/')!r} user={kw.get('username')!r} state={self.state!r}"
            f" {self._describe()}>"
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the inner client (idempotent)."""
        await self._close_inner()

    # ------------------------------------------------------------------ management

    async def create_super_stream(
        self,
        super_stream: str,
        n_partitions: int = 0,
        binding_keys: Sequence[str] | None = None,
        arguments: Mapping[str, Any] | None = None,
        exists_ok: bool = False,
    ) -> None:
        """Create a super stream: partitions ``<ss>-<i>`` (``n_partitions``) or ``<ss>-<key>``.

        :raises ValueError: both ``n_partitions`` and ``binding_keys``, or neither.
        :raises StreamAlreadyExists: unless ``exists_ok``.
        """
        partitions, keys = super_stream_layout(super_stream, n_partitions, binding_keys)
        args = None if arguments is None else {str(k): str(v) for k, v in arguments.items()}
        client = await self.default_client
        try:
            await client.create_super_stream(super_stream, partitions, keys, args)
        except StreamAlreadyExists:
            if not exists_ok:
                raise
        if self._on_layout_change is not None:
            self._on_layout_change(super_stream, False)

    async def delete_super_stream(self, super_stream: str, missing_ok: bool = False) -> None:
        """Delete a super stream and its partitions.

        :raises StreamDoesNotExist: unless ``missing_ok``.
        """
        client = await self.default_client
        try:
            await client.delete_super_stream(super_stream)
        except StreamDoesNotExist:
            if not missing_ok:
                raise
        if self._on_layout_change is not None:
            self._on_layout_change(super_stream, True)

    async def stream_exists(self, stream: str) -> bool:
        """Whether ``stream`` (e.g. a partition) exists."""
        client = await self.default_client
        return bool(await client.stream_exists(stream))
