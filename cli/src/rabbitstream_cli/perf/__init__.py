"""``rabbitstream perf``: the multi-process publish/consume performance tool (see ``docs/perf.md``)."""

from __future__ import annotations

from rabbitstream_cli.perf._main import COMPARE_HINT, main, self_check
from rabbitstream_cli.perf._options import PerfOptions, parse_args
from rabbitstream_cli.perf._stats import Summary

__all__ = ["COMPARE_HINT", "PerfOptions", "Summary", "main", "parse_args", "self_check"]
