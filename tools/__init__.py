"""Developer tools for rabbitstream (not shipped in any distribution).

- :mod:`tools.broker` -- launcher for real RabbitMQ brokers used by the integration tests
  (``python tools/broker.py --help``).
- :mod:`tools.faultproxy` -- a controllable TCP proxy for fault-injection tests.
- :mod:`tools._probe` -- a minimal blocking stdlib RabbitMQ Streams protocol probe.
"""

from __future__ import annotations

__all__: list[str] = []
