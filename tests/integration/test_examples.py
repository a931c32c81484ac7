"""Run every script of ``examples/`` as a subprocess against the real broker, with small counts.

Each test checks the exit status and an expected output line.  Streams and super streams
get unique names (``RABBITSTREAM_EXAMPLE_STREAM`` / ``RABBITSTREAM_EXAMPLE_SUPER_STREAM``)
and are deleted afterwards through the management API.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from support.testenv import BrokerInfo, ClusterInfo, TlsBrokerInfo
    from tools.mgmt import Management

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT = 120


@dataclass
class ExampleRunner:
    """Runs example scripts with the broker's coordinates and per-test stream names."""

    env: dict[str, str]
    mgmt: Management | None
    prefix: str
    extra_paths: list[str] = field(default_factory=list)

    def run(
        self, script: str, *args: str, expect: str | None = None, status: int = 0, **env: str | int
    ) -> str:
        """Run ``examples/<script>``; assert its exit status and that regex ``expect`` is in its output."""
        full_env = {**self.env, **{k: str(v) for k, v in env.items()}}
        if self.extra_paths:
            full_env["PYTHONPATH"] = os.pathsep.join([*self.extra_paths, full_env.get("PYTHONPATH", "")])
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / script), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=ROOT,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == status, f"{script} exited with {proc.returncode}:\n{out[-4000:]}"
        if expect is not None:
            assert re.search(expect, out), f"{script}: {expect!r} not in output:\n{out[-4000:]}"
        return out

    def cleanup(self) -> None:
        """Delete the queues (streams, partitions) and exchanges (super streams) this test created."""
        if self.mgmt is None:
            return
        for kind in ("queues", "exchanges"):
            try:
                items = self.mgmt.request("GET", f"/{kind}/%2F")
            except (OSError, urllib.error.URLError):
                return
            for item in items or []:
                name = item.get("name", "")
                if name.startswith(self.prefix):
                    try:
                        self.mgmt.request("DELETE", f"/{kind}/%2F/{urllib.parse.quote(name, safe='')}")
                    except (OSError, urllib.error.URLError):
                        pass


def _base_env(host: str, port: int, username: str, password: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITSTREAM_EXAMPLE_")}
    env.update(
        RABBITSTREAM_HOST=host,
        RABBITSTREAM_PORT=str(port),
        RABBITSTREAM_USERNAME=username,
        RABBITSTREAM_PASSWORD=password,
        RABBITSTREAM_EXAMPLE_STREAM=f"{prefix}s",
        RABBITSTREAM_EXAMPLE_SUPER_STREAM=f"{prefix}ss",
        RABBITSTREAM_EXAMPLE_TIMEOUT="30",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def ex(broker: BrokerInfo) -> Iterator[ExampleRunner]:
    """An :class:`ExampleRunner` bound to the main broker."""
    prefix = f"ex-{uuid.uuid4().hex[:8]}-"
    runner = ExampleRunner(
        _base_env(broker.host, broker.port, broker.username, broker.password, prefix),
        broker.management() if broker.http_port else None,
        prefix,
    )
    try:
        yield runner
    finally:
        runner.cleanup()


# ---------------------------------------------------------------- basic producers and consumers


@pytest.mark.parametrize(
    ("script", "count", "expect"),
    [
        ("basic_producers/producer_send.py", 200, r"Sent 200 messages in"),
        ("basic_producers/producer_send_binary.py", 200, r"Sent 200 messages in"),
        ("basic_producers/producer_send_batch.py", 250, r"Sent 250 messages in"),
        ("basic_producers/producer_send_batch_binary.py", 250, r"Sent 250 messages in"),
        ("basic_producers/producer_send_wait.py", 20, r"Sent and confirmed 20 messages"),
        ("producers_with_confirmations/send_with_confirmation.py", 300, r"300 messages confirmed, 0 failed"),
        (
            "producers_with_confirmations/send_batch_with_confirmation.py",
            300,
            r"300 messages confirmed, 0 failed",
        ),
        ("sub_entry_batch/producer_sub_entry_batch.py", 300, r"compression Gzip.*\n.*compression No"),
        ("deduplication/producer_ded.py", 50, r"The stream holds 50 messages"),
        (
            "basic_consumers/basic_consumer_offset_next.py",
            50,
            r"Received 50 messages published after subscribing",
        ),
        ("async_iterator/async_iterator_consumer.py", 250, r"Iterated over 250 messages"),
        (
            "telemetry/opentelemetry_trace.py",
            60,
            r"60 send spans, 60 process spans, 60 process spans continue a send trace",
        ),
    ],
)
def test_self_contained_example(ex: ExampleRunner, script: str, count: int, expect: str) -> None:
    ex.run(script, expect=expect, RABBITSTREAM_EXAMPLE_COUNT=count)


@pytest.mark.parametrize(
    ("producer", "consumer", "decoded"),
    [
        (
            "basic_producers/producer_send_batch.py",
            "basic_consumers/basic_consumer.py",
            r"Got message: b'hello: 0' from stream",
        ),
        (
            "basic_producers/producer_send_batch_binary.py",
            "basic_consumers/basic_consumer_binary.py",
            r"Got message: b'hello: 0' from stream",
        ),
    ],
)
def test_basic_consumer(ex: ExampleRunner, producer: str, consumer: str, decoded: str) -> None:
    ex.run(producer, RABBITSTREAM_EXAMPLE_COUNT=200)
    out = ex.run(consumer, expect=r"Received 200 messages", RABBITSTREAM_EXAMPLE_COUNT=200)
    assert re.search(decoded, out), out


def test_consumer_offset_offset(ex: ExampleRunner) -> None:
    ex.run("basic_producers/producer_send_batch.py", RABBITSTREAM_EXAMPLE_COUNT=100)
    out = ex.run(
        "basic_consumers/basic_consumer_offset_offset.py",
        expect=r"Received 90 messages",
        RABBITSTREAM_EXAMPLE_COUNT=90,
    )
    assert "b'hello: 10' from stream" in out and "offset 10\n" in out, out


def test_consumer_times_out_with_status_1(ex: ExampleRunner) -> None:
    ex.run("basic_producers/producer_send_batch.py", RABBITSTREAM_EXAMPLE_COUNT=10)
    ex.run(
        "basic_consumers/basic_consumer.py",
        expect=r"Timed out after 10 messages",
        status=1,
        RABBITSTREAM_EXAMPLE_COUNT=11,
        RABBITSTREAM_EXAMPLE_TIMEOUT=3,
    )


def test_manual_offset_tracking_resumes(ex: ExampleRunner) -> None:
    ex.run("basic_producers/producer_send_batch.py", RABBITSTREAM_EXAMPLE_COUNT=200)
    script = "manual_server_offset_tracking/consumer.py"
    ex.run(script, expect=r"(?s)No stored offset.*Stored offset 99 after 100", RABBITSTREAM_EXAMPLE_COUNT=100)
    ex.run(
        script,
        expect=r"(?s)Resuming after stored offset 99.*Stored offset 199 after 100",
        RABBITSTREAM_EXAMPLE_COUNT=100,
    )


# ---------------------------------------------------------------- filtering


def test_filtering(ex: ExampleRunner) -> None:
    ex.run(
        "filtering/producer_filtering.py",
        expect=r"Sent 200 messages for each",
        RABBITSTREAM_EXAMPLE_COUNT=200,
    )
    ex.run(
        "filtering/consumer_filtering.py",
        expect=r"Received 200 New York messages \(0 from other regions\)",
        RABBITSTREAM_EXAMPLE_COUNT=200,
    )


def test_super_stream_filtering(ex: ExampleRunner) -> None:
    ex.run(
        "filtering/super_stream_producer_filtering.py",
        expect=r"Sent 100 messages for each",
        RABBITSTREAM_EXAMPLE_COUNT=100,
    )
    ex.run(
        "filtering/super_stream_consumer_filtering.py",
        expect=r"Received 100 New York messages from partitions",
        RABBITSTREAM_EXAMPLE_COUNT=100,
    )


# ---------------------------------------------------------------- super streams and SAC


def test_super_stream_hash(ex: ExampleRunner) -> None:
    ex.run(
        "super_stream/super_stream_producer.py",
        expect=r"Sent 300 messages to",
        RABBITSTREAM_EXAMPLE_COUNT=300,
    )
    out = ex.run(
        "super_stream/super_stream_consumer.py",
        expect=r"Received 300 messages",
        RABBITSTREAM_EXAMPLE_COUNT=300,
    )
    assert all(f"{ex.prefix}ss-{i}" in out for i in range(3)), out


def test_super_stream_key(ex: ExampleRunner) -> None:
    ex.run(
        "super_stream/super_stream_producer_key.py",
        expect=r"Sent 300 messages to .* by key",
        RABBITSTREAM_EXAMPLE_COUNT=300,
    )
    out = ex.run(
        "super_stream/super_stream_consumer.py",
        expect=r"Received 300 messages",
        RABBITSTREAM_EXAMPLE_COUNT=300,
    )
    for key in ("key1", "key2", "key3"):  # the key example binds one partition per key, 100 messages each
        assert f"'{ex.prefix}ss-{key}': 100" in out, out


def test_single_active_consumer(ex: ExampleRunner) -> None:
    ex.run(
        "single_active_consumer/sac_super_stream_producer.py",
        expect=r"Sent 300 messages",
        RABBITSTREAM_EXAMPLE_COUNT=300,
    )
    out = ex.run(
        "single_active_consumer/single_active_consumer.py",
        expect=r"Received 300 messages",
        RABBITSTREAM_EXAMPLE_COUNT=300,
    )
    assert out.count("active on partition") == 3, out


# ---------------------------------------------------------------- reliable client


def test_best_practices_client(ex: ExampleRunner) -> None:
    ex.run(
        "reliable_client/BestPracticesClient.py",
        expect=r"Done: .*'confirmed': 400, 'failed': 0, 'consumed': 800",
        RABBITSTREAM_EXAMPLE_COUNT=200,
        RABBITSTREAM_EXAMPLE_TIMEOUT=60,
    )


# ---------------------------------------------------------------- third-party compression plugin


def _skip_custom_codes_on_new_brokers(broker: BrokerInfo) -> None:
    if broker.version_info >= (4, 3, 5):
        pytest.skip(f"RabbitMQ {broker.version} rejects sub-entry compression codes above 4")


def test_compression_plugin_in_code(ex: ExampleRunner, broker: BrokerInfo) -> None:
    _skip_custom_codes_on_new_brokers(broker)
    ex.run(
        "compression_plugin/use_lzma_plugin.py",
        "--in-code",
        RABBITSTREAM_EXAMPLE_COUNT=500,
        expect=r"(?s)compressed with lzma \(code 5\).*Received 500 messages, all decompressed",
    )


def test_compression_plugin_installed(ex: ExampleRunner, tmp_path: Path, broker: BrokerInfo) -> None:
    """Install the example distribution into a private directory: discovery goes through its entry point."""
    _skip_custom_codes_on_new_brokers(broker)
    target = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(EXAMPLES / "compression_plugin" / "rabbitstream-lzma"),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if pip.returncode != 0:
        pytest.skip(f"cannot build the example plugin offline: {pip.stderr[-500:]}")
    ex.extra_paths.append(str(target))
    ex.run(
        "compression_plugin/use_lzma_plugin.py",
        RABBITSTREAM_EXAMPLE_COUNT=200,
        expect=r"Received 200 messages, all decompressed by the lzma plugin",
    )


# ---------------------------------------------------------------- TLS, SASL EXTERNAL, load balancer


@pytest.fixture
def tls_ex(tls_broker: TlsBrokerInfo) -> Iterator[ExampleRunner]:
    """An :class:`ExampleRunner` bound to the TLS node (skipped, with the reason, when it cannot be had)."""
    prefix = f"ex-{uuid.uuid4().hex[:8]}-"
    env = _base_env(tls_broker.host, tls_broker.plain_port, tls_broker.username, tls_broker.password, prefix)
    env.update(
        RABBITSTREAM_TLS_PORT=str(tls_broker.tls_port),
        RABBITSTREAM_TLS_CA=tls_broker.ca_file,
        RABBITSTREAM_TLS_CERT=tls_broker.cert_file,
        RABBITSTREAM_TLS_KEY=tls_broker.key_file,
    )
    runner = ExampleRunner(env, tls_broker.management() if tls_broker.http_port else None, prefix)
    try:
        yield runner
    finally:
        runner.cleanup()


def test_tls_producer(tls_ex: ExampleRunner) -> None:
    tls_ex.run("tls/producer.py", expect=r"Sent 150 messages over TLS", RABBITSTREAM_EXAMPLE_COUNT=150)


def test_tls_sasl_external(tls_ex: ExampleRunner) -> None:
    tls_ex.run(
        "tls/producer_sasl_external.py",
        expect=r"Sent 150 messages over TLS, authenticated by certificate",
        RABBITSTREAM_EXAMPLE_COUNT=150,
    )


@pytest.mark.slow
def test_load_balancer(cluster: ClusterInfo) -> None:
    if cluster.lb_port is None:
        pytest.skip("the cluster has no load balancer")
    prefix = f"ex-{uuid.uuid4().hex[:8]}-"
    env = _base_env(cluster.host, cluster.ports[0], cluster.username, cluster.password, prefix)
    env["RABBITSTREAM_LB_PORT"] = str(cluster.lb_port)
    ExampleRunner(env, None, prefix).run(
        "load_balancer/producer_load_balancer.py",
        RABBITSTREAM_EXAMPLE_COUNT=300,
        expect=r"Sent and received 300/300 messages through the load balancer",
    )
