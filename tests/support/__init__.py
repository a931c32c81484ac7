"""Test-only support for the ``tests/`` suite (not shipped, not imported by ``tools/`` or benchmarks).

- :mod:`support.testenv` -- the typed broker descriptions the ``tests/conftest.py`` fixtures hand out
  (``BrokerInfo``, ``TlsBrokerInfo``, ``ClusterInfo``).
- :mod:`support.compression` -- the four compression plugins in one registry, and a skip mark when one
  does not import.
- :mod:`support.process` -- ``preexec_fn`` for tests that run the CLI in a child process.

Helpers that core or plugin tests could use too belong in :mod:`rabbitstream.testing` instead.

``tests/`` is on ``sys.path`` under pytest (its ``conftest.py`` sits in a folder without
``__init__.py``), so test modules import ``from support.testenv import BrokerInfo``.  What the tests
share with the launcher or the benchmarks (``tools/broker.py``, ``tools/mgmt.py``,
``tools/faultproxy.py``) stays in ``tools/``.
"""

from __future__ import annotations

__all__: list[str] = []
