"""The four compression plugins loaded by hand, for the ``tests/`` modules that test them together."""

from __future__ import annotations

import importlib

import pytest
from rabbitstream.plugin import Registry, build_registry

__all__ = ["COMPRESSION_PLUGINS", "compression_registry", "needs_all_compression"]

#: entry-point names of the compression plugins (distributions ``rabbitstream-<name>``)
COMPRESSION_PLUGINS = ("gzip", "snappy", "lz4", "zstd")


def _import(name: str) -> object | None:
    try:
        return importlib.import_module(f"rabbitstream_{name}")
    except ImportError:
        return None


def compression_registry() -> Registry:
    """:returns: a new registry of the compression plugins that import (nothing autoloaded)."""
    plugins = [m for m in map(_import, COMPRESSION_PLUGINS) if m is not None]
    return build_registry(autoload=False, plugins=plugins)


def needs_all_compression(registry: Registry) -> pytest.MarkDecorator:
    """:returns: a mark skipping the test unless ``registry`` holds all four compression codecs."""
    return pytest.mark.skipif(len(registry.compression) < 4, reason="compression plugins not importable")
