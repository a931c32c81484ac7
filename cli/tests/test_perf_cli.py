"""``rabbitstream perf`` without a broker: option parsing, histogram and percentile maths, summaries."""

from __future__ import annotations

import json
import math
import random
import time

import pytest
from rabbitstream_cli import _connection
from rabbitstream_cli.perf import _main as _perf
from rabbitstream_cli.perf._options import parse_args, parse_offset, parse_size
from rabbitstream_cli.perf._stats import (
    HIST_SIZE,
    TIMESTAMP,
    ConsumeStats,
    Histogram,
    Summary,
    bucket_index,
    bucket_value,
    format_comparison,
    format_progress,
    format_summary,
    make_recorder,
    percentile,
    rate,
    ratios,
)

# ---------------------------------------------------------------- options


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RABBITSTREAM_BROKER_URI", raising=False)
    o = parse_args([])
    assert (o.conn.host, o.conn.port, o.conn.username, o.conn.password, o.conn.vhost, o.conn.tls) == (
        "localhost",
        5552,
        "guest",
        "guest",
        "/",
        False,
    )
    assert (o.producers, o.consumers, o.size, o.batch_size, o.confirm_window) == (1, 1, 100, 100, 10_000)
    assert o.time == 10.0 and o.count is None
    assert o.codec == "amqp" and o.offset == ("next", None) and o.send_mode == "batch"
    assert o.stream.startswith("perf-") and o.stream_generated and not o.keep
    assert o.library == "rabbitstream" and o.compare is None


def test_uri_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RABBITSTREAM_BROKER_URI", raising=False)
    o = parse_args(["--uri", "rabbitmq-stream://bob:s%40cret@broker.example:6000/my%2Fvhost"])
    assert (o.conn.host, o.conn.port, o.conn.username, o.conn.password, o.conn.vhost) == (
        "broker.example",
        6000,
        "bob",
        "s@cret",
        "my/vhost",
    )
    o = parse_args(["--uri", "rabbitmq-stream+tls://h", "--port", "7000", "--username", "u"])
    assert o.conn.tls and o.conn.port == 7000 and o.conn.host == "h" and o.conn.username == "u"
    assert parse_args(["--uri", "rabbitmq-stream+tls://h"]).conn.port == 5551


def test_uri_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITSTREAM_BROKER_URI", "rabbitmq-stream://a:b@envhost:5999/")
    o = parse_args([])
    assert (o.conn.host, o.conn.port, o.conn.username, o.conn.password) == ("envhost", 5999, "a", "b")


def test_tls_options(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RABBITSTREAM_BROKER_URI", raising=False)
    ca = tmp_path / "ca.pem"  # type: ignore[operator]
    ca.write_text("x")
    o = parse_args(["--ca", str(ca)])
    assert o.conn.tls and o.conn.port == 5551 and o.conn.ca == str(ca)
    assert parse_args(["--tls", "--port", "5561"]).conn.port == 5561


@pytest.mark.parametrize(
    "argv",
    [
        ["--size", "4"],
        ["--producers", "0", "--consumers", "0"],
        ["--time", "0"],
        ["--time", "3", "--count", "10"],
        ["--count", "0"],
        ["--compression", "brotli"],
        ["--codec", "json"],
        ["--offset", "yesterday-ish"],
        ["--batch-size", "200", "--confirm-window", "100"],
        ["--sub-entry-size", "50", "--confirm-window", "10"],
        ["--super-stream", "--sub-entry-size", "10"],
        ["--uri", "amqp://localhost"],
        ["--key", "k.pem"],
        ["--sasl", "external"],
        ["--ca", "/nonexistent/ca.pem"],
        ["--port", "70000"],
        ["--rate", "-5"],
        ["--rate", "1.5"],
        ["--compare", "rstream", "--library", "rstream"],
    ],
)
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_workload_options() -> None:
    o = parse_args(
        [
            "-x",
            "2",
            "-y",
            "3",
            "-s",
            "20",
            "--rate",
            "1e4",
            "--count",
            "5000",
            "--codec",
            "binary",
            "--stream",
            "mine",
            "--super-stream",
            "--partitions",
            "5",
            "--json",
            "--initial-credit",
            "4",
        ]
    )
    assert (o.producers, o.consumers, o.size, o.rate, o.count, o.time) == (2, 3, 20, 10_000, 5000, None)
    assert o.codec == "binary" and o.stream == "mine" and not o.stream_generated
    assert o.super_stream and o.partitions == 5 and o.json and o.initial_credit == 4
    assert o.send_mode == "send"  # SuperStreamProducer only has send()
    o = parse_args(["--sub-entry-size", "10"])
    assert o.send_mode == "sub-entry" and o.group_size == 10
    o = parse_args(["--compression", "zstd"])
    assert o.send_mode == "sub-entry" and o.compression == "zstd"
    o = parse_args(["--api", "send", "--batch-size", "50"])
    assert o.send_mode == "send" and o.group_size == 50
    d = o.describe()
    assert "password" not in d and d["send_mode"] == "send" and d["offset"] == "next"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("first", ("first", None)),
        ("LAST", ("last", None)),
        ("next", ("next", None)),
        ("0", ("offset", 0)),
        ("12345", ("offset", 12345)),
        ("timestamp:1700000000000", ("timestamp", 1700000000000)),
        ("2023-11-14T22:13:20+00:00", ("timestamp", 1700000000000)),
    ],
)
def test_parse_offset(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_offset(text) == expected


def test_parse_relative_offset() -> None:
    kind, ms = parse_offset("-30s")
    assert kind == "timestamp" and ms is not None
    assert abs(ms - (time.time() - 30) * 1000) < 5000


def test_parse_size() -> None:
    assert parse_size("100") == 100
    assert parse_size("2gb") == 2_000_000_000
    assert parse_size("512MiB") == 512 * 1024 * 1024
    with pytest.raises(Exception, match="invalid size"):
        parse_size("12 parsecs")


# ---------------------------------------------------------------- histogram maths


def test_bucket_index_is_monotonic_and_bounded() -> None:
    prev = -1
    for v in [*range(0, 5000), *(int(1.01**k) for k in range(2000, 2800))]:
        i = bucket_index(v)
        assert prev <= i < HIST_SIZE
        prev = i
    assert bucket_index(-5) == 0
    assert bucket_index(2**62) == HIST_SIZE - 1


@pytest.mark.parametrize("v", [0, 1, 63, 64, 65, 100, 127, 128, 1000, 4095, 10**6, 123_456_789])
def test_bucket_value_relative_error(v: int) -> None:
    mid = bucket_value(bucket_index(v))
    assert abs(mid - v) <= max(0.5, v * 1 / 32)


def test_buckets_are_contiguous() -> None:
    # every bucket's representative value falls back into the same bucket
    for i in range(HIST_SIZE - 1):
        assert bucket_index(int(bucket_value(i))) == i


def test_percentile_exact_for_small_values() -> None:
    counts = [0] * HIST_SIZE
    for v in range(1, 61):  # 60 values 1..60, one each
        counts[bucket_index(v)] += 1
    assert percentile(counts, [50, 95, 99, 100, 0]) == [30.0, 57.0, 60.0, 60.0, 1.0]


def test_percentile_empty_and_invalid() -> None:
    assert percentile([0] * HIST_SIZE, [50, 99]) == [None, None]
    with pytest.raises(ValueError, match="percentile"):
        percentile([1] + [0] * (HIST_SIZE - 1), [101])


def test_percentile_against_sorted_sample() -> None:
    rng = random.Random(7)
    sample = [int(rng.lognormvariate(8, 1.5)) for _ in range(20_000)]
    h = Histogram()
    for v in sample:
        h.record(v)
    sample.sort()
    for q, got in zip((50, 95, 99), h.percentiles([50, 95, 99]), strict=True):
        exact = sample[math.ceil(q / 100 * len(sample)) - 1]
        assert got is not None and abs(got - exact) <= exact / 32 + 1


def test_histogram_merge_and_max() -> None:
    a, b = Histogram(), Histogram()
    a.record(10)
    b.record(1000, 3)
    a.merge_from(b, clear=True)
    assert a.total == 4 and b.total == 0
    assert a.max() == bucket_value(bucket_index(1000))
    assert Histogram().max() is None


def test_recorder_counts_latency_and_errors() -> None:
    stats = ConsumeStats()
    rec = make_recorder(stats)
    ts = time.time_ns() - 5_000_000  # 5 ms ago
    body = TIMESTAMP.pack(ts) + b"x" * 20
    for _ in range(10):
        rec(body, None)
    rec(b"short", None)
    assert stats.consumed == 10 and stats.errors == 1 and stats.last_ns >= ts
    p50 = stats.tick()
    assert p50 is not None and 5000 <= p50 < 6000
    assert stats.interval.total == 0 and stats.total.total == 10

    class Msg:
        body = TIMESTAMP.pack(time.time_ns())

    rec2 = make_recorder(stats, lambda m: m.body)
    rec2(Msg(), None)
    assert stats.consumed == 11


def test_recorder_accepts_memoryview() -> None:
    stats = ConsumeStats()
    make_recorder(stats)(memoryview(TIMESTAMP.pack(time.time_ns()) + b"abc"), None)
    assert stats.consumed == 1


# ---------------------------------------------------------------- summaries


def _summary(lib: str, pub: float, p50: float | None) -> Summary:
    s = Summary(
        library=lib, version="1", target="localhost:5552", published=1000, confirmed=1000, consumed=1000
    )
    s.published_rate = s.confirmed_rate = s.consumed_rate = pub
    s.latency_p50_ms = s.latency_p95_ms = s.latency_p99_ms = p50
    return s


def test_rate_and_ratios() -> None:
    assert rate(1000, 2.0) == 500.0
    assert rate(5, 0.0) == 0.0
    r = ratios(_summary("rabbitstream", 300_000, 2.0), _summary("rstream", 100_000, 8.0))
    assert r["published_rate"] == 3.0 and r["latency_p50_ms"] == 0.25
    r = ratios(_summary("rabbitstream", 1, None), _summary("rstream", 0, 1.0))
    assert r["published_rate"] is None and r["latency_p50_ms"] is None


def test_summary_formats() -> None:
    ours, theirs = _summary("rabbitstream", 300_000, 2.0), _summary("rstream", 100_000, 8.0)
    ours.fill_latency(Histogram())
    assert ours.latency_p50_ms is None
    text = format_summary(theirs)
    assert "published 1,000" in text and "p50 8.00 ms" in text
    data = json.loads(json.dumps(theirs.to_json()))
    assert data["published"] == data["confirmed"] == 1000 and data["library"] == "rstream"
    table = format_comparison(
        [_summary("rabbitstream", 300_000, 2.0), theirs],
        ratios(_summary("rabbitstream", 300_000, 2.0), theirs),
    )
    assert "3.00x better" in table and "0.25x better" in table
    line = format_progress("rabbitstream", 1.0, 10.0, 9.0, 8.0, 1500.0)
    assert "published" in line and "1.50 ms" in line
    assert "n/a" in format_progress("x", 1.0, 0, 0, 0, None)


# ---------------------------------------------------------------- main() without a broker


def test_main_hints_when_no_broker(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_perf, "probe", lambda host, port, timeout=3.0: "Connection refused")
    assert _perf.main(["--time", "1", "--codec", "binary"]) == 2
    err = capsys.readouterr().err
    # hints for people who installed from the package index, not for this repository's tools/
    assert "no RabbitMQ stream listener answers on localhost:5552" in err and "--uri" in err
    assert "tools/broker.py" not in err


def test_probe_broker_closed_port() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert _connection.probe("127.0.0.1", port, timeout=1.0) is not None


def test_self_check_runs(capsys: pytest.CaptureFixture[str]) -> None:
    res = _perf.self_check(n=2000)
    assert res["consumer_tool_ns"] > 0 and res["producer_tool_ns"] > 0
    assert "consumer callback" in capsys.readouterr().out


def test_cli_dispatches_perf(capsys: pytest.CaptureFixture[str]) -> None:
    from rabbitstream_cli import main

    with pytest.raises(SystemExit) as exc:
        main(["perf", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--confirm-window", "--sub-entry-size", "--compare", "--super-stream", "--initial-credit"):
        assert opt in out
