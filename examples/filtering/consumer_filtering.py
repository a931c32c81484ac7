"""Stream filtering, consumer side: ``FilterConfiguration`` with a broker-side value and a predicate.

The broker only sends chunks that may contain "New York" messages (a bloom filter, so
false positives happen); the predicate drops the rest on the client.  Stops after
RABBITSTREAM_EXAMPLE_COUNT messages (default 1000) or RABBITSTREAM_EXAMPLE_TIMEOUT (30 s).
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "filtering").
"""

import asyncio
import os

from rabbitstream import AMQPMessage, Consumer, FilterConfiguration, MessageContext, amqp_decoder

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "filtering")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))
TIMEOUT = float(os.getenv("RABBITSTREAM_EXAMPLE_TIMEOUT", "30"))


async def consume() -> int:
    consumer = Consumer(HOST, PORT, username=USERNAME, password=PASSWORD)
    received = 0
    others = 0

    async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        nonlocal received, others
        if received >= MESSAGES:
            return  # done: stop() ends run(), later deliveries are ignored
        if msg.application_properties[b"region"] != b"New York":  # decoded AMQP strings are bytes
            others += 1
        received += 1
        if received == MESSAGES:
            consumer.stop()

    await consumer.start()
    await consumer.subscribe(
        STREAM,
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
    print(f"Received {received} New York messages ({others} from other regions)")
    return 0 if received >= MESSAGES and others == 0 else 1


raise SystemExit(asyncio.run(consume()))
