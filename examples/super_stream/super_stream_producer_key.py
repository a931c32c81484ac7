"""Super stream producer with key routing: binding keys key1..key3, one partition each.

Creates super stream RABBITSTREAM_EXAMPLE_SUPER_STREAM (default "invoices-key", partitions
invoices-key-key1..key3) and sends RABBITSTREAM_EXAMPLE_COUNT messages (default 10,000)
round-robin over the three keys; the broker's binding decides the partition.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD.
"""

import asyncio
import os
import time

from rabbitstream import AMQPMessage, RouteType, SuperStreamCreationOption, SuperStreamProducer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
SUPER_STREAM = os.getenv("RABBITSTREAM_EXAMPLE_SUPER_STREAM", "invoices-key")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "10000"))


async def routing_extractor(message: AMQPMessage) -> str:
    return message.application_properties["key"]


async def publish() -> None:
    async with SuperStreamProducer(
        HOST,
        PORT,
        username=USERNAME,
        password=PASSWORD,
        super_stream=SUPER_STREAM,
        super_stream_creation_option=SuperStreamCreationOption(
            n_partitions=0, binding_keys=["key1", "key2", "key3"]
        ),
        routing=RouteType.Key,
        routing_extractor=routing_extractor,
    ) as producer:
        start = time.perf_counter()
        for i in range(MESSAGES):
            key = f"key{i % 3 + 1}"
            await producer.send(AMQPMessage(body=f"hello: {i}".encode(), application_properties={"key": key}))
    print(f"Sent {MESSAGES} messages to {SUPER_STREAM} by key in {time.perf_counter() - start:.3f} s")


asyncio.run(publish())
