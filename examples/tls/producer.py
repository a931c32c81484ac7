"""Publish over TLS: an ``ssl.SSLContext`` trusting the broker's CA, PLAIN credentials.

Env (``python tools/broker.py env --tls`` prints them for the launcher's TLS node):
RABBITSTREAM_HOST (default localhost), RABBITSTREAM_TLS_PORT (default 5551),
RABBITSTREAM_TLS_CA (CA bundle, PEM), optionally RABBITSTREAM_TLS_CERT/RABBITSTREAM_TLS_KEY
(a client certificate, for brokers that require one), RABBITSTREAM_USERNAME/PASSWORD,
RABBITSTREAM_EXAMPLE_STREAM (default "tls-demo"), RABBITSTREAM_EXAMPLE_COUNT (default 1000).
"""

import asyncio
import os
import ssl

from rabbitstream import AMQPMessage, Producer

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_TLS_PORT", "5551"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
CA = os.getenv("RABBITSTREAM_TLS_CA")
CERT = os.getenv("RABBITSTREAM_TLS_CERT")
KEY = os.getenv("RABBITSTREAM_TLS_KEY")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "tls-demo")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))


async def publish() -> None:
    ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
    ssl_context.load_verify_locations(CA) if CA else ssl_context.load_default_certs()
    if CERT:
        ssl_context.load_cert_chain(CERT, KEY)
    async with Producer(
        HOST, PORT, ssl_context=ssl_context, username=USERNAME, password=PASSWORD
    ) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        for first in range(0, MESSAGES, 100):
            batch = [AMQPMessage(body=f"tls {i}".encode()) for i in range(first, min(first + 100, MESSAGES))]
            await producer.send_batch(STREAM, batch)
    print(f"Sent {MESSAGES} messages over TLS to {HOST}:{PORT}")


asyncio.run(publish())
