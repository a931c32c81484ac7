"""``rabbitstream._pyamqp.message``: rstream's import path for ``Properties`` (issue #14, item 11)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_properties_importable_from_rstream_path() -> None:
    import rabbitstream
    import rabbitstream_amqp
    from rabbitstream._pyamqp.message import Header, Properties

    assert Properties is rabbitstream.Properties is rabbitstream_amqp.Properties
    assert Header is rabbitstream_amqp.Header
    props = Properties(subject="s", correlation_id="c")
    msg = rabbitstream_amqp.AMQPMessage(body=b"b", properties=props)
    decoded = rabbitstream_amqp.amqp_decoder(bytes(msg)).properties
    assert decoded is not None and decoded.subject == b"s"


def test_unknown_name_is_attribute_error() -> None:
    import rabbitstream._pyamqp.message as message

    with pytest.raises(AttributeError):
        message.Nope  # noqa: B018


def test_module_import_loads_no_plugin() -> None:
    code = (
        "import sys, rabbitstream._pyamqp.message;"
        "print(any(m.startswith('rabbitstream_') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
