"""Names provided by a plugin that is not installed behave as missing attributes (issue #13, point 6).

``rabbitstream.AMQPMessage`` and friends come from the ``rabbitstream-amqp`` plugin; without it,
``hasattr`` is False, ``getattr(..., None)`` gives the default, and the error still names what to
install.  Runs in a subprocess with plugin autoload disabled, so that whatever is installed in the
test environment, the plugin is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import rabbitstream, rabbitstream.amqp
from rabbitstream.plugin import PluginAttributeError, PluginNotFoundError
assert not hasattr(rabbitstream, "AMQPMessage")
assert getattr(rabbitstream, "amqp_decoder", None) is None
assert not hasattr(rabbitstream.amqp, "Properties")
try:
    rabbitstream.AMQPMessage
except AttributeError as exc:
    assert isinstance(exc, PluginAttributeError) and isinstance(exc, PluginNotFoundError)
    assert "rabbitstream-amqp" in str(exc), str(exc)
    assert "AMQPMessage" in str(exc), str(exc)
else:
    raise AssertionError("no error")
try:
    exec("from rabbitstream import *", {})
except AttributeError as exc:
    assert "rabbitstream-amqp" in str(exc)
print("ok")
"""


def test_missing_plugin_names_are_attribute_errors_naming_the_distribution() -> None:
    env = dict(os.environ, RABBITSTREAM_DISABLE_PLUGIN_AUTOLOAD="1")
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
