"""Stream filtering, producer side: a filter value per message (``filter_value_extractor``).

Publishes RABBITSTREAM_EXAMPLE_COUNT messages (default 1000) for "New York" and as many
for "California"; the broker indexes chunks by these values (needs RabbitMQ >= 3.13).
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "filtering").
"""

import asyncio
import os

from rabbitstream import AMQPMessage, Producer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "filtering")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))


async def filter_value_extractor(message: AMQPMessage) -> str:
    return message.application_properties["region"]


async def publish() -> None:
    async with Producer(
        HOST, PORT, username=USERNAME, password=PASSWORD, filter_value_extractor=filter_value_extractor
    ) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        for region in ("New York", "California"):
            for first in range(0, MESSAGES, 100):
                batch = [
                    AMQPMessage(body=f"{region} {i}".encode(), application_properties={"region": region})
                    for i in range(first, min(first + 100, MESSAGES))
                ]
                await producer.send_batch(STREAM, batch)
    print(f"Sent {MESSAGES} messages for each of New York and California")


asyncio.run(publish())
