"""``rabbitstream perf --report``: the HTML page is self-contained and renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rabbitstream_cli.perf._report import render_report, svg_chart
from rabbitstream_cli.perf._stats import Summary


def _summary() -> Summary:
    s = Summary(library="rabbitstream", version="0.1.0", target="localhost:5552", duration_s=5.2)
    s.published = s.confirmed = s.consumed = 500_000
    s.published_rate, s.latency_p50_ms, s.latency_p99_ms = 98_000.0, 3.1, 9.8
    s.timeline = [
        {
            "second": k,
            "published": 100_000.0 - k,
            "confirmed": 99_000.0,
            "consumed": 98_000.0 + k,
            "latency_p50_ms": None if k == 3 else 3.0 + k,
            "latency_p95_ms": 6.0,
            "latency_p99_ms": 9.0,
        }
        for k in range(1, 6)
    ]
    return s


def test_report_is_self_contained() -> None:
    page = render_report([_summary()])
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2
    for series in ("published", "confirmed", "consumed", "p95", "p99"):
        assert f'class="series-{series}"' in page
    # a gap (None) splits the p50 line in two
    assert page.count('class="series-p50"') == 2
    # nothing fetched from the network: no script, no external reference besides the SVG namespace
    assert "<script" not in page
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * 2


def test_svg_chart_empty_series() -> None:
    svg = svg_chart("t", [], [("published", [])], "msg/s")
    assert svg.startswith("<svg") and svg.endswith("</svg>")


_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_CHROMIUM is None, reason="headless Chromium not installed (Debian package chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    assert _CHROMIUM is not None
    page = tmp_path / "report.html"
    page.write_text(render_report([_summary()]), encoding="utf-8")
    base = [_CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert dom.count("<svg") == 2 and "series-consumed" in dom  # parsed as SVG, not as text
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=900,1000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
