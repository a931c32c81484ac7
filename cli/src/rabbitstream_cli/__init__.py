"""rabbitstream-cli: the ``rabbitstream`` command line.

``rabbitstream perf`` (multi-process load generator), ``rabbitstream stream
create|delete|list|info``, ``rabbitstream consume``, ``rabbitstream publish`` and
``rabbitstream plugins``.  Installed by ``pip install rabbitstream``; built on the
public API of ``rabbitstream`` (core) only.
"""

from __future__ import annotations

from rabbitstream_cli._main import main

__version__ = "0.1.0"

__all__ = ["__version__", "main"]
