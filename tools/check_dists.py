"""Check built wheels and sdists as the package index and ``pip`` see them.

Usage::

    uv build --all-packages -o dist/ && python tools/check_dists.py dist/
    nox -s dists          # the same in a fresh environment

For every archive: the MIT ``LICENSE`` text is inside (wheel: ``*.dist-info/licenses/LICENSE``, sdist: next
to ``PKG-INFO``); the metadata names authors, keywords and project URLs; the description has no relative link
(dead on the index page); every distribution has the same version, ``rabbitstream.__version__``.  The umbrella
``rabbitstream`` sdist holds only its metadata, README, LICENSE and CHANGELOG.  Prints one line per archive;
exits 1 on a problem.
"""

from __future__ import annotations

import email.parser
import re
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELATIVE_LINK = re.compile(r"!?\[[^\]]*\]\((?![a-z][a-z0-9+.-]*:)([^)\s]*)\)")
UMBRELLA_SDIST = {".gitignore", "CHANGELOG.md", "LICENSE", "PKG-INFO", "README.md", "pyproject.toml"}


def _expected_dists() -> int:
    """The umbrella + the uv workspace members (``[tool.uv.workspace] members`` globs: core, plugins, ...)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    members = re.search(r"^\[tool\.uv\.workspace\]\nmembers = \[(.*?)\]", text, re.M | re.S)
    assert members, "no [tool.uv.workspace] members in pyproject.toml"
    globs = re.findall(r'"([^"]+)"', members.group(1))
    return 1 + sum(1 for g in globs for _ in ROOT.glob(f"{g}/pyproject.toml"))


def _version() -> str:
    text = (ROOT / "core" / "src" / "rabbitstream" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    assert match, "no __version__ in rabbitstream/_version.py"
    return match.group(1)


def _read(archive: Path) -> tuple[dict[str, bytes], Message]:
    """(member name without the top directory -> content, core metadata)."""
    files: dict[str, bytes] = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                files[name] = zf.read(name)
        meta_name = next(n for n in files if n.endswith(".dist-info/METADATA"))
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                extracted = tf.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    files[member.name.split("/", 1)[1]] = extracted.read()
        meta_name = "PKG-INFO"
    meta = email.parser.BytesParser().parsebytes(files[meta_name])
    return files, meta


def check(archive: Path, version: str, license_text: bytes) -> list[str]:
    """:returns: the problems found in one wheel or sdist."""
    files, meta = _read(archive)
    problems: list[str] = []
    name = meta["Name"]
    if meta["Version"] != version:
        problems.append(f"version {meta['Version']} != {version}")
    if archive.suffix == ".whl":
        lic = [n for n in files if n.endswith(".dist-info/licenses/LICENSE")]
    else:
        lic = ["LICENSE"]
    if not lic or files.get(lic[0]) != license_text:
        problems.append("no LICENSE with the MIT text")
    if meta["License-Expression"] != "MIT" or "LICENSE" not in (meta.get_all("License-File") or []):
        problems.append("License-Expression / License-File missing")
    problems += [f"no {field}" for field in ("Author", "Keywords") if not meta[field]]
    urls = {u.split(",", 1)[0] for u in meta.get_all("Project-URL") or []}
    if not {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= urls:
        problems.append(f"project URLs: {sorted(urls)}")
    if not any(c.startswith("Development Status") for c in meta.get_all("Classifier") or []):
        problems.append("no Development Status classifier")
    links = RELATIVE_LINK.findall(str(meta.get_payload()))
    if links:
        problems.append(f"relative links in the description: {links}")
    if name == "rabbitstream" and archive.suffix != ".whl" and set(files) != UMBRELLA_SDIST:
        problems.append(f"umbrella sdist holds {sorted(set(files) - UMBRELLA_SDIST)}")
    return problems


def main(argv: list[str]) -> int:
    """Check every ``*.whl`` and ``*.tar.gz`` in the directory given."""
    if len(argv) != 1:
        print(__doc__)
        return 2
    archives = sorted(Path(argv[0]).glob("*.whl")) + sorted(Path(argv[0]).glob("*.tar.gz"))
    version = _version()
    license_text = (ROOT / "LICENSE").read_bytes()
    failed = False
    expected = _expected_dists()
    if len(archives) != 2 * expected:
        print(f"expected {2 * expected} archives (wheel + sdist per distribution), found {len(archives)}")
        failed = True
    for archive in archives:
        problems = check(archive, version, license_text)
        failed |= bool(problems)
        files, _ = _read(archive)
        status = "FAIL" if problems else "ok  "
        print(f"{status} {archive.name:45} {len(files):3} files  {'; '.join(problems)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
