"""The command line without a broker: connection options and secrets, dispatch, output, aggregation."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from rabbitstream.__main__ import plugins_text
from rabbitstream_cli import _connection, main
from rabbitstream_cli._consume import message_json, to_jsonable
from rabbitstream_cli._publish import key_from_json
from rabbitstream_cli.perf import _main as perf_main
from rabbitstream_cli.perf import parse_args
from rabbitstream_cli.perf._runner import Progress
from rabbitstream_cli.perf._stats import bucket_index

SECRET = "s3cr3t-pw"

# ---------------------------------------------------------------- secrets (#14 item 9)


def test_redact() -> None:
    assert (
        _connection.redact(f"rabbitmq-stream://bob:{SECRET}@h:5552/v") == "rabbitmq-stream://bob:***@h:5552/v"
    )
    assert _connection.redact("rabbitmq-stream://h:5552/") == "rabbitmq-stream://h:5552/"
    assert SECRET not in _connection.redact(f"rabbitmq-stream://bob:{SECRET}@h:port/")


def test_repr_has_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RABBITSTREAM_BROKER_URI", raising=False)
    o = parse_args(["--uri", f"rabbitmq-stream://bob:{SECRET}@h/"])
    assert o.conn.password == SECRET
    assert SECRET not in repr(o) and SECRET not in repr(o.conn)
    assert SECRET not in json.dumps(o.describe())


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--uri", f"amqp://bob:{SECRET}@h/"], None),
        (["--uri", f"rabbitmq-stream://bob:{SECRET}@h:notaport/"], None),
        ([], f"amqp://bob:{SECRET}@h/"),
        ([], f"rabbitmq-stream://bob:{SECRET}@h:99999999/"),
    ],
)
def test_bad_uri_errors_hide_the_password(
    argv: list[str], env: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if env is None:
        monkeypatch.delenv("RABBITSTREAM_BROKER_URI", raising=False)
    else:
        monkeypatch.setenv("RABBITSTREAM_BROKER_URI", env)
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and SECRET not in err
    assert ("RABBITSTREAM_BROKER_URI" in err) == (env is not None)


# ---------------------------------------------------------------- dispatch and output


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "rabbitstream-cli 0.1.0" in capsys.readouterr().out


def test_plugins_columns_aligned() -> None:
    rows = [line for line in plugins_text().splitlines() if "<-" in line]
    assert rows, "the umbrella's plugins are installed in the tests session"
    assert len({line.index("<-") for line in rows}) == 1  # long keys (rstream-legacy-hash) included


def test_plugins_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"amqp", "gzip"} <= {p["name"] for p in doc["plugins"]}


def test_output_survives_head() -> None:
    """``rabbitstream plugins | head -1``: a reader that went away ends the command quietly.

    Deterministic: standard output is a pipe whose read end is already closed.
    """
    code = (
        "import os, sys\n"
        "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
        "from rabbitstream_cli import main\n"
        "sys.exit(main(['plugins']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_compare_without_rstream_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--compare rstream never installs anything: the error names the extra."""
    import importlib

    real = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> object:
        if name == "rstream":
            raise ModuleNotFoundError("No module named 'rstream'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    monkeypatch.setattr(perf_main, "probe", lambda host, port, timeout=3.0: None)
    assert perf_main.main(["--compare", "rstream", "--time", "1"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'rabbitstream-cli[compare]'" in err
    assert "installing" not in err


def test_stream_create_arguments_parse(capsys: pytest.CaptureFixture[str]) -> None:
    from rabbitstream_cli._main import _parser
    from rabbitstream_cli._stream import _create_arguments

    a = _parser().parse_args(
        [
            "stream",
            "create",
            "s",
            "--max-age",
            "7D",
            "--max-length-bytes",
            "20gb",
            "--initial-cluster-size",
            "3",
            "--max-segment-size-bytes",
            "100mb",
            "--leader-locator",
            "balanced",
        ]
    )
    assert isinstance(a, argparse.Namespace)
    assert _create_arguments(a) == {
        "max-age": "7D",
        "max-length-bytes": 20_000_000_000,
        "stream-max-segment-size-bytes": 100_000_000,
        "initial-cluster-size": 3,
        "queue-leader-locator": "balanced",
    }


# ---------------------------------------------------------------- consume / publish helpers


def test_to_jsonable() -> None:
    assert to_jsonable(b"caf\xc3\xa9") == "café"
    assert to_jsonable(b"\xff\x00") == {"base64": "/wA="}
    assert to_jsonable({b"k": (1, b"v")}) == {"k": [1, "v"]}


def test_message_json_amqp() -> None:
    from rabbitstream import AMQPMessage, Properties

    msg = AMQPMessage(
        properties=Properties(message_id="m1", content_type="text/plain"),
        application_properties={"k": "v"},
        body=b"hi",
    )
    doc = message_json(msg, "s", 5, 1700000000000)
    assert doc == {
        "stream": "s",
        "offset": 5,
        "timestamp": 1700000000000,
        "properties": {"message_id": "m1", "content_type": "text/plain"},
        "application_properties": {"k": "v"},
        "body": "hi",
    }
    assert message_json(b"raw", "s", 0, 0)["body"] == "raw"


def test_key_from_json() -> None:
    assert key_from_json(b'{"id": 7}', "id") == "7"
    assert key_from_json(b'{"a": {"b": "x"}}', "a.b") == "x"
    for bad in (b"nope", b"[1]", b'{"other": 1}', b'{"id": null}'):
        with pytest.raises(ValueError):
            key_from_json(bad, "id")


# ---------------------------------------------------------------- perf: aggregation of worker reports


def test_progress_adds_the_same_second_of_every_worker() -> None:
    lines: list[str] = []

    class Out:
        def write(self, s: str) -> int:
            lines.append(s)
            return len(s)

        def flush(self) -> None:
            pass

    p, c = ("producer", 0), ("consumer", 0)
    state = Progress(label="t", workers=[p, c], out=Out())  # type: ignore[arg-type]
    b = bucket_index(2000)  # 2 ms
    state.handle(("stats", p, 1, (1000, 900, 0, 0, 0), {}))
    assert not state.due(1, {p, c})
    state.handle(("stats", c, 1, (0, 0, 0, 800, 0), {b: 800}))
    assert state.due(1, {p, c})
    state.print_second(1)
    state.handle(("stats", p, 2, (3000, 2900, 0, 0, 0), {}))
    state.handle(("stats", c, 2, (0, 0, 0, 2900, 0), {b: 2100}))
    state.print_second(2)
    assert [row[:4] for row in state.timeline] == [(1, 1000.0, 900.0, 800.0), (2, 2000.0, 2000.0, 2100.0)]
    assert state.total.total == 2900
    state.handle(("done", c, (0, 0, 0, 3000, 0), {b: 100}, (0, 0, 5), 0, []))
    assert state.totals() == (3000, 2900, 0, 3000, 0)
    assert "published" in lines[0]
