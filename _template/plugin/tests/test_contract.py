"""Run rabbitstream's contract tests against this plugin."""

from __future__ import annotations

from rabbitstream.testing import check_compression_codec
from rabbitstream_REPLACE_ME import ReplaceMeCodec


def test_contract() -> None:
    check_compression_codec(ReplaceMeCodec())
