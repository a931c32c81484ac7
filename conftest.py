"""Repository-wide pytest configuration, loaded for every test directory (core, plugins, ``tests``).

Hypothesis profiles
-------------------
``ci``
    Selected when the ``CI`` environment variable is set (CI runs ``.ci/run`` with ``CI=true``):
    ``derandomize=True`` (the same examples on every run, so a CI failure reproduces and a green
    run is not luck), no example database, no per-example ``deadline`` (a loaded 2-core CI machine
    makes timings meaningless: a slow example is not a failure), ``too_slow`` health check off.
``dev``
    Hypothesis' defaults (random examples, local database): the one used elsewhere.

``HYPOTHESIS_PROFILE=<name>`` picks a profile explicitly (e.g. ``HYPOTHESIS_PROFILE=ci`` to replay
what CI runs).  Per-test ``@settings(...)`` still win for what they set (``max_examples`` ...).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev")

_profile = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(_profile)
