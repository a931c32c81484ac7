"""Super stream consumer: one subscription per partition, from the first message.

Creates the super stream if needed (RABBITSTREAM_EXAMPLE_SUPER_STREAM, default "invoices",
3 partitions). Stops after RABBITSTREAM_EXAMPLE_COUNT messages (default: never),
RABBITSTREAM_EXAMPLE_TIMEOUT or Ctrl-C.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD.
"""

import asyncio
import os
import signal
from collections import Counter

from rabbitstream import (
    AMQPMessage,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetType,
    SuperStreamConsumer,
    SuperStreamCreationOption,
    amqp_decoder,
)

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
SUPER_STREAM = os.getenv("RABBITSTREAM_EXAMPLE_SUPER_STREAM", "invoices")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "0"))  # 0 = run until Ctrl-C
TIMEOUT = float(os.getenv("RABBITSTREAM_EXAMPLE_TIMEOUT", "0")) or None


async def consume() -> int:
    consumer = SuperStreamConsumer(
        HOST,
        PORT,
        username=USERNAME,
        password=PASSWORD,
        super_stream=SUPER_STREAM,
        super_stream_creation_option=SuperStreamCreationOption(n_partitions=3),
    )
    per_partition: Counter[str] = Counter()

    async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        per_partition[context.stream] += 1
        if per_partition.total() == MESSAGES:
            consumer.stop()

    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, consumer.stop)
    await consumer.start()
    await consumer.subscribe(
        on_message,
        decoder=amqp_decoder,
        offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST, None),
    )
    try:
        await asyncio.wait_for(consumer.run(), TIMEOUT)
    except asyncio.TimeoutError:
        print(f"Timed out after {per_partition.total()} messages")
    await consumer.close()
    print(f"Received {per_partition.total()} messages: {dict(sorted(per_partition.items()))}")
    return 0 if per_partition.total() >= MESSAGES else 1


raise SystemExit(asyncio.run(consume()))
