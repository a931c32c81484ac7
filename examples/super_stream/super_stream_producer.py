"""Super stream producer with hash routing on an application property.

Creates super stream RABBITSTREAM_EXAMPLE_SUPER_STREAM (default "invoices", partitions
invoices-0..2) and sends RABBITSTREAM_EXAMPLE_COUNT messages (default 10,000); the
partition of a message is murmur3(routing key) modulo 3, the same as in the Java, Go
and .NET clients.
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
SUPER_STREAM = os.getenv("RABBITSTREAM_EXAMPLE_SUPER_STREAM", "invoices")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "10000"))


async def routing_extractor(message: AMQPMessage) -> str:
    return message.application_properties["id"]


async def publish() -> None:
    async with SuperStreamProducer(
        HOST,
        PORT,
        username=USERNAME,
        password=PASSWORD,
        super_stream=SUPER_STREAM,
        super_stream_creation_option=SuperStreamCreationOption(n_partitions=3),
        routing=RouteType.Hash,
        routing_extractor=routing_extractor,
    ) as producer:
        start = time.perf_counter()
        for i in range(MESSAGES):
            msg = AMQPMessage(body=f"hello: {i}".encode(), application_properties={"id": str(i)})
            await producer.send(msg)
    print(f"Sent {MESSAGES} messages to {SUPER_STREAM} in {time.perf_counter() - start:.3f} s")


asyncio.run(publish())
