"""Counters, latency histogram and summaries of ``rabbitstream perf``.

Everything here is plain arithmetic (no I/O, no broker), so it is unit tested
directly.  The per-message work of the tool is one call of the closure returned by
:func:`make_recorder`: a clock read, one ``unpack_from`` and one list increment.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "HIST_SIZE",
    "TIMESTAMP",
    "ConsumeStats",
    "Histogram",
    "PublishStats",
    "Summary",
    "bucket_index",
    "bucket_value",
    "format_comparison",
    "format_progress",
    "format_summary",
    "make_recorder",
    "percentile",
    "ratios",
]

#: The timestamp embedded in the first 8 bytes of every message body:
#: big-endian int64, wall clock in nanoseconds since the epoch (``time.time_ns()``).
TIMESTAMP = struct.Struct(">q")

#: Sub-buckets per power of two (5 bits: relative error of a bucket below 3.2 %).
_SUB_BITS = 5
_SUB = 1 << _SUB_BITS
#: Values below this are their own bucket.
_LINEAR = 2 * _SUB
#: Number of buckets: covers latencies up to 2**40 µs (about 12 days).
HIST_SIZE = (40 - _SUB_BITS) * _SUB + _LINEAR


def bucket_index(us: int) -> int:
    """The histogram bucket of a latency in microseconds (log-linear, HdrHistogram style).

    Values ``0 <= v < 64`` have one bucket each; above, each power of two is split
    into 32 buckets.  Negative values (clock steps) count as 0, huge ones go to the
    last bucket.
    """
    if us < _LINEAR:
        return us if us > 0 else 0
    shift = us.bit_length() - (_SUB_BITS + 1)
    index = shift * _SUB + (us >> shift)
    return index if index < HIST_SIZE else HIST_SIZE - 1


def bucket_value(index: int) -> float:
    """The representative value (µs) of a bucket: the middle of its range."""
    if index < _LINEAR:
        return float(index)
    shift = index // _SUB - 1
    low = (index % _SUB + _SUB) << shift
    return low + ((1 << shift) - 1) / 2


class Histogram:
    """A fixed-size log-linear latency histogram (µs); ``counts`` is a plain list."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: list[int] = [0] * HIST_SIZE

    def record(self, us: int, n: int = 1) -> None:
        """Add ``n`` observations of ``us`` microseconds (slow path, for tests and tools)."""
        self.counts[bucket_index(us)] += n

    @property
    def total(self) -> int:
        """Number of observations."""
        return sum(self.counts)

    def merge_from(self, other: Histogram, *, clear: bool = False) -> None:
        """Add ``other``'s counts to this one; optionally zero ``other`` in place."""
        mine = self.counts
        theirs = other.counts
        for i, c in enumerate(theirs):
            if c:
                mine[i] += c
                if clear:
                    theirs[i] = 0

    def percentiles(self, qs: Sequence[float]) -> list[float | None]:
        """Percentiles in µs (``None`` when empty); see :func:`percentile`."""
        return percentile(self.counts, qs)

    def max(self) -> float | None:
        """The largest recorded value (bucket middle) or ``None``."""
        for i in range(HIST_SIZE - 1, -1, -1):
            if self.counts[i]:
                return bucket_value(i)
        return None


def percentile(counts: Sequence[int], qs: Sequence[float]) -> list[float | None]:
    """Nearest-rank percentiles of a bucket histogram.

    :param counts: bucket counts (index as :func:`bucket_index`).
    :param qs: percentiles in ``[0, 100]``, any order.
    :return: one value in µs per ``q`` (bucket middle), ``None`` for an empty histogram.
    """
    total = sum(counts)
    if total == 0:
        return [None for _ in qs]
    for q in qs:
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be within [0, 100], not {q}")
    # nearest rank: the smallest value with at least ceil(q/100 * total) observations at or below it
    ranks = sorted((max(1, math.ceil(q / 100 * total)), k) for k, q in enumerate(qs))
    out: list[float | None] = [None] * len(qs)
    seen = 0
    r = 0
    for i, c in enumerate(counts):
        if not c:
            continue
        seen += c
        while r < len(ranks) and ranks[r][0] <= seen:
            out[ranks[r][1]] = bucket_value(i)
            r += 1
        if r == len(ranks):
            break
    return out


class PublishStats:
    """Counters of one producer (single event loop: plain attributes, no locks)."""

    __slots__ = ("confirmed", "failed", "published")

    def __init__(self) -> None:
        self.published = 0
        self.confirmed = 0
        self.failed = 0

    @property
    def outstanding(self) -> int:
        """Messages sent and not yet confirmed or failed."""
        return self.published - self.confirmed - self.failed


class ConsumeStats:
    """Counters and latency of all consumers of one run."""

    __slots__ = ("consumed", "errors", "interval", "last_ns", "total")

    def __init__(self) -> None:
        self.consumed = 0
        self.errors = 0
        #: the wall clock (ns) of the last message received
        self.last_ns = 0
        #: latencies since the last progress tick; merged into ``total`` each tick
        self.interval = Histogram()
        self.total = Histogram()

    def tick(self) -> float | None:
        """Merge the interval histogram into the total and return its p50 (µs)."""
        p50 = self.interval.percentiles([50])[0]
        self.total.merge_from(self.interval, clear=True)
        return p50


def make_recorder(
    stats: ConsumeStats, body: Callable[[Any], Any] | None = None
) -> Callable[[Any, Any], None]:
    """The consumer callback: record one message's publish-to-consume latency.

    :param stats: where to count.
    :param body: how to get the payload bytes from the decoded message (``None``: the
        message is the payload, as with the binary codec).
    :return: a synchronous ``callback(message, context)`` as ``subscribe`` expects.
    """
    counts = stats.interval.counts
    unpack = TIMESTAMP.unpack_from
    clock = time.time_ns
    last = HIST_SIZE - 1

    if body is None:

        def record(msg: Any, ctx: Any) -> None:
            now = clock()
            try:
                us = (now - unpack(msg)[0]) // 1000
            except Exception:
                stats.errors += 1
                return
            if us < _LINEAR:
                i = us if us > 0 else 0
            else:
                s = us.bit_length() - 6
                i = s * 32 + (us >> s)
                if i > last:
                    i = last
            counts[i] += 1
            stats.consumed += 1
            stats.last_ns = now

        return record

    get_body = body

    def record_body(msg: Any, ctx: Any) -> None:
        now = clock()
        try:
            us = (now - unpack(get_body(msg))[0]) // 1000
        except Exception:
            stats.errors += 1
            return
        if us < _LINEAR:
            i = us if us > 0 else 0
        else:
            s = us.bit_length() - 6
            i = s * 32 + (us >> s)
            if i > last:
                i = last
        counts[i] += 1
        stats.consumed += 1
        stats.last_ns = now

    return record_body


@dataclass
class Summary:
    """The result of one run (what ``--json`` prints)."""

    library: str
    version: str
    target: str
    published: int = 0
    confirmed: int = 0
    consumed: int = 0
    errors: int = 0
    duration_s: float = 0.0
    #: msg/s over each counter's own active time (start → last event)
    published_rate: float = 0.0
    confirmed_rate: float = 0.0
    consumed_rate: float = 0.0
    #: publish-to-consume latency in milliseconds (``None`` when nothing was consumed)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    error_messages: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    #: one row per whole second: ``second``, ``published``, ``confirmed``, ``consumed`` (msg/s),
    #: ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms`` (of the messages consumed in that second)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    def fill_latency(self, hist: Histogram) -> None:
        """Set the latency fields from a µs histogram."""
        p50, p95, p99 = hist.percentiles([50, 95, 99])
        mx = hist.max()
        self.latency_p50_ms = _ms(p50)
        self.latency_p95_ms = _ms(p95)
        self.latency_p99_ms = _ms(p99)
        self.latency_max_ms = _ms(mx)


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


def rate(count: int, seconds: float) -> float:
    """``count / seconds`` rounded to 0.1 (0 when no time elapsed)."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


#: (label, summary attribute, unit) of the figures shown and compared
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("published", "published_rate", "msg/s"),
    ("confirmed", "confirmed_rate", "msg/s"),
    ("consumed", "consumed_rate", "msg/s"),
    ("latency p50", "latency_p50_ms", "ms"),
    ("latency p95", "latency_p95_ms", "ms"),
    ("latency p99", "latency_p99_ms", "ms"),
)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    return f"{value:,.0f} {unit}"


def format_progress(
    label: str, elapsed: float, published: float, confirmed: float, consumed: float, p50_us: float | None
) -> str:
    """One live progress line (rates in msg/s over the last interval)."""
    lat = "n/a" if p50_us is None else f"{p50_us / 1000:.2f} ms"
    return (
        f"[{label}] {elapsed:5.1f}s  published {published:>9,.0f} msg/s  confirmed {confirmed:>9,.0f} msg/s"
        f"  consumed {consumed:>9,.0f} msg/s  latency p50 {lat}"
    )


def format_summary(s: Summary) -> str:
    """A human-readable multi-line summary."""
    lines = [
        f"Summary: {s.library} {s.version} -> {s.target} ({s.duration_s:.1f} s)",
        f"  messages   published {s.published:,}  confirmed {s.confirmed:,}  consumed {s.consumed:,}"
        f"  errors {s.errors}",
    ]
    for label, attr, unit in FIGURES[:3]:
        lines.append(f"  {label:<10} {_fmt(getattr(s, attr), unit)}")
    lat = ", ".join(f"{q} {_fmt(getattr(s, f'latency_{q}_ms'), 'ms')}" for q in ("p50", "p95", "p99", "max"))
    lines.append(f"  latency    {lat} (publish to consume)")
    lines.extend(f"  error: {m}" for m in s.error_messages[:5])
    return "\n".join(lines)


def ratios(ours: Summary, theirs: Summary) -> dict[str, float | None]:
    """``ours / theirs`` per figure (``None`` when undefined).

    For throughput a ratio above 1 means we are faster; for latency below 1 means
    we are faster.
    """
    out: dict[str, float | None] = {}
    for _label, attr, _unit in FIGURES:
        a = getattr(ours, attr)
        b = getattr(theirs, attr)
        out[attr] = round(a / b, 2) if a is not None and b else None
    return out


def format_comparison(summaries: Iterable[Summary], ratio: Mapping[str, float | None]) -> str:
    """A table of the figures of several runs plus the ratio column."""
    runs = list(summaries)
    head = (
        f"{'':<12}"
        + "".join(f"{s.library:>20}" for s in runs)
        + f"{'ratio (ours/' + runs[-1].library + ')':>26}"
    )
    lines = [head]
    for label, attr, unit in FIGURES:
        r = ratio.get(attr)
        better = ""
        if r is not None and r != 1:
            faster = r > 1 if unit != "ms" else r < 1
            better = " better" if faster else " worse"
        rtxt = "n/a" if r is None else f"{r:.2f}x{better}"
        lines.append(
            f"{label:<12}" + "".join(f"{_fmt(getattr(s, attr), unit):>20}" for s in runs) + f"{rtxt:>26}"
        )
    lines.append(f"{'errors':<12}" + "".join(f"{s.errors:>20}" for s in runs))
    return "\n".join(lines)
