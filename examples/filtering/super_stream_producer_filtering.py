"""Filtering on a super stream, producer side: hash routing plus a filter value per message.

Creates super stream RABBITSTREAM_EXAMPLE_SUPER_STREAM (default "invoices-filtering", 3
partitions) and publishes RABBITSTREAM_EXAMPLE_COUNT messages (default 1000) for each of
"New York" and "California".
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD.
"""

import asyncio
import os

from rabbitstream import AMQPMessage, SuperStreamCreationOption, SuperStreamProducer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
SUPER_STREAM = os.getenv("RABBITSTREAM_EXAMPLE_SUPER_STREAM", "invoices-filtering")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))


async def routing_extractor(message: AMQPMessage) -> str:
    return message.application_properties["id"]


async def filter_value_extractor(message: AMQPMessage) -> str:
    return message.application_properties["region"]


async def publish() -> None:
    async with SuperStreamProducer(
        HOST,
        PORT,
        username=USERNAME,
        password=PASSWORD,
        super_stream=SUPER_STREAM,
        super_stream_creation_option=SuperStreamCreationOption(n_partitions=3),
        routing_extractor=routing_extractor,
        filter_value_extractor=filter_value_extractor,
    ) as producer:
        for region in ("New York", "California"):
            for i in range(MESSAGES):
                props = {"id": f"{region}-{i}", "region": region}
                await producer.send(AMQPMessage(body=f"{region} {i}".encode(), application_properties=props))
    print(f"Sent {MESSAGES} messages for each of New York and California to {SUPER_STREAM}")


asyncio.run(publish())
