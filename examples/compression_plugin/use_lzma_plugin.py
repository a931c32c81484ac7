"""Publish and consume sub-entries compressed by a third-party plugin (``rabbitstream-lzma``).

Install the plugin first (``pip install -e examples/compression_plugin/rabbitstream-lzma``),
or pass ``--in-code`` to register it without installing.  Sends 10 sub-entries of
RABBITSTREAM_EXAMPLE_COUNT / 10 messages (default 1000 in total) and reads them back.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "lzma-demo").
"""

import asyncio
import os
import sys
from pathlib import Path

from rabbitstream import Consumer, ConsumerOffsetSpecification, MessageContext, OffsetType, Producer
from rabbitstream.plugin import Registry, build_registry, get_registry

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "lzma-demo")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "1000"))
PER_SUB_ENTRY = max(1, MESSAGES // 10)


def registry() -> Registry:
    if "--in-code" in sys.argv:
        sys.path.insert(0, str(Path(__file__).parent / "rabbitstream-lzma" / "src"))
        import rabbitstream_lzma

        return build_registry(plugins=[rabbitstream_lzma])
    return get_registry()  # entry-point discovery finds "lzma" when the plugin is installed


async def main() -> int:
    reg = registry()
    codec = reg.compression_codec("lzma")  # PluginNotFoundError if the plugin is missing
    kw = {"username": USERNAME, "password": PASSWORD, "registry": reg}
    async with Producer(HOST, PORT, **kw) as producer:
        await producer.delete_stream(STREAM, missing_ok=True)
        await producer.create_stream(STREAM)
        sent = 0
        for n in range(10):
            batch = [f"sub-entry {n}, message {i}: {'la' * 20}".encode() for i in range(PER_SUB_ENTRY)]
            await producer.send_sub_entry(STREAM, batch, compression_type="lzma")
            sent += len(batch)
    print(f"Sent 10 sub-entries of {PER_SUB_ENTRY} messages compressed with {codec.name} (code {codec.code})")

    received = 0
    done = asyncio.Event()

    def on_message(msg: bytes, context: MessageContext) -> None:
        nonlocal received
        received += 1
        if received == sent:
            done.set()

    async with Consumer(HOST, PORT, **kw) as consumer:
        first = ConsumerOffsetSpecification(OffsetType.FIRST, None)
        await consumer.subscribe(STREAM, on_message, offset_specification=first)
        try:
            await asyncio.wait_for(done.wait(), 30)
        except asyncio.TimeoutError:
            pass
        await consumer.delete_stream(STREAM, missing_ok=True)
    print(f"Received {received} messages, all decompressed by the {codec.name} plugin")
    return 0 if received == sent else 1


raise SystemExit(asyncio.run(main()))
