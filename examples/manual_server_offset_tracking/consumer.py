"""Server-side offset tracking done by hand: ``query_offset`` at start, ``store_offset`` as we go.

Resumes after the last stored offset of subscriber "subscriber_1" (from the start when none
is stored), stores the offset every 1000 messages and at the end, and stops after
RABBITSTREAM_EXAMPLE_COUNT messages (default 10,000) or RABBITSTREAM_EXAMPLE_TIMEOUT (30 s).
Run it twice: the second run continues where the first stopped.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "mixing").
"""

import asyncio
import os

from rabbitstream import (
    AMQPMessage,
    Consumer,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetNotFound,
    OffsetType,
    ServerError,
    StreamDoesNotExist,
    amqp_decoder,
)

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "mixing")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "10000"))
TIMEOUT = float(os.getenv("RABBITSTREAM_EXAMPLE_TIMEOUT", "30"))
NAME = "subscriber_1"
STORE_EVERY = 1000


async def consume() -> int:
    consumer = Consumer(HOST, PORT, username=USERNAME, password=PASSWORD)
    received = 0

    async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        nonlocal received
        if received >= MESSAGES:
            return  # done: stop() ends run(), later deliveries are ignored
        received += 1
        if received % STORE_EVERY == 0 or received == MESSAGES:
            await context.consumer.store_offset(stream=STREAM, subscriber_name=NAME, offset=context.offset)
            print(f"Stored offset {context.offset} after {received} messages")
        if received == MESSAGES:
            consumer.stop()

    await consumer.start()
    try:
        stored = await consumer.query_offset(stream=STREAM, subscriber_name=NAME)
        spec = ConsumerOffsetSpecification(OffsetType.OFFSET, stored + 1)
        print(f"Resuming after stored offset {stored}")
    except OffsetNotFound:
        spec = ConsumerOffsetSpecification(OffsetType.FIRST, None)
        print("No stored offset: starting from the first message")
    except StreamDoesNotExist:
        print(f"Stream {STREAM} does not exist: run a producer example first")
        await consumer.close()
        return 1
    except ServerError as exc:
        print(f"Cannot query the offset: {exc!r}")
        await consumer.close()
        return 1

    await consumer.subscribe(
        STREAM, on_message, decoder=amqp_decoder, offset_specification=spec, subscriber_name=NAME
    )
    try:
        await asyncio.wait_for(consumer.run(), TIMEOUT)
    except asyncio.TimeoutError:
        print(f"Timed out after {received} messages")
    await consumer.close()
    return 0 if received >= MESSAGES else 1


raise SystemExit(asyncio.run(consume()))
