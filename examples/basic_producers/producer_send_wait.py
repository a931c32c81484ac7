"""Publish with ``send_wait()``: each call returns once the broker confirmed the message (slow, simple).

Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "mixing"),
RABBITSTREAM_EXAMPLE_COUNT (default 1000).
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
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))


async def publish() -> None:
    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        start = time.perf_counter()
        last_id = 0
        for i in range(MESSAGES):
            last_id = await producer.send_wait(STREAM, AMQPMessage(body=f"hello: {i}".encode()))
    print(
        f"Sent and confirmed {MESSAGES} messages in {time.perf_counter() - start:.3f} s (last id {last_id})"
    )


asyncio.run(publish())
