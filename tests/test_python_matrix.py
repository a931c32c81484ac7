"""The supported Python versions: one decision, stated alike by every distribution, the nox matrix and README.

Also ``tools/pythons.py``, which provides the matrix's interpreters: a version it cannot provide is an error
that says what to do, never a quietly smaller matrix.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import pythons  # noqa: E402

MATRIX = pythons.matrix_versions()
PYPROJECTS = [
    ROOT / "pyproject.toml",
    ROOT / "core" / "pyproject.toml",
    *sorted(ROOT.glob("plugins/*/*/pyproject.toml")),
    ROOT / "_template" / "plugin" / "pyproject.toml",
]


def _declared(path: Path) -> tuple[list[str], str]:
    """(classifier versions, requires-python); regexes, not tomllib: mypy checks for 3.10 syntax still."""
    found = re.search(r'^requires-python = "([^"]*)"$', path.read_text(), re.MULTILINE)
    return pythons.matrix_versions(path), found.group(1) if found else ""


def test_matrix_is_311_to_315() -> None:
    """3.10 is dropped (end of life October 2026); 3.14 and 3.15 are in."""
    assert MATRIX == ["3.11", "3.12", "3.13", "3.14", "3.15"]


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_every_distribution_declares_the_matrix(pyproject: Path) -> None:
    versions, requires = _declared(pyproject)
    assert versions == MATRIX
    assert requires == f">={MATRIX[0]}"


def test_readme_and_changelog_state_the_range() -> None:
    span = f"{MATRIX[0]}-{MATRIX[-1]}"
    assert f"Python {span}" in (ROOT / "README.md").read_text()
    assert span in (ROOT / "CHANGELOG.md").read_text().split("\n## ", 2)[1]  # the newest section


def _nox_option(name: str) -> object:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == f"nox.options.{name}":
            return ast.literal_eval(node.value)
    raise AssertionError(f"noxfile.py does not set nox.options.{name}")


def test_missing_interpreter_fails_the_nox_run() -> None:
    assert _nox_option("error_on_missing_interpreters") is True


def test_unobtainable_version_is_an_error_naming_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(pythons.PythonsError, match=r"Python 3\.99 .*not installed.*pyenv install 3\.99"):
        pythons.ensure(["3.99"], use_chroot=False)
    assert pythons.main(["ensure", "--no-chroot", "3.99"]) == 1
    assert "error: Python 3.99" in capsys.readouterr().err


def test_running_interpreter_is_found() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    assert pythons.host_python(version, path=path) is not None


def test_launcher_script_is_valid_bash() -> None:
    text = pythons.launcher_script("3.15", Path("/var/cache/x/sid"), Path("/var/cache/x/pythons"))
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    assert "unshare --mount --propagation private" in text


# inside a launcher's namespace the directory is the chroot's /usr/bin: only pythonX.Y
_BIN = pythons.bin_dir()
LAUNCHERS = sorted(p for p in _BIN.glob("python3.*") if re.fullmatch(r"python3\.\d+", p.name))


@pytest.mark.skipif(not LAUNCHERS, reason="no chroot interpreter on this machine (tools/pythons.py ensure)")
@pytest.mark.parametrize("launcher", LAUNCHERS, ids=lambda p: p.name)
def test_chroot_interpreter_runs_with_headers(launcher: Path) -> None:
    """The launcher gives the chroot's interpreter, with the headers sdist builds need, at host paths."""
    code = (
        "import os, sys, sysconfig; print('%d.%d' % sys.version_info[:2]); "
        "print(os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))); "
        "print(os.getcwd())"
    )
    mounted = os.path.ismount(_BIN.parent)  # True only inside a launcher's namespace
    out = subprocess.run([str(launcher), "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == [launcher.name.removeprefix("python"), "True", str(ROOT)]
    assert os.path.ismount(_BIN.parent) is mounted  # its mounts stayed in its own namespace
