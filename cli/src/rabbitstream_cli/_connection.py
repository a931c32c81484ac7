"""Connection options shared by every command (``perf``, ``stream``, ``consume``, ``publish``).

One argument group (URI, host/port, credentials, TLS, SASL, load-balancer mode), one
dataclass, and :func:`redact` so that no password is ever printed back: not in an
error about a bad ``--uri`` or ``$RABBITSTREAM_BROKER_URI``, not in a ``repr``.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "URI_ENV",
    "ConnectionOptions",
    "add_connection_arguments",
    "connection_from_args",
    "probe",
    "redact",
]

#: environment variable holding the default broker URI
URI_ENV = "RABBITSTREAM_BROKER_URI"
_SCHEMES = ("rabbitmq-stream", "rabbitmq-stream+tls")


def redact(uri: str) -> str:
    """``uri`` with its password (if any) replaced by ``***``; unparsable text is hidden whole."""
    try:
        parts = urlsplit(uri)
        if parts.password is None:
            return uri
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{parts.username or ''}:***@{host}{port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparsable URI>"


@dataclass
class ConnectionOptions:
    """Where and how to connect; ``password`` is left out of ``repr``."""

    host: str = "localhost"
    port: int = 5552
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    vhost: str = "/"
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    sasl: str = "plain"
    load_balancer: bool = False

    @property
    def target(self) -> str:
        """``host:port`` (with `` (tls)``) for display."""
        return f"{self.host}:{self.port}{' (tls)' if self.tls else ''}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (``None`` without TLS)."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca)
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`rabbitstream.Client.connect`."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "vhost": self.vhost,
            "ssl_context": self.ssl_context(),
            "sasl_mechanism": "EXTERNAL" if self.sasl == "external" else "PLAIN",
        }

    def producer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by ``Producer``/``Consumer`` and the super-stream classes."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "vhost": self.vhost,
            "ssl_context": self.ssl_context(),
            "load_balancer_mode": self.load_balancer,
        }


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``connection`` argument group to ``p``."""
    c = p.add_argument_group("connection")
    c.add_argument(
        "--uri",
        help="rabbitmq-stream://user:pass@host:port/vhost (rabbitmq-stream+tls:// for TLS); "
        f"default: ${URI_ENV} or localhost:5552",
    )
    c.add_argument("--host", help="broker host (overrides --uri)")
    c.add_argument("--port", type=int, help="stream port (default 5552, 5551 with --tls)")
    c.add_argument("--username", help="default guest")
    c.add_argument("--password", help="default guest")
    c.add_argument("--vhost", help="default /")
    c.add_argument("--tls", action="store_true", help="connect with TLS")
    c.add_argument("--ca", help="CA bundle (PEM) to verify the broker with (implies --tls)")
    c.add_argument("--cert", help="client certificate (PEM) (implies --tls)")
    c.add_argument("--key", help="client private key (PEM) for --cert")
    c.add_argument(
        "--sasl",
        choices=("plain", "external"),
        default="plain",
        help="SASL mechanism (external = authenticate by the client certificate)",
    )
    c.add_argument(
        "--load-balancer",
        action="store_true",
        help="the address is a load balancer: reconnect until the wanted node is reached",
    )


def _apply_uri(opts: ConnectionOptions, uri: str, source: str) -> None:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{source} is not a valid URI ({redact(uri)}): {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            f"{source} must start with rabbitmq-stream:// or rabbitmq-stream+tls://, not {redact(uri)!r}"
        )
    if parts.scheme.endswith("+tls"):
        opts.tls = True
        opts.port = 5551
    if parts.hostname:
        opts.host = parts.hostname
    if port:
        opts.port = port
    if parts.username:
        opts.username = unquote(parts.username)
    if parts.password is not None:
        opts.password = unquote(parts.password)
    if parts.path not in ("", "/"):
        opts.vhost = unquote(parts.path[1:])


def connection_from_args(a: argparse.Namespace, parser: argparse.ArgumentParser) -> ConnectionOptions:
    """Build and validate the options; ``parser.error`` (exit status 2) on bad ones."""
    opts = ConnectionOptions()
    uri = a.uri or os.environ.get(URI_ENV)
    try:
        if uri:
            _apply_uri(opts, uri, "--uri" if a.uri else f"${URI_ENV}")
    except ValueError as exc:
        parser.error(str(exc))
    if a.tls or a.ca or a.cert:
        if not opts.tls and a.port is None and not uri:
            opts.port = 5551
        opts.tls = True
    for name in ("host", "port", "username", "password", "vhost"):
        value = getattr(a, name)
        if value is not None:
            setattr(opts, name, value)
    if not 0 < opts.port < 65536:
        parser.error(f"--port must be within 1-65535, not {opts.port}")
    opts.ca, opts.cert, opts.key, opts.sasl = a.ca, a.cert, a.key, a.sasl
    if a.key and not a.cert:
        parser.error("--key needs --cert")
    if a.sasl == "external" and not a.cert:
        parser.error("--sasl external needs a client certificate (--cert/--key)")
    for path in (a.ca, a.cert, a.key):
        if path and not os.path.isfile(path):
            parser.error(f"file not found: {path}")
    opts.load_balancer = a.load_balancer
    return opts


def probe(host: str, port: int, timeout: float = 3.0) -> str | None:
    """Open (and close) a TCP connection to the broker.

    :return: ``None`` when something listens, else the error text.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


#: the message printed when nothing listens (``{target}``, ``{error}``)
NO_BROKER = (
    "no RabbitMQ stream listener answers on {target}: {error}\n"
    "Start RabbitMQ with the stream plugin (rabbitmq-plugins enable rabbitmq_stream), or point the "
    f"command at a broker with --uri/--host/--port or ${URI_ENV}."
)
