"""Sub-entry batching: many messages in one stream entry, gzip-compressed or not.

Publishes RABBITSTREAM_EXAMPLE_COUNT messages (default 10,000) as sub-entries of 100 with
gzip, then as many uncompressed; the broker confirms once per sub-entry.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "mixing").
"""

import asyncio
import os
import time

from rabbitstream import AMQPMessage, CompressionType, Producer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "mixing")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "10000"))
PER_SUB_ENTRY = 100


async def publish() -> None:
    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        for compression in (CompressionType.Gzip, CompressionType.No):
            start = time.perf_counter()
            for first in range(0, MESSAGES, PER_SUB_ENTRY):
                sub_entry = [
                    AMQPMessage(body=f"{compression.name} {i}".encode())
                    for i in range(first, min(first + PER_SUB_ENTRY, MESSAGES))
                ]
                await producer.send_sub_entry(STREAM, sub_entry, compression_type=compression)
            print(
                f"Sent {MESSAGES} messages in sub-entries with compression {compression.name} "
                f"in {time.perf_counter() - start:.3f} s"
            )


asyncio.run(publish())
