"""The fault proxy itself (no broker): closing it leaves no transport behind, even when its upstream
peer stopped reading and the proxy still holds data for it (a leaked transport is a ResourceWarning
at garbage collection, which fails whichever test happens to collect it)."""

from __future__ import annotations

import gc
import socket
import warnings

from tools.faultproxy import FaultProxy


def test_close_leaves_no_transport_when_the_upstream_stopped_reading() -> None:
    sink = socket.create_server(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    proxy = FaultProxy([sink.getsockname()[:2]])
    client = socket.create_connection(proxy.address)
    upstream, _ = sink.accept()  # accepted, never read: the proxy's write buffer toward it fills up
    try:
        client.setblocking(False)
        junk = b"\0" * 65536
        sent = 0
        for _ in range(20_000):
            try:
                sent += client.send(junk)
            except BlockingIOError:
                break
        assert sent > 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            proxy.close()
            gc.collect()
        leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert leaks == [], [str(w.message) for w in leaks]
    finally:
        client.close()
        upstream.close()
        sink.close()
