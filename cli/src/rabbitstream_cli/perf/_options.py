"""Command-line options of ``rabbitstream perf`` (parsing and validation only)."""

from __future__ import annotations

import argparse
import datetime as _dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rabbitstream_cli._connection import ConnectionOptions, add_connection_arguments, connection_from_args

__all__ = ["COMPRESSIONS", "PerfOptions", "build_parser", "parse_args", "parse_offset", "parse_size"]

COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
LIBRARIES = ("rabbitstream", "rstream")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


@dataclass
class PerfOptions:
    """The validated options of one ``rabbitstream perf`` invocation."""

    #: where and how to connect (its ``repr`` leaves the password out)
    conn: ConnectionOptions = field(default_factory=ConnectionOptions)
    producers: int = 1
    consumers: int = 1
    size: int = 100
    batch_size: int = 100
    api: str = "batch"
    sub_entry_size: int = 1
    compression: str = "none"
    rate: int = 0
    confirm_window: int = 10_000
    initial_credit: int = 10
    #: ``("first"|"last"|"next", None)``, ``("offset", n)`` or ``("timestamp", ms)``
    offset: tuple[str, int | None] = ("next", None)
    time: float | None = None
    count: int | None = None
    codec: str = "amqp"
    stream: str = ""
    stream_generated: bool = True
    streams: int = 1
    super_stream: bool = False
    partitions: int = 3
    keep: bool = False
    max_length_bytes: int = 2_000_000_000
    drain_timeout: float = 10.0
    json: bool = False
    library: str = "rabbitstream"
    compare: str | None = None
    quiet: bool = False
    report: str | None = None
    self_check: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """``host:port`` (with `` (tls)``) for display."""
        return self.conn.target

    @property
    def send_mode(self) -> str:
        """``sub-entry``, ``batch`` or ``send``: which producer API the workload calls."""
        if self.sub_entry_size > 1 or self.compression != "none":
            return "sub-entry"
        if self.super_stream:
            return "send"
        return self.api

    @property
    def group_size(self) -> int:
        """Messages per step of a producer: one sub-entry, or one batch (``send_batch`` or ``send`` calls)."""
        return self.sub_entry_size if self.send_mode == "sub-entry" else self.batch_size

    @property
    def stream_names(self) -> list[str]:
        """The streams (or super streams) of the run: ``stream``, or ``stream-0`` ... ``stream-<N-1>``."""
        if self.streams == 1:
            return [self.stream]
        return [f"{self.stream}-{i}" for i in range(self.streams)]

    def describe(self) -> dict[str, Any]:
        """The options worth recording in a summary (no password)."""
        d = asdict(self)
        conn = d.pop("conn")
        conn.pop("password")
        d.update(conn)
        for k in (
            "json",
            "quiet",
            "report",
            "self_check",
            "extra",
            "compare",
            "library",
            "stream_generated",
        ):
            d.pop(k, None)
        d["offset"] = self.offset[0] if self.offset[1] is None else f"{self.offset[0]}:{self.offset[1]}"
        d["send_mode"] = self.send_mode
        return d


def parse_size(text: str) -> int:
    """``"100"``, ``"2gb"``, ``"512MiB"`` -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if m is None or m.group(2).lower() not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (examples: 100, 20gb, 512mib)")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def parse_offset(text: str) -> tuple[str, int | None]:
    """``first``, ``last``, ``next``, a non-negative offset, or a timestamp.

    Timestamps: ``timestamp:<epoch ms>``, an ISO 8601 date/time (``2025-01-31T12:00:00``,
    local time unless it has a zone), or a relative ``-30s`` / ``-5m`` / ``-2h`` (from now).
    """
    t = text.strip().lower()
    if t in ("first", "last", "next"):
        return (t, None)
    if t.isdigit():
        return ("offset", int(t))
    if t.startswith("timestamp:") and t[10:].isdigit():
        return ("timestamp", int(t[10:]))
    m = re.fullmatch(r"-(\d+)([smhd])", t)
    if m is not None:
        secs = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        now = _dt.datetime.now(_dt.timezone.utc).timestamp()
        return ("timestamp", int((now - secs) * 1000))
    try:
        when = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid offset {text!r}: use first, last, next, an offset (e.g. 1000), "
            "timestamp:<epoch ms>, an ISO 8601 date/time or -30s/-5m/-2h"
        ) from None
    return ("timestamp", int(when.timestamp() * 1000))


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {v}")
    return v


def _non_negative(text: str) -> int:
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not f.is_integer():
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    if f < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return int(f)


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The ``rabbitstream perf`` argument parser."""
    p = argparse.ArgumentParser(
        prog="rabbitstream perf",
        description="Publish/consume performance tool for RabbitMQ Streams (the Python counterpart of "
        "the Java client's Stream PerfTest). With no options: 1 producer and 1 consumer on a fresh "
        "stream of the local broker (localhost:5552, guest/guest) for 10 s.",
    )
    add_connection_arguments(p)

    w = p.add_argument_group("workload")
    w.add_argument("-x", "--producers", type=_non_negative, default=1, help="number of producers (default 1)")
    w.add_argument("-y", "--consumers", type=_non_negative, default=1, help="number of consumers (default 1)")
    w.add_argument(
        "-s",
        "--size",
        type=_positive,
        default=100,
        help="message body size in bytes, >= 8 (default 100; the first 8 bytes carry a timestamp)",
    )
    w.add_argument(
        "-bs",
        "--batch-size",
        type=_positive,
        default=100,
        help="messages handed to the library per call: send_batch() of this many "
        "(default 100; the unit of the confirm window and of the rate limiter)",
    )
    w.add_argument(
        "--api",
        choices=("batch", "send"),
        default="batch",
        help="producer API: send_batch() (default) or one buffered send() per message",
    )
    w.add_argument(
        "-sbs",
        "--sub-entry-size",
        type=_positive,
        default=1,
        help="messages per sub-entry; > 1 publishes one send_sub_entry() per step",
    )
    w.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default="none",
        help="sub-entry compression (implies send_sub_entry())",
    )
    w.add_argument(
        "-r",
        "--rate",
        type=_non_negative,
        default=0,
        help="total publish rate limit in msg/s (0 = unlimited)",
    )
    w.add_argument(
        "-c",
        "--confirm-window",
        type=_positive,
        default=10_000,
        help="max unconfirmed messages per producer (default 10000)",
    )
    w.add_argument(
        "--initial-credit", type=_positive, default=10, help="consumer initial credit in chunks (default 10)"
    )
    w.add_argument(
        "-o",
        "--offset",
        type=parse_offset,
        default=("next", None),
        help="where consumers start: first, last, next (default), an offset, "
        "timestamp:<ms>, ISO 8601 or -30s",
    )
    w.add_argument(
        "--codec",
        choices=("amqp", "binary"),
        default="amqp",
        help="message format: AMQP 1.0 (default, interoperable) or raw bytes",
    )
    d = w.add_mutually_exclusive_group()
    d.add_argument("-z", "--time", type=_seconds, help="run for this many seconds (default 10)")
    d.add_argument("-C", "--count", type=_positive, help="publish this many messages in total, then stop")

    s = p.add_argument_group("streams")
    s.add_argument(
        "--stream",
        help="stream (or super stream) name; default: a generated name, deleted "
        "afterwards unless --keep (a name you give is created if missing and kept)",
    )
    s.add_argument(
        "--streams",
        type=_positive,
        default=1,
        help="number of streams (or super streams); producer/consumer i uses stream i mod N (default 1)",
    )
    s.add_argument(
        "--super-stream", action="store_true", help="use a super stream (SuperStreamProducer/Consumer)"
    )
    s.add_argument(
        "--partitions", type=_positive, default=3, help="partitions of a created super stream (default 3)"
    )
    s.add_argument("--keep", action="store_true", help="do not delete the generated stream")
    s.add_argument(
        "--max-length-bytes",
        type=parse_size,
        default=2_000_000_000,
        help="retention of created streams (default 2gb)",
    )

    o = p.add_argument_group("output and comparison")
    o.add_argument(
        "--json", action="store_true", help="print the summary as JSON on stdout (progress goes to stderr)"
    )
    o.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    o.add_argument(
        "--report",
        metavar="FILE.html",
        help="write a self-contained HTML page (inline SVG) with throughput and latency over time",
    )
    o.add_argument(
        "--library",
        choices=LIBRARIES,
        default="rabbitstream",
        help="client library to measure (default rabbitstream)",
    )
    o.add_argument(
        "--compare",
        choices=("rstream",),
        help="also run the same workload with rstream and print both summaries and the ratios "
        "(needs rstream: pip install 'rabbitstream-cli[compare]')",
    )
    o.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=10.0,
        help="after publishing stops, wait this long at most for confirms and consumers (default 10)",
    )
    o.add_argument(
        "--self-check",
        action="store_true",
        help="measure the tool's own per-message cost against a bare loop (no broker) and exit",
    )
    return p


def parse_args(argv: Sequence[str]) -> PerfOptions:
    """Parse and validate; exits with status 2 and a message on bad options (argparse)."""
    parser = build_parser()
    a = parser.parse_args(list(argv))
    opts = PerfOptions(conn=connection_from_args(a, parser))
    opts.producers, opts.consumers = a.producers, a.consumers
    if opts.producers == 0 and opts.consumers == 0:
        parser.error("nothing to do: --producers 0 and --consumers 0")
    if a.size < 8:
        parser.error(f"--size must be >= 8 (the timestamp takes 8 bytes), not {a.size}")
    opts.size, opts.batch_size, opts.api = a.size, a.batch_size, a.api
    opts.sub_entry_size, opts.compression = a.sub_entry_size, a.compression
    opts.rate, opts.confirm_window, opts.initial_credit = a.rate, a.confirm_window, a.initial_credit
    if opts.send_mode == "sub-entry" and a.super_stream:
        parser.error(
            "--sub-entry-size/--compression are not available with --super-stream "
            "(SuperStreamProducer only has send())"
        )
    if opts.group_size > opts.confirm_window:
        what = "--sub-entry-size" if opts.send_mode == "sub-entry" else "--batch-size"
        parser.error(f"--confirm-window ({opts.confirm_window}) must be at least {what} ({opts.group_size})")
    opts.offset, opts.codec = a.offset, a.codec
    opts.time, opts.count = a.time, a.count
    if opts.time is None and opts.count is None:
        opts.time = 10.0
    opts.super_stream, opts.partitions, opts.keep = a.super_stream, a.partitions, a.keep
    opts.streams = a.streams
    opts.max_length_bytes = a.max_length_bytes
    if a.stream:
        if not re.fullmatch(r"[^\s]{1,200}", a.stream):
            parser.error(f"invalid stream name {a.stream!r}")
        opts.stream, opts.stream_generated = a.stream, False
    else:
        opts.stream = f"perf-{uuid.uuid4().hex[:10]}"
        opts.stream_generated = True
    opts.json, opts.quiet, opts.report = a.json, a.quiet, a.report
    opts.library, opts.compare = a.library, a.compare
    if opts.compare is not None and opts.compare == opts.library:
        parser.error("--compare rstream compares rabbitstream with rstream; drop --library rstream")
    opts.drain_timeout = a.drain_timeout
    opts.self_check = a.self_check
    return opts
