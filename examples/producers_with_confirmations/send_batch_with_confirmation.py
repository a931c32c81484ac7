"""Publish with ``send_batch()`` (batches of 100) and a confirmation callback per message.

The callback gets a ``ConfirmationStatus`` per message; the script waits until every
message is confirmed (RABBITSTREAM_EXAMPLE_COUNT, default 100,000).
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "mixing").
"""

import asyncio
import os

from rabbitstream import AMQPMessage, ConfirmationStatus, Producer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "mixing")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "100000"))


async def publish() -> int:
    confirmed = failed = 0
    all_settled = asyncio.Event()

    def on_confirm(status: ConfirmationStatus) -> None:
        nonlocal confirmed, failed
        if status.is_confirmed:
            confirmed += 1
        else:
            failed += 1
            print(f"Message {status.message_id} failed with code {status.response_code}")
        if confirmed + failed == MESSAGES:
            all_settled.set()

    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        for first in range(0, MESSAGES, 100):
            batch = [
                AMQPMessage(body=f"hello: {i}".encode()) for i in range(first, min(first + 100, MESSAGES))
            ]
            await producer.send_batch(STREAM, batch, on_publish_confirm=on_confirm)
        await asyncio.wait_for(all_settled.wait(), 30)
    print(f"{confirmed} messages confirmed, {failed} failed")
    return 0 if confirmed == MESSAGES else 1


raise SystemExit(asyncio.run(publish()))
