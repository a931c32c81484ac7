"""Coverage-guided fuzzing of the AMQP decoders with atheris (not collected by pytest).

Run: ``.venv/bin/python plugins/codecs/amqp/tests/fuzz_amqp.py -max_total_time=60``
(any libFuzzer flag works).  Any exception other than AmqpDecodeError, or a
decoded message that does not re-encode, is a crash.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

with atheris.instrument_imports():
    from rabbitstream_amqp import AmqpDecodeError, amqp_decoder, amqp_decoder_str

_calls = 0


def test_one_input(data: bytes) -> None:
    global _calls
    _calls += 1
    for decode in (amqp_decoder, amqp_decoder_str):
        try:
            msg = decode(data)
        except AmqpDecodeError:
            continue
        again = bytes(msg)  # whatever decodes must re-encode
        if decode is amqp_decoder:
            # header/properties fields are written with their declared AMQP types, so
            # the first re-encoding may normalise; after that it must be stable
            assert bytes(amqp_decoder(again)) == again


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        print(f"fuzz_amqp: {_calls} inputs", file=sys.stderr)


if __name__ == "__main__":
    main()
