"""Consume with ``OffsetType.NEXT``: only messages published after the subscription arrive.

To show it, the script subscribes first and then publishes RABBITSTREAM_EXAMPLE_COUNT
messages (default 100) itself; older messages in the stream are not delivered.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "mixing"),
RABBITSTREAM_EXAMPLE_TIMEOUT (default 30 s).
"""

import asyncio
import os

from rabbitstream import (
    AMQPMessage,
    Consumer,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetType,
    Producer,
    amqp_decoder,
)

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "mixing")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "100"))
TIMEOUT = float(os.getenv("RABBITSTREAM_EXAMPLE_TIMEOUT", "30"))


async def main() -> int:
    received = 0
    consumer = Consumer(HOST, PORT, username=USERNAME, password=PASSWORD)

    async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        nonlocal received
        if received >= MESSAGES:
            return  # done: stop() ends run(), later deliveries are ignored
        received += 1
        if received == 1:
            print(f"First message: {msg} at offset {context.offset}")
        if received == MESSAGES:
            consumer.stop()

    await consumer.start()
    await consumer.create_stream(STREAM, exists_ok=True)
    await consumer.subscribe(
        stream=STREAM,
        callback=on_message,
        decoder=amqp_decoder,
        offset_specification=ConsumerOffsetSpecification(OffsetType.NEXT, None),
    )
    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        for first in range(0, MESSAGES, 100):
            batch = [AMQPMessage(body=f"new: {i}".encode()) for i in range(first, min(first + 100, MESSAGES))]
            await producer.send_batch(STREAM, batch)
    try:
        await asyncio.wait_for(consumer.run(), TIMEOUT)
    except asyncio.TimeoutError:
        print(f"Timed out after {received} messages")
    await consumer.close()
    print(f"Received {received} messages published after subscribing")
    return 0 if received >= MESSAGES else 1


raise SystemExit(asyncio.run(main()))
