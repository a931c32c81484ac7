"""Tiny stdlib client for the RabbitMQ management HTTP API (test helper).

Used to find and close (stream) connections from tests::

    m = Management("localhost", 15672, "guest", "guest")
    name = m.wait_connection(client_name="my-conn")      # polls: stats DB lag, up to ~5 s
    m.close_connection(name)                             # retries on 404, returns once deleted

Quirk: the API answers 404 for a connection the stats database has not seen yet (stats interval up to
5 s), so lookups and deletes retry until ``timeout``.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

__all__ = ["Management", "ManagementError"]


class ManagementError(RuntimeError):
    """An HTTP error or timeout talking to the management API."""


class Management:
    """Blocking management API client (basic auth, JSON).

    :param host: management host.
    :param port: management HTTP port (15672 for the main node).
    :param username: user with the ``administrator`` or ``monitoring`` tag.
    :param password: its password.
    """

    def __init__(self, host: str, port: int, username: str = "guest", password: str = "guest") -> None:
        self.base = f"http://{host}:{port}/api"
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._auth = f"Basic {token}"

    def request(self, method: str, path: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        """Send one request.

        :param method: HTTP method.
        :param path: path below ``/api`` (already quoted), e.g. ``/connections``.
        :param body: JSON-serialisable body or ``None``.
        :returns: decoded JSON, or ``None`` for an empty body.
        :raises urllib.error.HTTPError: on an HTTP error status.
        """
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", self._auth)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def overview(self) -> dict[str, Any]:
        """:returns: ``GET /api/overview``."""
        result: dict[str, Any] = self.request("GET", "/overview")
        return result

    def connections(self) -> list[dict[str, Any]]:
        """:returns: every connection known to the stats DB (AMQP and stream)."""
        result: list[dict[str, Any]] = self.request("GET", "/connections")
        return result

    def stream_connections(self) -> list[dict[str, Any]]:
        """:returns: stream connections (``rabbitmq_stream_management``)."""
        result: list[dict[str, Any]] = self.request("GET", "/stream/connections")
        return result

    def wait_connection(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        client_name: str | None = None,
        timeout: float = 10.0,
    ) -> str:
        """Poll until a connection matches and return its management name.

        :param predicate: test on the connection JSON object.
        :param client_name: match ``client_properties.connection_name`` / ``client_provided_name``.
        :param timeout: seconds to wait.
        :raises ManagementError: nothing matched in time.
        """

        def match(conn: dict[str, Any]) -> bool:
            if client_name is not None:
                props = conn.get("client_properties") or {}
                names = {conn.get("client_provided_name"), props.get("connection_name")}
                if client_name not in names:
                    return False
            return predicate is None or predicate(conn)

        deadline = time.monotonic() + timeout
        while True:
            for conn in self.connections():
                if match(conn):
                    return str(conn["name"])
            if time.monotonic() >= deadline:
                raise ManagementError(f"no matching connection after {timeout:.1f}s")
            time.sleep(0.25)

    def close_connection(self, name: str, reason: str = "closed by test", *, timeout: float = 10.0) -> None:
        """``DELETE /api/connections/<name>``, retrying while the API answers 404.

        :raises ManagementError: still 404 after ``timeout`` or another HTTP error.
        """
        path = "/connections/" + urllib.parse.quote(name, safe="")
        deadline = time.monotonic() + timeout
        while True:
            req = urllib.request.Request(self.base + path, method="DELETE")
            req.add_header("Authorization", self._auth)
            req.add_header("X-Reason", reason)
            try:
                with urllib.request.urlopen(req, timeout=10.0):
                    return
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code != 404:
                    raise ManagementError(f"DELETE {path}: HTTP {exc.code}") from exc
                if time.monotonic() >= deadline:
                    raise ManagementError(f"connection {name!r} still unknown after {timeout:.1f}s") from exc
            time.sleep(0.25)

    def close_connections(
        self, predicate: Callable[[dict[str, Any]], bool] | None = None, *, client_name: str | None = None
    ) -> int:
        """Close every currently listed connection that matches.

        :returns: how many were closed.
        """
        closed = 0
        for conn in self.connections():
            props = conn.get("client_properties") or {}
            if client_name is not None and client_name not in (
                conn.get("client_provided_name"),
                props.get("connection_name"),
            ):
                continue
            if predicate is not None and not predicate(conn):
                continue
            self.close_connection(str(conn["name"]))
            closed += 1
        return closed
