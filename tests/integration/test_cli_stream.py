"""``rabbitstream stream|consume|publish`` end to end against the real broker (exit statuses, output)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from support.process import sigint_default

if TYPE_CHECKING:
    from support.testenv import BrokerInfo

pytestmark = pytest.mark.integration


def _cli(
    broker: BrokerInfo | None, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    conn: list[str] = []
    if broker is not None:
        conn = ["--host", broker.host, "--port", str(broker.port), "--username", broker.username]
        conn += ["--password", broker.password]
    env = {k: v for k, v in os.environ.items() if k != "RABBITSTREAM_BROKER_URI"}
    return subprocess.run(
        [sys.executable, "-m", "rabbitstream_cli", *args, *conn],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def name() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def test_stream_lifecycle(broker: BrokerInfo, name: str) -> None:
    created = _cli(broker, "stream", "create", name, "--max-age", "1h", "--max-length-bytes", "10mb")
    assert created.returncode == 0, created.stderr
    try:
        again = _cli(broker, "stream", "create", name, "--max-age", "1h", "--max-length-bytes", "10mb")
        assert again.returncode == 1 and "Traceback" not in again.stderr
        assert _cli(broker, "stream", "create", name, "--exists-ok", "--max-age", "1h",
                    "--max-length-bytes", "10mb").returncode == 0  # fmt: skip
        pub = _cli(broker, "publish", name, stdin='hello\n{"n": 1}\n\xe9t\xe9\n')
        assert pub.returncode == 0, pub.stderr
        assert "published 3, confirmed 3" in pub.stderr
        raw = _cli(broker, "consume", name, "--offset", "first", "--count", "3")
        assert raw.returncode == 0, raw.stderr
        assert raw.stdout.splitlines() == ["hello", '{"n": 1}', "\xe9t\xe9"]
        js = _cli(broker, "consume", name, "--offset", "1", "--count", "1", "--format", "json")
        doc = json.loads(js.stdout)
        assert doc["stream"] == name and doc["offset"] == 1 and doc["body"] == '{"n": 1}'
        assert doc["timestamp"] > 0
        info = _cli(broker, "stream", "info", name, "--json")
        assert info.returncode == 0, info.stderr
        d = json.loads(info.stdout)
        assert d["exists"] and d["leader"] and d["first_offset"] == 0 and d["committed_offset"] >= 0
        listed = _cli(broker, "stream", "list", name, f"{name}-missing")
        assert listed.returncode == 1  # one of them does not exist
        assert f"{name}-missing  (does not exist)" in listed.stdout and f"{name}  stream" in listed.stdout
    finally:
        deleted = _cli(broker, "stream", "delete", name)
        assert deleted.returncode == 0, deleted.stderr
    gone = _cli(broker, "stream", "delete", name)
    assert gone.returncode == 1 and "StreamDoesNotExist" in gone.stderr and "Traceback" not in gone.stderr
    assert _cli(broker, "stream", "delete", name, "--missing-ok").returncode == 0


def test_super_stream_publish_and_consume(broker: BrokerInfo, name: str) -> None:
    assert _cli(broker, "stream", "create", name, "--partitions", "3").returncode == 0
    try:
        lines = "".join(json.dumps({"id": f"k{i}", "n": i}) + "\n" for i in range(30))
        no_key = _cli(broker, "publish", name, stdin=lines)
        assert no_key.returncode == 2 and "--routing-key or --key-from-json" in no_key.stderr
        pub = _cli(broker, "publish", name, "--key-from-json", "id", stdin=lines + "not json\n")
        assert pub.returncode == 1  # one line skipped: non-zero exit
        assert "published 30, confirmed 30, skipped 1" in pub.stderr
        got = _cli(broker, "consume", name, "--offset", "first", "--count", "30", "--format", "json")
        assert got.returncode == 0, got.stderr
        docs = [json.loads(line) for line in got.stdout.splitlines()]
        assert sorted(json.loads(d["body"])["n"] for d in docs) == list(range(30))
        assert len({d["stream"] for d in docs}) > 1  # read from every partition
        info = json.loads(_cli(broker, "stream", "info", name, "--json").stdout)
        assert [p["stream"] for p in info["partitions"]] == [f"{name}-{i}" for i in range(3)]
    finally:
        assert _cli(broker, "stream", "delete", name).returncode == 0
    assert json.loads(_cli(broker, "stream", "info", name, "--json").stdout)["exists"] is False


def test_publish_with_publisher_name_deduplicates(broker: BrokerInfo, name: str) -> None:
    assert _cli(broker, "stream", "create", name).returncode == 0
    try:
        pub = _cli(broker, "publish", name, "--publisher-name", "p1", stdin="a\nb\n")
        assert pub.returncode == 0, pub.stderr
        got = _cli(broker, "consume", name, "--offset", "first", "--count", "2")
        assert got.stdout.splitlines() == ["a", "b"]
    finally:
        _cli(broker, "stream", "delete", name)


@pytest.mark.parametrize(
    "args",
    [
        ["stream", "create", "x", "--max-age", "7"],
        ["stream", "create", "x", "--partitions", "0"],
        ["stream", "create", "x", "--partitions", "2", "--binding-keys", "a,b"],
        ["consume", "x", "--offset", "yesterday-ish"],
        ["consume", "x", "--count", "0"],
        ["publish", "x", "--routing-key", "a", "--key-from-json", "id"],
        ["stream", "info"],
        ["stream", "frobnicate"],
        ["stream", "info", "x", "--uri", "amqp://u:pw-secret@h/"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    proc = _cli(None, *args)
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert "pw-secret" not in proc.stderr


@pytest.mark.parametrize(
    "args", [["stream", "info", "x"], ["consume", "x"], ["publish", "x"], ["stream", "create", "x"]]
)
def test_broker_down_clear_message(args: list[str]) -> None:
    proc = _cli(None, *args, "--port", "1", stdin="a\n")
    assert proc.returncode == 1
    assert "no RabbitMQ stream listener answers on localhost:1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_consume_missing_stream(broker: BrokerInfo, name: str) -> None:
    proc = _cli(broker, "consume", name, "--count", "1")
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_consume_survives_head(broker: BrokerInfo, name: str) -> None:
    """``rabbitstream consume ... | head -1``: no BrokenPipeError traceback."""
    assert _cli(broker, "stream", "create", name).returncode == 0
    try:
        assert _cli(broker, "publish", name, stdin="".join(f"m{i}\n" for i in range(2000))).returncode == 0
        cmd = (
            f"{sys.executable} -m rabbitstream_cli consume {name} --offset first --count 2000 "
            f"--host {broker.host} --port {broker.port} --username {broker.username} "
            f"--password {broker.password} | head -1"
        )
        proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
        assert proc.stdout == "m0\n"
        assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    finally:
        _cli(broker, "stream", "delete", name)


def test_consume_follows_until_ctrl_c(broker: BrokerInfo, name: str) -> None:
    """Without --count, consume follows the stream; Ctrl-C ends it quietly (status 130, no traceback)."""
    assert _cli(broker, "stream", "create", name).returncode == 0
    try:
        conn = ["--host", broker.host, "--port", str(broker.port), "--username", broker.username]
        conn += ["--password", broker.password]
        proc = subprocess.Popen(
            [sys.executable, "-m", "rabbitstream_cli", "consume", name, *conn],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_default,
        )
        try:
            time.sleep(2.0)
            assert _cli(broker, "publish", name, stdin="late\n").returncode == 0
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130
        assert out == "late\n"
        assert "Traceback" not in err
    finally:
        _cli(broker, "stream", "delete", name)
