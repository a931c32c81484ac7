"""Consume with ``async for`` instead of a callback (rabbitstream extension: ``Consumer.iterate``).

The loop pulls messages at its own pace: a chunk's credit goes back to the broker only
when the loop has taken its last message, so at most ``initial_credit`` chunks wait in
memory however slow the loop is.  Publishes RABBITSTREAM_EXAMPLE_COUNT messages (default
1000) to a fresh stream, then reads them back.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "iterator-demo").
"""

import asyncio
import os

from rabbitstream import (
    AMQPMessage,
    Consumer,
    ConsumerOffsetSpecification,
    OffsetType,
    Producer,
    amqp_decoder,
)

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "iterator-demo")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))


async def main() -> int:
    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        await producer.delete_stream(STREAM, missing_ok=True)
        await producer.create_stream(STREAM)
        for first in range(0, MESSAGES, 100):
            batch = [AMQPMessage(body=f"item {i}".encode()) for i in range(first, min(first + 100, MESSAGES))]
            await producer.send_batch(STREAM, batch)

    received = 0
    async with Consumer(HOST, PORT, username=USERNAME, password=PASSWORD) as consumer:
        first = ConsumerOffsetSpecification(OffsetType.FIRST, None)
        async with consumer.iterate(STREAM, decoder=amqp_decoder, offset_specification=first) as messages:
            async for message, context in messages:
                received += 1
                if received == 1 or received == MESSAGES:
                    print(f"offset {context.offset}: {message}")
                if received == MESSAGES:
                    break  # leaving "async with" unsubscribes
        await consumer.delete_stream(STREAM)
    print(f"Iterated over {received} messages")
    return 0 if received == MESSAGES else 1


raise SystemExit(asyncio.run(asyncio.wait_for(main(), 60)))
