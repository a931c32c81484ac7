"""Stream URIs: ``rabbitmq-stream://user:pass@host:port/vhost`` (``rabbitmq-stream+tls://`` for TLS)."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_PORT", "DEFAULT_TLS_PORT", "parse_uri"]

DEFAULT_PORT = 5552
DEFAULT_TLS_PORT = 5551


def parse_uri(uri: str, **kwargs: Any) -> dict[str, Any]:
    """The :meth:`connect` keyword arguments for ``uri`` (``kwargs`` override)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("rabbitmq-stream", "rabbitmq-stream+tls"):
        raise ValueError(f"unsupported URI scheme {parts.scheme!r} (use rabbitmq-stream[+tls]://)")
    tls = scheme.endswith("+tls")
    out: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
    }
    if parts.username is not None:
        out["username"] = unquote(parts.username)
    if parts.password is not None:
        out["password"] = unquote(parts.password)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if path:
        out["vhost"] = unquote(path)
    if tls:
        out["ssl_context"] = kwargs.get("ssl_context") or ssl.create_default_context()
    out.update(kwargs)
    return out
