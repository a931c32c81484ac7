"""The umbrella's extras are the one table of plugins that core's install hints rely on (issue #13).

Core names the distribution to install for a missing capability by convention only
(``rabbitstream-<name>``, ``pip install 'rabbitstream[<name>]'``): this checks that every plugin of
the repository follows the convention and is an extra of the umbrella.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from rabbitstream.plugin._manager import install_hint

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(ROOT.glob("plugins/*/*/pyproject.toml"))


def _toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        data: dict[str, Any] = tomllib.load(f)
    return data


@pytest.mark.parametrize("pyproject", PLUGINS, ids=lambda p: p.parent.name)
def test_plugin_follows_the_naming_convention_and_is_an_umbrella_extra(pyproject: Path) -> None:
    project = _toml(pyproject)["project"]
    (name,) = project["entry-points"]["rabbitstream"]
    assert project["name"] == f"rabbitstream-{name}"
    extras = _toml(ROOT / "pyproject.toml")["project"]["optional-dependencies"]
    assert f"rabbitstream-{name}~=0.1.0" in extras[name]
    assert install_hint("x", name) == f"rabbitstream-{name} (pip install 'rabbitstream[{name}]')"


def test_compression_codes_hint_their_plugin() -> None:
    assert install_hint("compression", 4) == "rabbitstream-zstd (pip install 'rabbitstream[zstd]')"
    assert install_hint("compression", 9) is None
