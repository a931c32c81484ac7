"""Deduplication: a named producer (``publisher_name``) with explicit publishing ids.

Sends RABBITSTREAM_EXAMPLE_COUNT messages (default 1000) with ids 1..N, then sends the
same ids again: the broker drops the second round (it still confirms it), so the stream
holds each message once.  Re-running the script keeps the stream at N messages.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "dedup").
"""

import asyncio
import os

from rabbitstream import AMQPMessage, Consumer, Producer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "dedup")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))


async def publish_twice() -> None:
    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        for round_ in (1, 2):
            for i in range(1, MESSAGES + 1):
                msg = AMQPMessage(body=f"invoice {i}".encode(), publishing_id=i)
                await producer.send(STREAM, msg, publisher_name="invoices-producer")
            await producer.flush()  # rabbitstream extension: write what is buffered now
            print(f"Round {round_}: sent publishing ids 1..{MESSAGES}")


async def count_messages() -> int:
    """Read the stream from the start until it stays quiet for one second."""
    count = 0
    got = asyncio.Event()

    def on_message(msg: bytes, context: object) -> None:
        nonlocal count
        count += 1
        got.set()

    async with Consumer(HOST, PORT, username=USERNAME, password=PASSWORD) as consumer:
        await consumer.subscribe(STREAM, on_message)
        while True:
            got.clear()
            try:
                await asyncio.wait_for(got.wait(), 1.0)
            except asyncio.TimeoutError:
                return count


async def main() -> None:
    await publish_twice()
    print(f"The stream holds {await count_messages()} messages ({MESSAGES} ids sent twice)")


asyncio.run(main())
