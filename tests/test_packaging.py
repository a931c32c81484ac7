"""Package metadata of every distribution, read from the sources.

What someone who installs from the package index sees: the MIT text in every wheel and sdist, project URLs,
authors, keywords and classifiers, a description whose links work on the index page, one version for all.
``tools/check_dists.py`` (nox session ``dists``) checks the same in the built archives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import rabbitstream
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parent.parent
_ROOT_TOML = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: every distribution: the umbrella and the uv workspace members (core, plugins, ...)
DISTS = [
    ROOT,
    *sorted(
        p.parent
        for glob in _ROOT_TOML["tool"]["uv"]["workspace"]["members"]
        for p in ROOT.glob(f"{glob}/pyproject.toml")
    ),
]
IDS = [str(d.relative_to(ROOT)) for d in DISTS]
VERSION_FILE = ROOT / "core" / "src" / "rabbitstream" / "_version.py"
#: a Markdown link or image whose target has no scheme: dead on the package index page
RELATIVE_LINK = re.compile(r"!?\[[^\]]*\]\((?![a-z][a-z0-9+.-]*:)([^)\s]*)\)")


def _project(dist: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((dist / "pyproject.toml").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("dist", DISTS, ids=IDS)
def test_license_file_in_every_distribution(dist: Path) -> None:
    """hatchling puts ``LICENSE`` (default license-files glob) in the wheel's dist-info and in the sdist."""
    assert _project(dist)["project"]["license"] == "MIT"
    assert (dist / "LICENSE").read_text(encoding="utf-8") == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("dist", DISTS, ids=IDS)
def test_version_written_in_one_place(dist: Path) -> None:
    data = _project(dist)
    assert "version" not in data["project"]
    assert data["project"]["dynamic"] == ["version"]
    assert (dist / data["tool"]["hatch"]["version"]["path"]).resolve() == VERSION_FILE


@pytest.mark.parametrize("dist", DISTS, ids=IDS)
def test_internal_dependencies_admit_the_version(dist: Path) -> None:
    project = _project(dist)["project"]
    reqs = [*project.get("dependencies", [])]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    for req in map(Requirement, reqs):
        if req.name.startswith("rabbitstream-"):
            assert SpecifierSet(str(req.specifier)).contains(rabbitstream.__version__), str(req)


@pytest.mark.parametrize("dist", DISTS, ids=IDS)
def test_index_metadata(dist: Path) -> None:
    project = _project(dist)["project"]
    assert project["authors"]
    assert {"rabbitmq", "streams", "asyncio"} <= set(project["keywords"])
    assert set(project["urls"]) >= {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(u.startswith("https://") for u in project["urls"].values())
    prefixes = {c.split(" :: ")[0] for c in project["classifiers"]}
    wanted = {"Development Status", "Intended Audience", "Operating System", "Topic", "Typing", "Framework"}
    assert wanted <= prefixes
    # PEP 639: the licence is the SPDX expression; a ``License ::`` classifier beside it is an error
    assert not any(c.startswith("License ::") for c in project["classifiers"])


@pytest.mark.parametrize("dist", DISTS, ids=IDS)
def test_description_links_work_on_the_index(dist: Path) -> None:
    readme = dist / _project(dist)["project"]["readme"]
    assert RELATIVE_LINK.findall(readme.read_text(encoding="utf-8")) == []


def test_relative_link_pattern() -> None:
    text = (
        "[a](../README.md) [b](docs/x.md#y) ![c](img.png) [d](https://x.org/a) [e](mailto:a@b) [f](#anchor)"
    )
    assert RELATIVE_LINK.findall(text) == ["../README.md", "docs/x.md#y", "img.png", "#anchor"]


def test_umbrella_sdist_holds_only_what_it_needs() -> None:
    """The umbrella has no code: its sdist is metadata, README, LICENSE and CHANGELOG, not the monorepo."""
    hatch = _project(ROOT)["tool"]["hatch"]["build"]["targets"]
    assert hatch["sdist"]["only-include"] == ["README.md", "LICENSE", "CHANGELOG.md"]
    assert hatch["wheel"]["bypass-selection"] is True
