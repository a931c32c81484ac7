"""Consume from offset 10: ``ConsumerOffsetSpecification(OffsetType.OFFSET, 10)`` skips offsets 0-9.

Stops after RABBITSTREAM_EXAMPLE_COUNT messages (default: never), after
RABBITSTREAM_EXAMPLE_TIMEOUT seconds without reaching it (exit status 1), or on Ctrl-C.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "mixing").
"""

import asyncio
import os
import signal

from rabbitstream import (
    AMQPMessage,
    Consumer,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetType,
    amqp_decoder,
)

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "mixing")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "0"))  # 0 = run until Ctrl-C
TIMEOUT = float(os.getenv("RABBITSTREAM_EXAMPLE_TIMEOUT", "0")) or None


async def consume() -> int:
    consumer = Consumer(HOST, PORT, username=USERNAME, password=PASSWORD)
    received = 0

    async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        nonlocal received
        if MESSAGES and received >= MESSAGES:
            return  # done: stop() ends run(), later deliveries are ignored
        received += 1
        if received <= 3 or received == MESSAGES:
            print(f"Got message: {msg} from stream {context.stream}, offset {context.offset}")
        if received == MESSAGES:
            consumer.stop()

    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, consumer.stop)
    await consumer.start()
    await consumer.create_stream(STREAM, exists_ok=True)
    await consumer.subscribe(
        stream=STREAM,
        callback=on_message,
        decoder=amqp_decoder,
        offset_specification=ConsumerOffsetSpecification(OffsetType.OFFSET, 10),
    )
    try:
        await asyncio.wait_for(consumer.run(), TIMEOUT)
    except asyncio.TimeoutError:
        print(f"Timed out after {received} messages")
    await consumer.close()
    print(f"Received {received} messages")
    return 0 if received >= MESSAGES else 1


raise SystemExit(asyncio.run(consume()))
