"""Run rabbitstream's contract checks against this plugin."""

from __future__ import annotations

from rabbitstream.plugin import build_registry
from rabbitstream.testing import check_message_codec
from rabbitstream_REPLACE_ME import ReplaceMeCodec, rabbitstream_message_codecs


def test_contract() -> None:
    check_message_codec(ReplaceMeCodec(), [{"id": 1, "text": "é"}, [1, 2.5, None], "x", 0])


def test_registered_through_the_hook() -> None:
    registry = build_registry(autoload=False, plugins=[__import__("rabbitstream_REPLACE_ME")])
    assert isinstance(registry.message_codec("REPLACE_ME"), ReplaceMeCodec)
    assert len(rabbitstream_message_codecs()) == 1
