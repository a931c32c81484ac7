"""Publish raw bytes (no AMQP framing: only rabbitstream/rstream consumers read them) with ``send()``.

Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "mixing"),
RABBITSTREAM_EXAMPLE_COUNT (default 1,000,000).
"""

import asyncio
import os
import time

from rabbitstream import Producer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "mixing")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000000"))


async def publish() -> None:
    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        start = time.perf_counter()
        for i in range(MESSAGES):
            await producer.send(STREAM, f"hello: {i}".encode())
        # close() (end of "async with") flushes what is still buffered
    print(f"Sent {MESSAGES} messages in {time.perf_counter() - start:.3f} s")


asyncio.run(publish())
