"""Publish AMQP 1.0 messages in batches of 100 with ``send_batch()`` (one Publish frame per call).

Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "mixing"),
RABBITSTREAM_EXAMPLE_COUNT (default 1,000,000).
"""

import asyncio
import os
import time

from rabbitstream import AMQPMessage, Producer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "mixing")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000000"))
BATCH = 100


async def publish() -> None:
    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        start = time.perf_counter()
        for first in range(0, MESSAGES, BATCH):
            batch = [
                AMQPMessage(body=f"hello: {i}".encode()) for i in range(first, min(first + BATCH, MESSAGES))
            ]
            await producer.send_batch(STREAM, batch)
    print(f"Sent {MESSAGES} messages in {time.perf_counter() - start:.3f} s")


asyncio.run(publish())
