"""The README's Quick start runs as printed against the real broker (only coordinates and stream name change).

The README is the package-index page: a Quick start that does not run is the first thing a new user meets.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from support.testenv import BrokerInfo
    from tools.mgmt import Management

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
AS_PRINTED = '("localhost", username="guest", password="guest")'


def _quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Quick start\n\n```python\n(.*?)^```", text, re.S | re.M)
    assert match, "no Python block under '## Quick start' in README.md"
    return match.group(1)


def test_quick_start_runs(broker: BrokerInfo, mgmt: Management, unique_stream_name: str) -> None:
    code = _quick_start()
    assert '"demo"' in code and code.count(AS_PRINTED) == 2  # the producer's and the consumer's
    here = (
        f"({broker.host!r}, {broker.port}, vhost={broker.vhost!r}, "
        f"username={broker.username!r}, password={broker.password!r})"
    )
    code = code.replace('"demo"', repr(unique_stream_name)).replace(AS_PRINTED, here)
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-4000:]
        lines = proc.stdout.splitlines()
        assert lines == [f"{i} b'hello {i}'" for i in range(100)]
    finally:
        vhost = urllib.parse.quote(broker.vhost, safe="")
        mgmt.request("DELETE", f"/queues/{vhost}/{urllib.parse.quote(unique_stream_name, safe='')}")
