"""rstream-compatible ``_pyamqp.message``: ``Properties`` (and ``Header``), the classes of
:mod:`rabbitstream.amqp`.

Resolved on first access through :mod:`rabbitstream.amqp` (the AMQP codec is a
plugin), so importing this module imports no plugin; without the ``rabbitstream-amqp``
distribution, access raises :class:`~rabbitstream.plugin.PluginNotFoundError`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Header", "Properties"]  # noqa: F822


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rabbitstream import amqp

    value = getattr(amqp, name)
    globals()[name] = value
    return value
