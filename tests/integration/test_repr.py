"""``repr()`` of the clients through their life (issue #15 point 5): host, port, vhost, user, state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from rabbitstream import Consumer, Producer, SuperStreamConsumer

if TYPE_CHECKING:
    from support.testenv import BrokerInfo

pytestmark = pytest.mark.integration


async def test_repr_follows_the_state(broker: BrokerInfo) -> None:
    kw: dict[str, Any] = dict(vhost=broker.vhost, username=broker.username, password=broker.password)
    for client in (
        Producer(broker.host, broker.port, **kw),
        Consumer(broker.host, broker.port, **kw),
        SuperStreamConsumer(broker.host, broker.port, super_stream="repr-ss", **kw),
    ):
        where = f"host={broker.host!r} port={broker.port} vhost={broker.vhost!r} user={broker.username!r}"
        assert where in repr(client)
        assert "state='new'" in repr(client)
        await client.start()
        assert "state='open'" in repr(client)
        await client.close()
        assert "state='closed'" in repr(client), repr(client)
        assert "password" not in repr(client)  # (the test broker password is also the user name)
