"""``rabbitstream perf --report FILE.html``: one self-contained page (inline SVG, no script, no network).

Per run: the summary figures, throughput over time (published, confirmed, consumed)
and latency percentiles over time (p50, p95, p99), from :attr:`Summary.timeline`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from rabbitstream_cli.perf._stats import Summary

__all__ = ["render_report", "svg_chart"]

_W, _H = 760, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 30, 40
_COLORS = {
    "published": "#1f77b4",
    "confirmed": "#2ca02c",
    "consumed": "#d62728",
    "p50": "#2ca02c",
    "p95": "#ff7f0e",
    "p99": "#d62728",
}


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def svg_chart(
    title: str, xs: Sequence[float], series: Sequence[tuple[str, Sequence[float | None]]], unit: str
) -> str:
    """A line chart as an inline ``<svg>`` element (one polyline per series, gaps for ``None``)."""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    values = [v for _, vs in series for v in vs if v is not None]
    ymax = _nice_max(max(values, default=0.0))
    xmax = max(max(xs, default=1.0), 1.0)

    def px(x: float) -> float:
        return _LEFT + plot_w * x / xmax

    def py(y: float) -> float:
        return _TOP + plot_h * (1 - y / ymax)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{_LEFT}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for i in range(5):
        y = ymax * i / 4
        out.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#eee"/>'
            f'<text x="{_LEFT - 6}" y="{py(y) + 4:.1f}" font-size="11" text-anchor="end">{_fmt(y)}</text>'
        )
    step = max(1, math.ceil(xmax / 10))
    out.extend(
        f'<text x="{px(x):.1f}" y="{_TOP + plot_h + 15}" font-size="11" text-anchor="middle">{x}s</text>'
        for x in range(0, int(xmax) + 1, step)
    )
    out.append(
        f'<text x="12" y="{_TOP + plot_h / 2:.0f}" font-size="11" '
        f'transform="rotate(-90 12 {_TOP + plot_h / 2:.0f})" text-anchor="middle">{html.escape(unit)}</text>'
    )
    for n, (label, vs) in enumerate(series):
        color = _COLORS.get(label, "#555")
        # published and confirmed overlap when confirms keep up: dash the first so both show
        dash = 'stroke-dasharray="6 4" ' if label == "published" else ""
        segments: list[list[str]] = [[]]
        for xv, v in zip(xs, vs, strict=True):
            if v is None:
                segments.append([])
            else:
                segments[-1].append(f"{px(xv):.1f},{py(v):.1f}")
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
            elif seg:
                out.append(
                    f'<polyline class="series-{label}" fill="none" stroke="{color}" stroke-width="2" {dash}'
                    f'points="{" ".join(seg)}"/>'
                )
        lx = _LEFT + 10 + n * 110
        out.append(
            f'<rect x="{lx}" y="{_TOP + plot_h + 24}" width="12" height="4" fill="{color}"/>'
            f'<text x="{lx + 16}" y="{_TOP + plot_h + 30}" font-size="11">{html.escape(label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _figures(s: Summary) -> str:
    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} ms"

    rows = [
        ("messages", f"published {s.published:,}, confirmed {s.confirmed:,}, consumed {s.consumed:,}"),
        (
            "throughput",
            f"published {s.published_rate:,.0f} / confirmed {s.confirmed_rate:,.0f} / "
            f"consumed {s.consumed_rate:,.0f} msg/s",
        ),
        (
            "latency",
            f"p50 {ms(s.latency_p50_ms)}, p95 {ms(s.latency_p95_ms)}, p99 {ms(s.latency_p99_ms)}, "
            f"max {ms(s.latency_max_ms)}",
        ),
        ("errors", str(s.errors)),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _run_section(s: Summary) -> str:
    t: list[dict[str, Any]] = s.timeline
    xs = [float(r["second"]) for r in t]
    throughput = svg_chart(
        "Throughput (msg/s, per second)",
        xs,
        [(k, [float(r[k]) for r in t]) for k in ("published", "confirmed", "consumed")],
        "msg/s",
    )
    latency = svg_chart(
        "Publish-to-consume latency (ms, messages consumed in each second)",
        xs,
        [(q, [r.get(f"latency_{q}_ms") for r in t]) for q in ("p50", "p95", "p99")],
        "ms",
    )
    head = f"{s.library} {s.version} &rarr; {html.escape(s.target)} ({s.duration_s:.1f} s)"
    opts = ", ".join(f"{k}={v}" for k, v in sorted(s.options.items()) if k not in ("stream",))
    return (
        f"<section><h2>{head}</h2>{_figures(s)}<p class='opts'>{html.escape(opts)}</p>"
        f"<figure>{throughput}</figure><figure>{latency}</figure></section>"
    )


def render_report(summaries: Sequence[Summary]) -> str:
    """The whole HTML page for one or more runs (``--compare`` gives two)."""
    sections = "".join(_run_section(s) for s in summaries)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<title>rabbitstream perf report</title><style>"
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
        "th{text-align:left;padding-right:1em}td,th{padding:2px 6px}.opts{color:#666;font-size:12px}"
        "figure{margin:1em 0}</style></head><body><h1>rabbitstream perf</h1>"
        f"{sections}</body></html>\n"
    )
