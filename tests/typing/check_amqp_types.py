"""Checked by ``mypy --strict`` (nox ``typecheck``), never run: the AMQP names re-exported by
``rabbitstream`` carry the plugin's types (issue #13, point 6).

Each ``type: ignore[...]`` below marks a misuse mypy must report; were the names ``Any`` again, the
ignores would be unused, which ``--strict`` (``warn_unused_ignores``) reports as an error.
"""

from __future__ import annotations

from rabbitstream import AMQPMessage, amqp_decoder

AMQPMessage(body=b"x", no_such_field=1)  # type: ignore[call-arg]
message: AMQPMessage = amqp_decoder(b"\x00Su\xa0\x01x")
message.no_such_attribute  # type: ignore[attr-defined]  # noqa: B018
