"""Publish to a super stream with the third-party ``"region"`` routing strategy, chosen by name.

Install the plugin first (it registers itself through its entry point)::

    pip install -e examples/custom_routing/rabbitstream-region
    python examples/custom_routing/produce_by_region.py

Without installing it, ``--in-code`` registers the same plugin in code instead.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rabbitstream import MessageContext, SuperStreamConsumer, SuperStreamProducer
from rabbitstream.plugin import Registry, build_registry, get_registry

SUPER_STREAM = "orders-by-region"


def registry() -> Registry:
    if "--in-code" in sys.argv:
        sys.path.insert(0, str(Path(__file__).parent / "rabbitstream-region" / "src"))
        import rabbitstream_region

        return build_registry(plugins=[rabbitstream_region])
    return get_registry()  # entry-point discovery finds "region" when the plugin is installed


async def main() -> None:
    reg = registry()
    print("routing strategies:", ", ".join(sorted(reg.routing)))
    async with SuperStreamProducer(
        "localhost",
        username="guest",
        password="guest",
        super_stream=SUPER_STREAM,
        routing="region",  # the plugin's strategy, by name
        routing_extractor=lambda message: bytes(message).decode(),
        registry=reg,
    ) as producer:
        await producer.create_super_stream(SUPER_STREAM, binding_keys=["eu", "us", "default"], exists_ok=True)
        for key in ("eu:alice", "us:bob", "eu:carol", "apac:dave"):
            partitions = await producer.send_wait(key.encode())
            print(f"{key:10} -> {', '.join(partitions)}")

    seen: list[str] = []
    async with SuperStreamConsumer(
        "localhost", username="guest", password="guest", super_stream=SUPER_STREAM
    ) as consumer:

        async def on_message(message: bytes, context: MessageContext) -> None:
            seen.append(f"{context.stream}: {message.decode()}")

        await consumer.subscribe(on_message)
        await asyncio.sleep(1.0)
    print("\n".join(sorted(seen)))

    async with SuperStreamProducer(
        "localhost",
        username="guest",
        password="guest",
        super_stream=SUPER_STREAM,
        routing_extractor=str,
        registry=reg,
    ) as producer:
        await producer.delete_super_stream(SUPER_STREAM)


if __name__ == "__main__":
    asyncio.run(main())
