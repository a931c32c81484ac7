"""The chunk parser gets its codec registry handed in (issue #13 point 5).

The sans-IO layer does not reach for the process-wide registry on its own: the client passes its
connection's registry to :func:`parse_chunk`; only a direct call without one falls back to the
process registry, fetched when a compressed sub-entry is met (as before).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import rabbitstream.plugin
from rabbitstream.plugin import Registry
from rabbitstream.protocol._chunk import parse_chunk
from rabbitstream.testing import build_chunk
from test_chunk import CODEC, REG, msgs_of

PROTOCOL = Path(__file__).resolve().parents[1] / "src" / "rabbitstream" / "protocol"


def _uses_of_get_registry(path: Path) -> list[str]:
    """Where ``get_registry`` is named in ``path``: the enclosing class (or ``<module>``) per use."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node: ast.AST, owner: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.ClassDef) else owner
            if isinstance(child, ast.Name) and child.id == "get_registry":
                found.append(owner)
            if isinstance(child, ast.alias) and child.name == "get_registry":
                found.append(owner)
            walk(child, name)

    walk(tree, "<module>")
    return found


def test_protocol_layer_names_the_process_registry_only_in_the_default_lookup() -> None:
    uses = {p.name: _uses_of_get_registry(p) for p in sorted(PROTOCOL.glob("*.py"))}
    assert {name: owners for name, owners in uses.items() if owners} == {
        "_chunk.py": ["_ProcessCodecs", "_ProcessCodecs"]  # its lazy import and call
    }


def _compressed() -> tuple[bytes, list[bytes]]:
    msgs = msgs_of(30, 20)
    return build_chunk(msgs, sub_entries=10, codec=CODEC), msgs


def _no_process_registry() -> Registry:
    raise AssertionError("the process registry was consulted")


def test_the_registry_handed_in_decodes_without_the_process_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rabbitstream.plugin, "get_registry", _no_process_registry)
    raw, msgs = _compressed()
    assert parse_chunk(raw, registry=REG).payloads() == msgs
    assert [bytes(m) for m in parse_chunk(raw, registry=REG).messages()] == msgs
    assert [bytes(m) for _, m in parse_chunk(raw, registry=REG).records_from(15)] == msgs[15:]


def test_without_a_registry_the_process_registry_is_fetched_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def process_registry() -> Registry:
        calls.append(1)
        return REG

    monkeypatch.setattr(rabbitstream.plugin, "get_registry", process_registry)
    plain = msgs_of(20, 10)
    assert parse_chunk(build_chunk(plain)).payloads() == plain
    assert calls == []  # no compressed sub-entry: never fetched
    raw, msgs = _compressed()
    chunk = parse_chunk(raw)
    assert calls == []  # not at parse time either
    assert chunk.payloads() == msgs
    assert calls  # fetched when the first compressed sub-entry was met


def test_the_default_lookup_is_the_process_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from rabbitstream.protocol._chunk import PROCESS_CODECS

    monkeypatch.setattr(rabbitstream.plugin, "get_registry", lambda: REG)
    assert PROCESS_CODECS.compression_codec(5) is CODEC
