"""rstream-compatible ``rabbitstream.amqp``: ``AMQPMessage``, ``amqp_decoder``, ...

The AMQP 1.0 codec is a plugin (distribution ``rabbitstream-amqp``); this module
resolves the names through the plugin registry on first access, so the core
imports no plugin at run time.  Without the plugin, access raises
:class:`~rabbitstream.plugin.PluginAttributeError`, an ``AttributeError`` (``hasattr``
and ``getattr(..., default)`` behave as for any missing attribute) naming the
distribution to install.

Type checkers see the plugin's own, fully typed names (a ``TYPE_CHECKING``-only import:
with the plugin missing they see nothing more precise than ``Any``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["AMQPMessage", "Header", "Properties", "amqp_decoder", "amqp_decoder_str"]

if TYPE_CHECKING:  # pragma: no cover - the plugin's typed names, for type checkers only
    from rabbitstream_amqp import AMQPMessage as AMQPMessage
    from rabbitstream_amqp import Header as Header
    from rabbitstream_amqp import Properties as Properties
    from rabbitstream_amqp import amqp_decoder as amqp_decoder
    from rabbitstream_amqp import amqp_decoder_str as amqp_decoder_str


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rabbitstream.plugin import PluginAttributeError, PluginNotFoundError, get_registry

    try:
        codec = get_registry().message_codec("amqp")
    except PluginNotFoundError as exc:
        raise PluginAttributeError(
            exc.kind, exc.key, exc.available, module=__name__, attribute=name
        ) from None
    exports = getattr(codec, "exports", {})
    try:
        value = exports[name]
    except KeyError:
        raise AttributeError(f"the installed 'amqp' codec does not export {name!r}") from None
    globals()[name] = value
    return value
