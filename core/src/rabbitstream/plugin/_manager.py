"""Plugin discovery and the immutable registry the clients use."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import pluggy

from rabbitstream.plugin import _spec
from rabbitstream.plugin._types import (
    CompressionCodec,
    Instrumentation,
    MessageCodec,
    PartitionRouter,
    SaslAuthenticator,
)

__all__ = [
    "DuplicatePluginError",
    "PluginAttributeError",
    "PluginHost",
    "PluginInfo",
    "PluginNotFoundError",
    "Registry",
    "build_registry",
    "get_registry",
    "reset_registry",
]

log = logging.getLogger("rabbitstream.plugin")

DISABLE_AUTOLOAD_ENV = "RABBITSTREAM_DISABLE_PLUGIN_AUTOLOAD"
DISABLED_PLUGINS_ENV = "RABBITSTREAM_DISABLED_PLUGINS"

#: The wire codes of the standard sub-entry compression types (a protocol fact): code -> name.
_COMPRESSION_NAMES: Mapping[int, str] = MappingProxyType({1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"})


def install_hint(kind: str, key: object) -> str | None:
    """Which distribution to install for a missing capability, or ``None`` when unknown.

    Derived from the plugin naming convention (``docs/plugins.md``), not from a list of plugins:
    the plugin providing the capability named ``<name>`` is the distribution ``rabbitstream-<name>``,
    installable as the umbrella extra ``rabbitstream[<name>]`` (the umbrella's
    ``[project.optional-dependencies]`` is the one table of plugins: a new plugin adds its line
    there, core does not change).  Compression codes map to names through the protocol's codes.
    """
    name: object = _COMPRESSION_NAMES.get(key) if kind == "compression" and isinstance(key, int) else key
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        return None
    plugin = name.lower()
    return f"rabbitstream-{plugin} (pip install 'rabbitstream[{plugin}]')"


class PluginNotFoundError(LookupError):
    """A capability was asked for that no installed plugin provides."""

    def __init__(self, kind: str, key: object, available: Iterable[object]) -> None:
        self.kind = kind
        self.key = key
        self.available = tuple(available)
        hint = install_hint(kind, key)
        have = ", ".join(sorted(map(str, self.available))) or "none"
        msg = f"no {kind} {key!r} is installed (installed: {have})"
        if hint:
            msg += f"; install {hint}"
        super().__init__(msg)


class PluginAttributeError(PluginNotFoundError, AttributeError):
    """A module attribute provided by a plugin that is not installed (``rabbitstream.AMQPMessage``
    without ``rabbitstream-amqp``): an ``AttributeError``, so that ``hasattr``, ``getattr(m, n, None)``
    and ``from m import *`` treat it as a missing attribute, whose message names what to install."""

    def __init__(
        self, kind: str, key: object, available: Iterable[object], *, module: str, attribute: str
    ) -> None:
        super().__init__(kind, key, available)
        self.args = (f"module {module!r} has no attribute {attribute!r}: {self.args[0]}",)
        self.name = attribute


class DuplicatePluginError(RuntimeError):
    """Two plugins claim the same compression code or name."""

    def __init__(self, kind: str, key: object, first: str, second: str) -> None:
        self.kind = kind
        self.key = key
        self.providers = (first, second)
        super().__init__(
            f"{kind} {key!r} is provided by both {first} and {second}; uninstall one, "
            f"or block one with {DISABLED_PLUGINS_ENV}=<entry point name>"
        )


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One registered plugin: entry-point name, distribution and version."""

    name: str
    distribution: str
    version: str


_T = TypeVar("_T")


def _lookup(kind: str, table: Mapping[Any, _T], key: object) -> _T:
    try:
        return table[key]
    except KeyError:
        raise PluginNotFoundError(kind, key, table.keys()) from None


@dataclass(frozen=True, slots=True)
class Registry:
    """Everything the installed plugins provide, resolved once.

    The mappings are read-only; clients keep a reference to one registry and do
    plain dict look-ups on it (never a hook call) on the hot path.
    """

    compression: Mapping[int, CompressionCodec] = field(default_factory=dict)
    message_codecs: Mapping[str, MessageCodec] = field(default_factory=dict)
    sasl: Mapping[str, SaslAuthenticator] = field(default_factory=dict)
    routing: Mapping[str, PartitionRouter] = field(default_factory=dict)
    #: telemetry instrumentations by name (empty: producers and consumers call no observer at all)
    instrumentations: Mapping[str, Instrumentation] = field(default_factory=dict)
    plugins: tuple[PluginInfo, ...] = ()
    #: ``(kind, key) -> provider`` for error messages and ``plugins`` listings.
    providers: Mapping[tuple[str, object], str] = field(default_factory=dict)

    def compression_codec(self, code_or_name: int | str) -> CompressionCodec:
        """The codec for a wire code or a name; :class:`PluginNotFoundError` if none."""
        if isinstance(code_or_name, str):
            by_name = {c.name: c for c in self.compression.values()}
            return _lookup("compression", by_name, code_or_name)
        return _lookup("compression", self.compression, int(code_or_name))

    def message_codec(self, name: str) -> MessageCodec:
        """The message codec called ``name``."""
        return _lookup("message codec", self.message_codecs, name)

    def sasl_mechanism(self, name: str) -> SaslAuthenticator:
        """The SASL mechanism called ``name`` (e.g. ``"PLAIN"``)."""
        return _lookup("SASL mechanism", self.sasl, name)

    def routing_strategy(self, name: str) -> PartitionRouter:
        """The routing strategy called ``name`` (e.g. ``"hash"``)."""
        return _lookup("routing strategy", self.routing, name)


def _dist_of(plugin: object, distinfo: Mapping[int, tuple[str, str, str]]) -> str:
    info = distinfo.get(id(plugin))
    if info is not None:
        return f"{info[1]} {info[2]}"
    return getattr(plugin, "__name__", type(plugin).__name__)


class PluginHost:
    """A :class:`pluggy.PluginManager` with one typed method per hook."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(_spec.NAME)
        self.pm.add_hookspecs(_spec)
        self._distinfo: dict[int, tuple[str, str, str]] = {}

    def load(
        self,
        *,
        autoload: bool | None = None,
        blocked: Iterable[str] | None = None,
        plugins: Iterable[object] = (),
    ) -> None:
        """Register entry-point plugins (unless disabled) and ``plugins``.

        :param autoload: load entry points in group ``rabbitstream``; default:
            on unless ``RABBITSTREAM_DISABLE_PLUGIN_AUTOLOAD`` is set to ``1``.
        :param blocked: entry-point names not to load; default: the
            comma-separated ``RABBITSTREAM_DISABLED_PLUGINS``.
        :param plugins: plugin objects or modules to register in code.
        """
        if autoload is None:
            autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true", "yes")
        if blocked is None:
            blocked = os.environ.get(DISABLED_PLUGINS_ENV, "").split(",")
        for name in blocked:
            name = name.strip()  # "zstd, lz4" blocks "lz4", not " lz4"
            if name:
                self.pm.set_blocked(name)
        if autoload:
            self._load_entry_points()
        for plugin in plugins:
            self._register(plugin, None, "(registered in code)")
        self._drop_invalid()

    def _load_entry_points(self) -> None:
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != _spec.NAME or self.pm.is_blocked(ep.name):
                    continue
                if self.pm.get_plugin(ep.name) is not None:
                    continue
                try:
                    plugin = ep.load()
                except ImportError as exc:
                    log.warning(
                        "rabbitstream plugin %r from %s %s could not be imported and is skipped: %s",
                        ep.name,
                        dist.metadata["name"],
                        dist.version,
                        exc,
                    )
                    continue
                if self._register(plugin, ep.name, f"{dist.metadata['name']} {dist.version}"):
                    self._distinfo[id(plugin)] = (ep.name, dist.metadata["name"], dist.version)

    def _register(self, plugin: object, name: str | None, origin: str) -> bool:
        """Register ``plugin``; one whose hook implementations do not match their specs is logged
        (naming ``origin``, its distribution) and skipped, as one that fails to import."""
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            log.warning("rabbitstream plugin %r from %s is invalid and is skipped: %s", name, origin, exc)
            return False
        return True

    def _drop_invalid(self) -> None:
        """Unregister (with a warning naming the distribution) every plugin implementing a hook that
        no spec declares, e.g. a misspelt one (pluggy's ``check_pending()`` would raise for all)."""
        invalid: dict[int, tuple[object, list[str]]] = {}
        for hook_name in list(vars(self.pm.hook)):
            if hook_name.startswith("_"):
                continue
            caller = getattr(self.pm.hook, hook_name)
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    invalid.setdefault(id(impl.plugin), (impl.plugin, []))[1].append(hook_name)
        for plugin, hooks in invalid.values():
            log.warning(
                "rabbitstream plugin %s is skipped: %s %s no rabbitstream hook (misspelt?)",
                _dist_of(plugin, self._distinfo),
                ", ".join(sorted(hooks)),
                "is" if len(hooks) == 1 else "are",
            )
            self._distinfo.pop(id(plugin), None)
            self.pm.unregister(plugin)

    def plugin_infos(self) -> tuple[PluginInfo, ...]:
        """The registered plugins with their distributions and versions."""
        out = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            info = self._distinfo.get(id(plugin))
            if info is not None:
                out.append(PluginInfo(info[0], info[1], info[2]))
            else:
                out.append(PluginInfo(name, "(registered in code)", ""))
        return tuple(sorted(out, key=lambda p: p.name))

    def _collect(self, hook_name: str) -> list[tuple[str, Any]]:
        """Call one collection hook impl by impl, to attribute results."""
        caller = getattr(self.pm.hook, hook_name)
        out: list[tuple[str, Any]] = []
        # get_hookimpls() is in call order reversed (LIFO); keep pluggy's order.
        for impl in reversed(caller.get_hookimpls()):
            provider = _dist_of(impl.plugin, self._distinfo)
            out.extend((provider, item) for item in impl.function() or ())
        return out

    def compression_codecs(self) -> list[tuple[str, CompressionCodec]]:
        """Typed wrapper of ``rabbitstream_compression_codecs``."""
        return self._collect("rabbitstream_compression_codecs")

    def message_codecs(self) -> list[tuple[str, MessageCodec]]:
        """Typed wrapper of ``rabbitstream_message_codecs``."""
        return self._collect("rabbitstream_message_codecs")

    def sasl_mechanisms(self) -> list[tuple[str, SaslAuthenticator]]:
        """Typed wrapper of ``rabbitstream_sasl_mechanisms``."""
        return self._collect("rabbitstream_sasl_mechanisms")

    def routing_strategies(self) -> list[tuple[str, PartitionRouter]]:
        """Typed wrapper of ``rabbitstream_routing_strategies``."""
        return self._collect("rabbitstream_routing_strategies")

    def instrumentations(self) -> list[tuple[str, Instrumentation]]:
        """Typed wrapper of ``rabbitstream_instrumentations``."""
        return self._collect("rabbitstream_instrumentations")

    def build(self, *, override: bool = False) -> Registry:
        """Resolve every hook once into a :class:`Registry`.

        :param override: let a later-called plugin replace an earlier one's key
            instead of raising :class:`DuplicatePluginError`.  Default plugins
            use ``trylast`` so that a third-party plugin is always seen first.
        """
        providers: dict[tuple[str, object], str] = {}

        def index(
            kind: str, items: Sequence[tuple[str, _T]], key: Callable[[_T], object]
        ) -> Mapping[Any, _T]:
            table: dict[object, _T] = {}
            for provider, item in items:
                k = key(item)
                if k in table:
                    if override:
                        continue  # the first (highest-priority) provider wins
                    raise DuplicatePluginError(kind, k, providers[(kind, k)], provider)
                table[k] = item
                providers[(kind, k)] = provider
            return MappingProxyType(table)

        return Registry(
            compression=index("compression", self.compression_codecs(), lambda c: int(c.code)),
            message_codecs=index("message codec", self.message_codecs(), lambda c: c.name),
            sasl=index("SASL mechanism", self.sasl_mechanisms(), lambda m: m.name),
            routing=index("routing strategy", self.routing_strategies(), lambda r: r.name),
            instrumentations=index("instrumentation", self.instrumentations(), lambda i: i.name),
            plugins=self.plugin_infos(),
            providers=MappingProxyType(providers),
        )


def build_registry(
    *,
    autoload: bool | None = None,
    blocked: Iterable[str] | None = None,
    plugins: Iterable[object] = (),
    override: bool = False,
) -> Registry:
    """Discover plugins and build a fresh :class:`Registry` (see :meth:`PluginHost.load`)."""
    host = PluginHost()
    host.load(autoload=autoload, blocked=blocked, plugins=plugins)
    return host.build(override=override)


_default: Registry | None = None
_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, built on first call from the installed plugins."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = build_registry()
    return _default


def reset_registry(registry: Registry | None = None) -> None:
    """Forget (or replace) the process-wide registry; for tests and reloads."""
    global _default
    with _lock:
        _default = registry
