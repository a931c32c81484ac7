"""The plugin host: registry building, errors, opt-outs, and discovery through real installs."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from rabbitstream.plugin import (
    DuplicatePluginError,
    PluginNotFoundError,
    build_registry,
    hookimpl,
)


class _Codec:
    def __init__(self, code: int, name: str) -> None:
        self.code = code
        self.name = name

    def compress(self, data: bytes) -> bytes:
        return data[::-1]

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        return bytes(data)[::-1]


class _PluginA:
    @hookimpl
    def rabbitstream_compression_codecs(self) -> list[_Codec]:
        return [_Codec(6, "rev")]


class _PluginB:
    @hookimpl
    def rabbitstream_compression_codecs(self) -> list[_Codec]:
        return [_Codec(6, "rev2")]


def test_registry_from_in_code_plugins() -> None:
    reg = build_registry(autoload=False, plugins=[_PluginA()])
    assert reg.compression_codec(6).name == "rev"
    assert reg.compression_codec("rev").code == 6
    with pytest.raises(TypeError):
        reg.compression[7] = _Codec(7, "x")  # type: ignore[index]


def test_duplicate_key_names_both_providers() -> None:
    with pytest.raises(DuplicatePluginError) as info:
        build_registry(autoload=False, plugins=[_PluginA(), _PluginB()])
    assert info.value.key == 6
    assert "_PluginA" in str(info.value) and "_PluginB" in str(info.value)


def test_duplicate_override_keeps_first_called() -> None:
    reg = build_registry(autoload=False, plugins=[_PluginA(), _PluginB()], override=True)
    # pluggy calls the last registered plugin first
    assert reg.compression_codec(6).name == "rev2"


def test_missing_capability_names_distribution() -> None:
    reg = build_registry(autoload=False)
    with pytest.raises(PluginNotFoundError, match=r"rabbitstream\[zstd\]"):
        reg.compression_codec(4)
    with pytest.raises(PluginNotFoundError, match="rabbitstream-plain"):
        reg.sasl_mechanism("PLAIN")


def test_autoload_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITSTREAM_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert build_registry().plugins == ()


def test_import_of_rabbitstream_loads_no_plugin() -> None:
    code = (
        "import sys, rabbitstream, rabbitstream.plugin;"
        "print(any(m.startswith('rabbitstream_') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- real installed entry points


def _wheel(tmp: Path, dist: str, module: str, source: str, ep_name: str) -> Path:
    """Write a minimal, valid wheel for a one-module distribution."""
    norm = dist.replace("-", "_")
    info = f"{norm}-0.0.1.dist-info"
    files = {
        f"{module}.py": source.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[rabbitstream]\n{ep_name} = {module}\n".encode(),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = tmp / f"{norm}-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


GOOD = """
from rabbitstream.plugin import hookimpl

class Rot:
    code = 7
    name = "rot"
    def compress(self, data): return bytes(b ^ 0x55 for b in data)
    def decompress(self, data, uncompressed_size): return bytes(b ^ 0x55 for b in data)

@hookimpl
def rabbitstream_compression_codecs():
    return [Rot()]
"""
BROKEN = "import this_module_does_not_exist_anywhere\n"
DUPLICATE = GOOD.replace('name = "rot"', 'name = "rot-again"')


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("thirdparty")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the core (and pluggy) come from the test environment; the plugins are installed for real
    # (addsitedir so that the outer environment's own .pth files - editable installs - apply too)
    lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
    (Path(purelib) / "_outer_env.pth").write_text("\n".join(lines) + "\n")
    wheels = [
        _wheel(tmp, "rabbitstream-rot", "rabbitstream_rot", GOOD, "rot"),
        _wheel(tmp, "rabbitstream-broken", "rabbitstream_broken", BROKEN, "broken"),
    ]
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", *map(str, wheels)], check=True
    )
    (tmp / "dup.whl.path").write_text(
        str(_wheel(tmp, "rabbitstream-rot-copy", "rabbitstream_rot_copy", DUPLICATE, "rotcopy"))
    )
    return env_dir


def _run(env_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RABBITSTREAM_")} | (env or {})
    return subprocess.run([env_dir / "bin" / "python", *args], capture_output=True, text=True, env=full)


def test_third_party_plugin_discovered_through_entry_points(plugin_venv: Path) -> None:
    out = _run(plugin_venv, "-m", "rabbitstream", "plugins", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["rot"]["distribution"] == "rabbitstream-rot"
    assert {"kind": "compression", "key": "7", "provider": "rabbitstream-rot 0.0.1"} in data["provides"]
    # the broken plugin is logged and skipped; the others still load
    assert "broken" not in names
    assert "rabbitstream-broken" in out.stderr and "could not be imported" in out.stderr
    code = (
        "from rabbitstream.plugin import get_registry; c = get_registry().compression_codec(7);"
        "print(c.decompress(c.compress(b'ab'), 2))"
    )
    assert _run(plugin_venv, "-c", code).stdout.strip() == "b'ab'"


def test_block_list_and_autoload_switch(plugin_venv: Path) -> None:
    blocked = _run(
        plugin_venv,
        "-m",
        "rabbitstream",
        "plugins",
        "--json",
        env={"RABBITSTREAM_DISABLED_PLUGINS": "rot,broken"},
    )
    assert "rot" not in {p["name"] for p in json.loads(blocked.stdout)["plugins"]}
    assert "could not be imported" not in blocked.stderr
    off = _run(
        plugin_venv,
        "-m",
        "rabbitstream",
        "plugins",
        "--json",
        env={"RABBITSTREAM_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert json.loads(off.stdout)["plugins"] == []


def test_duplicate_installed_plugins_error_names_both(plugin_venv: Path, tmp_path: Path) -> None:
    wheel = (plugin_venv.parent / "dup.whl.path").read_text()
    py = str(plugin_venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], check=True)
    try:
        out = _run(plugin_venv, "-m", "rabbitstream", "plugins")
        assert out.returncode != 0
        assert "rabbitstream-rot 0.0.1" in out.stderr and "rabbitstream-rot-copy 0.0.1" in out.stderr
    finally:
        subprocess.run([py, "-m", "pip", "uninstall", "-q", "-y", "rabbitstream-rot-copy"], check=True)


def test_broken_plugin_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Bad:
        @hookimpl
        def rabbitstream_compression_codecs(self) -> list[object]:
            raise RuntimeError("real bug")

    caplog.set_level(logging.WARNING)
    with pytest.raises(RuntimeError, match="real bug"):
        build_registry(autoload=False, plugins=[Bad()])


class _Misspelt:
    @hookimpl
    def rabbitstream_compresion_codecs(self) -> list[_Codec]:  # misspelt: no such hook
        return [_Codec(7, "typo")]


class _WrongArgs:
    @hookimpl
    def rabbitstream_compression_codecs(self, config: object) -> list[_Codec]:  # the spec takes none
        return [_Codec(8, "args")]


def test_invalid_plugins_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """A plugin with a misspelt hook or a hook signature the spec lacks is logged (naming where it
    comes from) and skipped; the valid plugins still make a registry (issue #13, point 5)."""
    caplog.set_level(logging.WARNING, logger="rabbitstream.plugin")
    reg = build_registry(autoload=False, plugins=[_Misspelt(), _WrongArgs(), _PluginA()])
    assert sorted(reg.compression) == [6]
    text = caplog.text
    assert "rabbitstream_compresion_codecs" in text and "_Misspelt" in text
    assert "(registered in code) is invalid and is skipped" in text
    assert [p.name for p in reg.plugins if "_Misspelt" in p.name or "_WrongArgs" in p.name] == []


def test_hookspec_marker_is_private() -> None:
    import rabbitstream.plugin

    assert "hookspec" not in rabbitstream.plugin.__all__
    assert not hasattr(rabbitstream.plugin, "hookspec")


def test_message_codec_contract_helper() -> None:
    from rabbitstream.testing import check_message_codec

    class Upper:
        name = "upper"

        def encode(self, message: str) -> bytes:
            return message.upper().encode()

        def decode(self, data: bytes | memoryview) -> str:
            return bytes(data).decode()

    check_message_codec(Upper(), ["ABC", ""])
    with pytest.raises(AssertionError, match="came back as 'ABC'"):
        check_message_codec(Upper(), ["abc"])


def test_disabled_plugins_env_names_are_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    """``RABBITSTREAM_DISABLED_PLUGINS="zstd, lz4"`` blocks ``lz4`` too (issue #14)."""
    from rabbitstream.plugin._manager import PluginHost

    monkeypatch.setenv("RABBITSTREAM_DISABLED_PLUGINS", "zstd, lz4 ,, gzip")
    host = PluginHost()
    host.load(autoload=False)
    assert [n for n in ("zstd", "lz4", "gzip") if host.pm.is_blocked(n)] == ["zstd", "lz4", "gzip"]
    assert not host.pm.is_blocked("") and not host.pm.is_blocked(" lz4")
