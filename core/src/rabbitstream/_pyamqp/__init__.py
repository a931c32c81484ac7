"""rstream compatibility: ``rabbitstream._pyamqp.message`` mirrors ``rstream._pyamqp.message``.

rstream's examples and tests import ``Properties`` from ``rstream._pyamqp.message``;
code copied from them migrates by changing ``rstream`` to ``rabbitstream`` in the import.
"""

from __future__ import annotations

__all__: list[str] = []
