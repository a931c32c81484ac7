"""The connection-layer pieces written once (issue #13): ``ConnectionOwner``,
``ConnectionOptions.from_kwargs``, ``SuperStreamClient`` and the one signature of ``iterate`` /
``iterate_batches`` (no broker)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from rabbitstream import Consumer, Producer, SuperStreamConsumer, SuperStreamProducer
from rabbitstream._connection._owner import ConnectionOwner
from rabbitstream._connection._pool import ConnectionOptions
from rabbitstream._superstream._base import SuperStreamClient, inner_kwargs
from rabbitstream.constants import SlasMechanism
from rabbitstream.recovery import BackOffRecoveryStrategy


def test_from_kwargs_takes_the_option_fields_and_the_sasl_mechanism_name() -> None:
    ssl_context: Any = None
    kwargs = dict(
        ssl_context=ssl_context, vhost="v", username="u", password="p", frame_max=4096, heartbeat=7,
        registry=None, sasl_configuration_mechanism=SlasMechanism.MechanismExternal, max_retries=3,
        self=object(),
    )  # fmt: skip
    options = ConnectionOptions.from_kwargs(kwargs, max_inbound_frame_size=1 << 20)
    assert options == ConnectionOptions(
        vhost="v", username="u", password="p", sasl_mechanism="EXTERNAL", frame_max=4096, heartbeat=7,
        max_inbound_frame_size=1 << 20,
    )  # fmt: skip


def test_producer_and_consumer_get_their_options_pool_and_recovery_from_one_owner() -> None:
    producer = Producer("h", 1, username="u", password="p", vhost="v", heartbeat=5, connection_name="pn")
    consumer = Consumer("h", 1, username="u", password="p", vhost="v", frame_max=2048, max_chunk_records=9)
    for owner, kind in ((producer, "producer"), (consumer, "consumer")):
        assert isinstance(owner, ConnectionOwner)
        assert owner._recovery.kind == kind
        assert owner._recovery.entity is owner
        assert owner._conns is owner._pool.connections and owner._nodes is owner._pool.nodes
        assert owner._pool.options.vhost == "v" and owner._pool.options.username == "u"
    assert producer._pool.options.heartbeat == 5 and producer._pool.connection_name == "pn"
    assert producer._recovery.strategy.is_enabled  # rstream's Producer default: recovery on
    assert consumer._pool.options.frame_max == 2048 and consumer._pool.options.sasl_mechanism == "PLAIN"
    limits = consumer._pool.options.chunk_limits
    assert limits is not None and limits.max_records == 9
    assert not consumer._recovery.strategy.is_enabled  # rstream's Consumer default: recovery off
    assert producer.state == consumer.state == "new"


def test_iterate_batches_has_the_signature_of_iterate() -> None:
    iterate = inspect.signature(Consumer.iterate)
    batches = inspect.signature(Consumer.iterate_batches)
    assert batches.parameters == iterate.parameters
    assert batches.return_annotation == "BatchStream"
    consumer = Consumer("h", username="u", password="p")
    with pytest.raises(TypeError):
        consumer.iterate_batches("s", no_such_keyword=1)  # type: ignore[call-arg]
    stream = consumer.iterate_batches("s", initial_credit=3, subscriber_name="n")
    assert stream.subscription.initial_credit == 3 and stream.subscription.name == "n"


def test_inner_kwargs_leaves_out_the_wrappers_own_keywords() -> None:
    arguments = {"self": 1, "host": "h", "port": 2, "__class__": 3, "a": 4, "own": 5, "rest": {"b": 6}}
    assert inner_kwargs(arguments, ("own",), "rest") == {"a": 4, "b": 6}


class _Router:
    """A plugin-style routing strategy (the core alone installs none)."""

    name = "first"

    def route(self, routing_key: str, metadata: Any) -> list[str]:
        return list(metadata.partitions())[:1]


def test_super_stream_clients_hand_their_keywords_to_the_inner_client() -> None:
    strategy = BackOffRecoveryStrategy(False)
    ssp = SuperStreamProducer(
        "h", 1, username="u", password="p", super_stream="ss", routing_extractor=str, routing=_Router(),
        vhost="v", recovery_strategy=strategy, batch_size=7,
    )  # fmt: skip
    ssc = SuperStreamConsumer("h", 1, username="u", password="p", super_stream="ss", prefer_replica=False)
    assert isinstance(ssp, SuperStreamClient) and isinstance(ssc, SuperStreamClient)
    for client in (ssp, ssc):
        own = {"super_stream", "super_stream_creation_option", "host", "port", "self"}
        assert not own & set(client._kwargs)
    assert not {"routing_extractor", "routing", "publisher_name", "on_no_route"} & set(ssp._kwargs)
    assert ssp._kwargs["recovery_strategy"] is strategy and ssp._kwargs["batch_size"] == 7
    producer = ssp._new_inner(ssp.host, ssp.port, ssp._kwargs)
    assert producer._pool.options.vhost == "v" and producer._batch_size == 7
    consumer = ssc._new_inner(ssc.host, ssc.port, ssc._kwargs)
    assert consumer._recovery.strategy.is_enabled  # a super-stream consumer recovers by default
    assert consumer._prefer_replica is False
    assert repr(ssc).endswith("state='new' partitions=0>") and "routing=" in repr(ssp)
    with pytest.raises(ValueError, match="super_stream must not be empty"):
        SuperStreamConsumer("h", username="u", password="p", super_stream="")
