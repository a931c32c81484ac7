"""The golden payload the fixture files in ``data/`` were made from (with the reference CLIs)."""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path

DATA = Path(__file__).parent / "data"
PAYLOAD_SHA256 = "1fa2ff50e94a7f283007ba8ef540880463725d3abcf9bcf53e1b6eeaf32b5405"
PAYLOAD_SIZE = 73658


def golden_payload() -> bytes:
    """800 ``[size:uint32, JSON-like message]`` records, 73,658 bytes (more than one 64 KiB block)."""
    rng = random.Random(20240601)
    parts = []
    for i in range(800):
        msg = b'{"id": %d, "sensor": "s-%d", "value": %d, "unit": "C", "pad": "%s"}' % (
            i,
            rng.randrange(50),
            rng.randrange(100000),
            b"x" * rng.randrange(40),
        )
        parts.append(struct.pack(">I", len(msg)) + msg)
    data = b"".join(parts)
    assert hashlib.sha256(data).hexdigest() == PAYLOAD_SHA256, "golden payload generator drifted"
    return data
