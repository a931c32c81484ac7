"""Authenticate with the client certificate (SASL EXTERNAL) instead of a password.

The broker maps the certificate to a user (by default its distinguished name; the
launcher's TLS node uses the common name); no password is sent.
Env (``python tools/broker.py env --tls``): RABBITSTREAM_HOST (default localhost),
RABBITSTREAM_TLS_PORT (default 5551), RABBITSTREAM_TLS_CA, RABBITSTREAM_TLS_CERT,
RABBITSTREAM_TLS_KEY, RABBITSTREAM_EXAMPLE_STREAM (default "tls-external-demo"),
RABBITSTREAM_EXAMPLE_COUNT (default 1000).
"""

import asyncio
import os
import ssl

from rabbitstream import AMQPMessage, Producer, SlasMechanism

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_TLS_PORT", "5551"))
CA = os.environ["RABBITSTREAM_TLS_CA"]
CERT = os.environ["RABBITSTREAM_TLS_CERT"]
KEY = os.environ["RABBITSTREAM_TLS_KEY"]
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "tls-external-demo")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))


async def publish() -> None:
    ssl_context = ssl.create_default_context(cafile=CA)
    ssl_context.load_cert_chain(CERT, KEY)  # the certificate is the credential
    async with Producer(
        HOST,
        PORT,
        ssl_context=ssl_context,
        username="",  # ignored by EXTERNAL
        password="",
        sasl_configuration_mechanism=SlasMechanism.MechanismExternal,
    ) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        for first in range(0, MESSAGES, 100):
            batch = [
                AMQPMessage(body=f"external {i}".encode()) for i in range(first, min(first + 100, MESSAGES))
            ]
            await producer.send_batch(STREAM, batch)
    print(f"Sent {MESSAGES} messages over TLS, authenticated by certificate (SASL EXTERNAL)")


asyncio.run(publish())
