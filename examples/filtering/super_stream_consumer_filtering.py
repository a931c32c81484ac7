"""Filtering on a super stream, consumer side: every partition subscribed with the same filter.

Stops after RABBITSTREAM_EXAMPLE_COUNT "New York" messages (default 1000) or
RABBITSTREAM_EXAMPLE_TIMEOUT (30 s).
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD,
RABBITSTREAM_EXAMPLE_SUPER_STREAM (default "invoices-filtering").
"""

import asyncio
import os

from rabbitstream import (
    AMQPMessage,
    FilterConfiguration,
    MessageContext,
    SuperStreamConsumer,
    SuperStreamCreationOption,
    amqp_decoder,
)

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
SUPER_STREAM = os.getenv("RABBITSTREAM_EXAMPLE_SUPER_STREAM", "invoices-filtering")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))
TIMEOUT = float(os.getenv("RABBITSTREAM_EXAMPLE_TIMEOUT", "30"))


async def consume() -> int:
    consumer = SuperStreamConsumer(
        HOST,
        PORT,
        username=USERNAME,
        password=PASSWORD,
        super_stream=SUPER_STREAM,
        super_stream_creation_option=SuperStreamCreationOption(n_partitions=3),
    )
    received = 0
    partitions: set[str] = set()

    async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        nonlocal received
        if received >= MESSAGES:
            return  # done: stop() ends run(), later deliveries are ignored
        received += 1
        partitions.add(context.stream)
        if received == MESSAGES:
            consumer.stop()

    await consumer.start()
    await consumer.subscribe(
        on_message,
        decoder=amqp_decoder,
        filter_input=FilterConfiguration(
            values_to_filter=["New York"],
            predicate=lambda message: message.application_properties[b"region"] == b"New York",
            match_unfiltered=False,
        ),
    )
    try:
        await asyncio.wait_for(consumer.run(), TIMEOUT)
    except asyncio.TimeoutError:
        print(f"Timed out after {received} messages")
    await consumer.close()
    print(f"Received {received} New York messages from partitions {sorted(partitions)}")
    return 0 if received >= MESSAGES else 1


raise SystemExit(asyncio.run(consume()))
