"""A long-running client following the recommended practices, configured by ``appsettings.json``.

* several producers and consumers, on a stream or a super stream (``"SuperStream": true``);
* automatic recovery with back-off (``BackOffRecoveryStrategy``) on connection loss and
  stream topology changes, plus an ``on_close_handler`` that reports what happened;
* every send confirmed through ``on_publish_confirm``, with counters printed each second;
* ``load_balancer_mode`` and ``max_*_by_connection`` from the settings.

Kill or restart the broker node while it runs: producers and consumers recover.
Env overrides: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM,
RABBITSTREAM_EXAMPLE_COUNT (messages per producer), RABBITSTREAM_EXAMPLE_TIMEOUT.
"""

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from rabbitstream import (
    AMQPMessage,
    BackOffRecoveryStrategy,
    ConfirmationStatus,
    Consumer,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetType,
    OnClosedErrorInfo,
    Producer,
    SuperStreamConsumer,
    SuperStreamCreationOption,
    SuperStreamProducer,
    amqp_decoder,
)

settings: dict[str, Any] = json.loads((Path(__file__).parent / "appsettings.json").read_text())
for key, env, kind in [
    ("Host", "RABBITSTREAM_HOST", str),
    ("Port", "RABBITSTREAM_PORT", int),
    ("Username", "RABBITSTREAM_USERNAME", str),
    ("Password", "RABBITSTREAM_PASSWORD", str),
    ("StreamName", "RABBITSTREAM_EXAMPLE_STREAM", str),
    ("MessagesToSend", "RABBITSTREAM_EXAMPLE_COUNT", int),
    ("TimeoutSeconds", "RABBITSTREAM_EXAMPLE_TIMEOUT", float),
]:
    if os.getenv(env):
        settings[key] = kind(os.environ[env])

STREAM = settings["StreamName"]
TO_SEND = settings["MessagesToSend"]
counters = {"sent": 0, "confirmed": 0, "failed": 0, "consumed": 0}


async def on_close(info: OnClosedErrorInfo) -> None:
    print(f"connection event: {info.reason} for streams {info.streams}; recovering")


def on_confirm(status: ConfirmationStatus) -> None:
    counters["confirmed" if status.is_confirmed else "failed"] += 1


async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
    counters["consumed"] += 1


def common() -> dict[str, Any]:
    return {
        "host": settings["Host"],
        "port": settings["Port"],
        "username": settings["Username"],
        "password": settings["Password"],
        "load_balancer_mode": settings["LoadBalancer"],
        "on_close_handler": on_close,
        "recovery_strategy": BackOffRecoveryStrategy(True),  # one instance per client
    }


async def routing_extractor(message: AMQPMessage) -> str:
    return str(message.application_properties["id"])


async def make_producer() -> Any:
    if settings["SuperStream"]:
        return SuperStreamProducer(
            **common(),
            super_stream=STREAM,
            super_stream_creation_option=SuperStreamCreationOption(n_partitions=settings["Partitions"]),
            routing_extractor=routing_extractor,
            max_publishers_by_connection=settings["MaxPublishersByConnection"],
        )
    producer = Producer(**common(), max_publishers_by_connection=settings["MaxPublishersByConnection"])
    await producer.start()
    await producer.create_stream(STREAM, exists_ok=True)
    return producer


async def produce(producer: Any, number: int) -> None:
    delay = settings["DelayDuringSendMs"] / 1000
    for i in range(TO_SEND):
        msg = AMQPMessage(body=f"producer {number} message {i}".encode(), application_properties={"id": i})
        if settings["SuperStream"]:
            await producer.send(msg, on_publish_confirm=on_confirm)
        else:
            await producer.send(STREAM, msg, on_publish_confirm=on_confirm)
        counters["sent"] += 1
        if delay:
            await asyncio.sleep(delay)


async def make_consumer() -> Any:
    first = ConsumerOffsetSpecification(OffsetType.FIRST, None)
    if settings["SuperStream"]:
        consumer: Any = SuperStreamConsumer(
            **common(),
            super_stream=STREAM,
            super_stream_creation_option=SuperStreamCreationOption(n_partitions=settings["Partitions"]),
            max_subscribers_by_connection=settings["MaxSubscribersByConnection"],
        )
        await consumer.start()
        await consumer.subscribe(on_message, decoder=amqp_decoder, offset_specification=first)
    else:
        consumer = Consumer(**common(), max_subscribers_by_connection=settings["MaxSubscribersByConnection"])
        await consumer.start()
        await consumer.subscribe(STREAM, on_message, decoder=amqp_decoder, offset_specification=first)
    return consumer


async def main() -> int:
    producers = [await make_producer() for _ in range(settings["Producers"])]
    for p in producers:
        if settings["SuperStream"]:
            await p.start()  # creates the super stream (exists_ok) on first start
    consumers = [await make_consumer() for _ in range(settings["Consumers"])]
    total = TO_SEND * len(producers)
    start = time.monotonic()
    sending = asyncio.gather(*(produce(p, n) for n, p in enumerate(producers)))
    done = False
    while time.monotonic() - start < settings["TimeoutSeconds"]:
        await asyncio.sleep(1)
        print(f"{time.monotonic() - start:5.0f}s {counters}")
        settled = counters["confirmed"] + counters["failed"]
        if sending.done() and settled >= total and counters["consumed"] >= total * len(consumers):
            done = True
            break
    if not sending.done():
        sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    for client in [*producers, *consumers]:
        await client.close()
    print(f"Done: {counters}" if done else f"Timed out: {counters}")
    return 0 if done and counters["failed"] == 0 else 1


raise SystemExit(asyncio.run(main()))
