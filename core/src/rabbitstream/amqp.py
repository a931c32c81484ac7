"""rstream-compatible ``rabbitstream.amqp``: ``AMQPMessage``, ``amqp_decoder``, ...

The AMQP 1.0 codec is a plugin (distribution ``rabbitstream-amqp``); this module
resolves the names through the plugin registry on first access, so the core
imports no plugin.  Without the plugin, access raises
:class:`~rabbitstream.plugin.PluginNotFoundError` naming the distribution.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AMQPMessage", "Header", "Properties", "amqp_decoder", "amqp_decoder_str"]  # noqa: F822


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rabbitstream.plugin import get_registry

    codec = get_registry().message_codec("amqp")
    exports = getattr(codec, "exports", {})
    try:
        value = exports[name]
    except KeyError:
        raise AttributeError(f"the installed 'amqp' codec does not export {name!r}") from None
    globals()[name] = value
    return value
