"""Producer for the single-active-consumer example: hash routing on ``properties.message_id``.

Creates super stream RABBITSTREAM_EXAMPLE_SUPER_STREAM (default "invoices-sac", 3
partitions) and sends RABBITSTREAM_EXAMPLE_COUNT messages (default 10,000).
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD.
"""

import asyncio
import os
import time

from rabbitstream import AMQPMessage, Properties, SuperStreamCreationOption, SuperStreamProducer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
SUPER_STREAM = os.getenv("RABBITSTREAM_EXAMPLE_SUPER_STREAM", "invoices-sac")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "10000"))


async def routing_extractor(message: AMQPMessage) -> str:
    return message.properties.message_id


async def publish() -> None:
    async with SuperStreamProducer(
        HOST,
        PORT,
        username=USERNAME,
        password=PASSWORD,
        super_stream=SUPER_STREAM,
        super_stream_creation_option=SuperStreamCreationOption(n_partitions=3),
        routing_extractor=routing_extractor,
    ) as producer:
        start = time.perf_counter()
        for i in range(MESSAGES):
            msg = AMQPMessage(body=f"invoice {i}".encode(), properties=Properties(message_id=str(i)))
            await producer.send(msg)
    print(f"Sent {MESSAGES} messages to {SUPER_STREAM} in {time.perf_counter() - start:.3f} s")


asyncio.run(publish())
