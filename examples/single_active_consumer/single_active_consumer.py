"""Single active consumer on a super stream, resuming from the stored offset when activated.

Start it several times: within group "consumer-group-1" each partition has one active
consumer; when one stops, another instance takes its partitions over and its
``consumer_update_listener`` resumes after the offset stored by the previous owner.
Stops after RABBITSTREAM_EXAMPLE_COUNT messages (default: never), RABBITSTREAM_EXAMPLE_TIMEOUT
or Ctrl-C.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_SUPER_STREAM (default "invoices-sac").
"""

import asyncio
import os
import signal

from rabbitstream import (
    AMQPMessage,
    EventContext,
    MessageContext,
    OffsetNotFound,
    OffsetSpecification,
    OffsetType,
    SuperStreamConsumer,
    SuperStreamCreationOption,
    amqp_decoder,
)

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
SUPER_STREAM = os.getenv("RABBITSTREAM_EXAMPLE_SUPER_STREAM", "invoices-sac")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "0"))  # 0 = run until Ctrl-C
TIMEOUT = float(os.getenv("RABBITSTREAM_EXAMPLE_TIMEOUT", "0")) or None
GROUP = "consumer-group-1"


async def consumer_update_listener(is_active: bool, context: EventContext) -> OffsetSpecification:
    """Called when this instance becomes active (or passive) on a partition."""
    print(f"{'active' if is_active else 'passive'} on partition {context.stream}")
    try:
        stored = await context.consumer.query_offset(
            stream=context.stream, subscriber_name=context.subscriber_name
        )
        return OffsetSpecification(OffsetType.OFFSET, stored + 1)
    except OffsetNotFound:
        return OffsetSpecification(OffsetType.FIRST, 0)


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

    async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        nonlocal received
        if MESSAGES and received >= MESSAGES:
            return  # done: stop() ends run(), later deliveries are ignored
        received += 1
        if received % 1000 == 0 or received == MESSAGES:
            # remember progress on the broker, for whoever owns the partition next
            await context.consumer.store_offset(
                stream=context.stream, subscriber_name=context.subscriber_name, offset=context.offset
            )
        if received == MESSAGES:
            consumer.stop()

    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, consumer.stop)
    await consumer.start()
    await consumer.subscribe(
        on_message,
        decoder=amqp_decoder,
        subscriber_name=GROUP,
        properties={"single-active-consumer": "true", "name": GROUP, "super-stream": SUPER_STREAM},
        consumer_update_listener=consumer_update_listener,
    )
    try:
        await asyncio.wait_for(consumer.run(), TIMEOUT)
    except asyncio.TimeoutError:
        print(f"Timed out after {received} messages")
    await consumer.close()
    print(f"Received {received} messages")
    return 0 if received >= MESSAGES else 1


raise SystemExit(asyncio.run(consume()))
