"""Stream URIs: ``rabbitmq-stream://user:pass@host:port/vhost`` (``rabbitmq-stream+tls://`` for TLS)."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

from rabbitstream.exceptions import InvalidArgument

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
    # Errors never quote the URI: it may hold a password.
    if "@" not in parts.netloc and "@" in uri.partition("://")[2]:
        # "user:pa/ss@host": the user info was cut at '/', '?' or '#' (RFC 3986).
        raise InvalidArgument(
            "the URI has an '@' after its host part: percent-encode '/', '?', '#' and '@' in the "
            "user name, password and virtual host (urllib.parse.quote(password, safe=''))"
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgument(
            "the URI's port is not a number from 0 to 65535 (percent-encode the password "
            "if it contains '/', '?', '#' or '@')"
        ) from None
    out: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
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
