#!/usr/bin/env python3
"""Python interpreters for the test matrix, including those this host lacks (stdlib only).

Usage (``./run test`` calls it; see ``docs/broker.md``)::

    python tools/pythons.py ensure [3.11 3.15 ...]   # default: every version in core's classifiers
    python tools/pythons.py bin                       # the directory of the chroot interpreters

A version is taken from the host when ``pythonX.Y`` is on ``PATH`` or installed by pyenv. Otherwise it is
installed from Debian unstable into the sid chroot that the broker launcher builds for RabbitMQ 4.3
(``${RABBITSTREAM_BROKER_CACHE:-/var/cache/rabbitstream}/sid``, with ``gcc`` and ``pythonX.Y-dev`` so that
packages without a wheel for that version build from their sdist), and a launcher script
``<cache>/pythons/bin/pythonX.Y`` makes it usable from the host like any other interpreter: nox, uv and
virtualenv create venvs with it, and the venvs' scripts work.

The launcher runs the chroot's interpreter in a private mount namespace (``unshare --mount``) in which the
chroot's ``/usr`` is mounted over ``/usr`` and over ``<cache>/pythons``. Everything else is the host's (work
tree, ``/tmp``, ``/root``, ``/etc``, ``/proc``), so paths mean the same inside and out, and the mounts vanish
with the last process of the namespace: nothing to clean up, even after ``kill -9``. Inside the namespace
``<cache>/pythons/bin/pythonX.Y`` *is* the chroot's binary, so a venv's ``bin/python`` (a symlink to it)
needs no second namespace when the tests start subprocesses. Needs root, like the broker chroots.

A version that can be had neither way is an error that names what to do: the matrix never shrinks quietly.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a script: make ``tools`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import _chroot
from tools._chroot import BrokerError

__all__ = [
    "PythonsError",
    "bin_dir",
    "chroot_packages",
    "ensure",
    "host_python",
    "launcher_script",
    "main",
    "matrix_versions",
    "uv_cache_dir",
]

ROOT = Path(__file__).resolve().parent.parent
SUITE = "sid"
_CLASSIFIER = re.compile(r"Programming Language :: Python :: (3\.\d+)\"")


class PythonsError(RuntimeError):
    """An interpreter of the matrix cannot be provided; the message says why and what to do."""


def matrix_versions(pyproject: Path = ROOT / "core" / "pyproject.toml") -> list[str]:
    """The ``X.Y`` versions named by the classifiers of ``pyproject`` (the nox matrix), oldest first."""
    found = set(_CLASSIFIER.findall(pyproject.read_text()))
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def bin_dir() -> Path:
    """Host directory of the launcher scripts (``<cache>/pythons/bin``)."""
    return _chroot.cache_dir() / "pythons" / "bin"


def uv_cache_dir() -> Path:
    """uv cache of the chroot interpreters' venvs, with the wheels built from sdists (``<cache>/pythons-uv``).

    Not under ``<cache>/pythons``, which the chroot's ``/usr`` hides inside the namespace.
    """
    return _chroot.cache_dir() / "pythons-uv"


def host_python(version: str, path: str | None = None) -> str | None:
    """The host's own ``pythonX.Y`` (``PATH`` or pyenv), ignoring this tool's launchers; else ``None``."""
    ours = str(bin_dir())
    dirs = [d for d in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep) if d]
    found = shutil.which(f"python{version}", path=os.pathsep.join(d for d in dirs if d != ours))
    if found and _works(found):
        return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pattern = f"versions/{version}.*/bin/python{version}"
    installed = {p.parent.parent.name: p for p in pyenv_root.glob(pattern)}
    patches = [name for name in installed if re.fullmatch(rf"{re.escape(version)}\.\d+", name)]
    if patches:
        return str(installed[max(patches, key=lambda n: int(n.rsplit(".", 1)[1]))])
    return None


def _works(exe: str) -> bool:
    """A pyenv shim exists for every installed version but fails outside ``PYENV_VERSION``: try it."""
    try:
        return _chroot.run([exe, "-c", "pass"], timeout=60, check=False).returncode == 0
    except BrokerError:
        return False


def chroot_packages(version: str) -> list[str]:
    """Debian packages installed in the chroot for ``version``: ``venv`` (``ensurepip``, used by tests),
    headers and a compiler for the packages that publish no wheel for that version, and the ``lz4`` and
    ``zstd`` command-line tools the compression plugins' interoperability tests run."""
    python = [f"python{version}", f"python{version}-venv", f"python{version}-dev"]
    return [*python, "gcc", "libc6-dev", "lz4", "zstd"]


def _installed(root: Path, package: str) -> bool:
    info = root / "var/lib/dpkg/info"
    return (info / f"{package}.list").exists() or any(info.glob(f"{package}:*.list"))


def launcher_script(version: str, root: Path, prefix: Path) -> str:
    """The host-side ``pythonX.Y`` script running the chroot's interpreter (see the module docstring)."""
    return f"""#!/bin/bash
# Python {version} from the Debian {SUITE} chroot {root}, usable on this host.
# Written by tools/pythons.py (rabbitstream); do not edit. In a private mount namespace the chroot's /usr is
# mounted over /usr and over {prefix}, then "$0" is executed again: there it is the chroot's python{version}.
# Every other path is the host's; the mounts disappear with the namespace.
exec unshare --mount --propagation private -- /bin/bash -c '
  for pair in "$1/usr:/usr" "$1/usr:$2" "$1/etc/ld.so.cache:/etc/ld.so.cache" \\
              "$1/etc/alternatives:/etc/alternatives"; do
    if ! mount --bind "${{pair%%:*}}" "${{pair#*:}}"; then
      echo "python{version} (rabbitstream chroot interpreter): cannot mount ${{pair%%:*}} (needs root)" >&2
      exit 127
    fi
  done
  shift 2
  exec "$0" "$@"' "$0" '{root}' '{prefix}' "$@"
"""


def _install_in_chroot(versions: Sequence[str]) -> Path:
    """Install ``versions`` in the sid chroot (built first when missing), in one apt run."""
    from tools.broker import _lock  # the launcher's lock: no apt run while it builds or starts a node

    packages = [p for v in versions for p in chroot_packages(v)]
    root = _chroot.chroot_path(SUITE)
    if (root / "usr/sbin/rabbitmq-server").exists() and all(_installed(root, p) for p in packages):
        return root  # the usual case: nothing to do, no wait for the launcher's lock
    try:
        with _lock():
            root = _chroot.ensure_chroot(SUITE)
            missing = list(dict.fromkeys(p for p in packages if not _installed(root, p)))
            if missing:
                print(f"[pythons] installing in the {SUITE} chroot: {' '.join(missing)}", file=sys.stderr)
                _chroot.apt_install(root, SUITE, missing)
    except BrokerError as exc:
        names = ", ".join(versions)
        raise PythonsError(
            f"Python {names} is not installed on this host, and it cannot be installed from Debian {SUITE} "
            f"into {_chroot.chroot_path(SUITE)}: {exc}\n"
            f"Install it (for example `pyenv install {versions[0]}`) and run again."
        ) from exc
    for version in versions:
        if not (root / f"usr/bin/python{version}").exists():
            raise PythonsError(f"Debian {SUITE} has no python{version}: install Python {version} here")
    return root


def ensure(versions: Sequence[str], *, use_chroot: bool = True) -> dict[str, str]:
    """Make every version runnable; :returns: version -> interpreter path. :raises PythonsError:"""
    out: dict[str, str] = {}
    for version in versions:
        found = host_python(version)
        if found:
            out[version] = found
    lacking = [v for v in versions if v not in out]
    if lacking and not use_chroot:
        raise PythonsError(
            f"Python {', '.join(lacking)} (in the test matrix) is not installed: install it "
            f"(pyenv install {lacking[0]}), or run `python3 tools/pythons.py ensure` as root on a "
            f"Debian/Ubuntu host to get it from a Debian {SUITE} chroot"
        )
    if lacking:
        root = _install_in_chroot(lacking)
        for version in lacking:
            launcher = bin_dir() / f"python{version}"
            text = launcher_script(version, root, bin_dir().parent)
            launcher.parent.mkdir(parents=True, exist_ok=True)
            if not launcher.exists() or launcher.read_text() != text:
                launcher.write_text(text)
                launcher.chmod(0o755)
            out[version] = str(launcher)
    return {v: out[v] for v in versions}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/pythons.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_ensure = sub.add_parser("ensure", help="provide every interpreter of the matrix (or those named)")
    p_ensure.add_argument("versions", nargs="*", help="X.Y versions (default: core's classifiers)")
    p_ensure.add_argument("--no-chroot", action="store_true", help="host interpreters only")
    sub.add_parser("bin", help="print the directory of the chroot interpreters' launchers")
    a = parser.parse_args(argv)
    if a.cmd == "bin":
        print(bin_dir())
        return 0
    try:
        found = ensure(a.versions or matrix_versions(), use_chroot=not a.no_chroot)
    except PythonsError as exc:
        print(f"[pythons] error: {exc}", file=sys.stderr)
        return 1
    for version, exe in found.items():
        print(f"[pythons] {version}: {exe}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
