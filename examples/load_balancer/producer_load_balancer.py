"""Connect through a load balancer (``load_balancer_mode=True``).

Behind a load balancer the client cannot pick the node it connects to: it reconnects
until the broker it reaches is the one it wants (the stream leader for a producer, a
replica for a consumer), recognised by the advertised host/port.
Env: RABBITSTREAM_HOST (default localhost), RABBITSTREAM_LB_PORT (default 5552; the
launcher's HAProxy: ``python tools/broker.py up --cluster --lb``), RABBITSTREAM_USERNAME/PASSWORD,
RABBITSTREAM_EXAMPLE_STREAM (default "lb-demo"), RABBITSTREAM_EXAMPLE_COUNT (default 1000).
"""

import asyncio
import os

from rabbitstream import AMQPMessage, Consumer, MessageContext, Producer, amqp_decoder

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_LB_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "lb-demo")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))


async def main() -> int:
    kw = {"username": USERNAME, "password": PASSWORD, "load_balancer_mode": True}
    async with Producer(HOST, PORT, **kw) as producer:
        await producer.delete_stream(STREAM, missing_ok=True)
        await producer.create_stream(STREAM, arguments={"x-initial-cluster-size": 3})
        for first in range(0, MESSAGES, 100):
            batch = [AMQPMessage(body=f"lb {i}".encode()) for i in range(first, min(first + 100, MESSAGES))]
            await producer.send_batch(STREAM, batch)

    received = 0
    done = asyncio.Event()

    def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        nonlocal received
        received += 1
        if received == MESSAGES:
            done.set()

    async with Consumer(HOST, PORT, **kw) as consumer:
        await consumer.subscribe(STREAM, on_message, decoder=amqp_decoder)
        try:
            await asyncio.wait_for(done.wait(), 30)
        except asyncio.TimeoutError:
            pass
        await consumer.delete_stream(STREAM, missing_ok=True)
    print(f"Sent and received {received}/{MESSAGES} messages through the load balancer at {HOST}:{PORT}")
    return 0 if received == MESSAGES else 1


raise SystemExit(asyncio.run(main()))
