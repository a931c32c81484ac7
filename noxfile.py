# /// script
# dependencies = ["nox>=2025.2.9"]
# ///
"""Sessions for the rabbitstream monorepo.

``nox -l`` lists them.  The Python versions come from the core's classifiers and
the plugin list from ``plugins/*/*/pyproject.toml``: no hand-kept matrix. An
interpreter of the matrix that is missing fails the run (never a quiet skip):
``./run test`` first provides them with ``tools/pythons.py`` (the host's, else
Debian unstable's from the sid chroot, through ``<cache>/pythons/bin``).

- ``lint``, ``typecheck``: ruff and ``mypy --strict`` over every distribution.
- ``core``: the core alone, no plugin installed (proves core works with nothing
  discovered and that missing capabilities name what to install).
- ``plugin``: core + one plugin, that plugin's own tests (contract kit included).
- ``tests``: everything installed, every unit test (core, ``cli/``, plugins, ``tests/``), on Python 3.11-3.15.
- ``integration``: tests against a real RabbitMQ started by ``tools/broker.py``:
  the newest Python on 4.0 (with the TLS node), the oldest on 4.3.
- ``perf``: the main job (``rabbitstream perf`` from ``cli/`` against the local broker).
- ``template``: ``_template/plugin`` rendered into a real plugin, its tests, ruff and mypy run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import pythons  # noqa: E402

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True  # a missing Python fails its session, loudly
nox.options.download_python = "never"  # interpreters come from the host or tools/pythons.py, not downloads
nox.options.sessions = ["lint", "typecheck", "core", "plugin", "tests", "template"]

PYTHONS = nox.project.python_versions(nox.project.load_toml(ROOT / "core" / "pyproject.toml"))
DEFAULT_PYTHON = PYTHONS[0]  # the oldest supported: static checks and single-version sessions
CHROOT_PYTHONS = pythons.bin_dir()  # launchers of the chroot's interpreters (tools/pythons.py)
if CHROOT_PYTHONS.is_dir():  # after the host's own interpreters
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), str(CHROOT_PYTHONS)])
_MISSING = [v for v in PYTHONS if not (CHROOT_PYTHONS / f"python{v}").exists() and not pythons.host_python(v)]
if _MISSING:
    print(
        f"nox > Python {', '.join(_MISSING)} of the matrix not found: their sessions will fail. "
        "`./run test` installs them (`python3 tools/pythons.py ensure`: Debian sid chroot, root).",
        file=sys.stderr,
    )
PLUGINS = sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("plugins/*/*/pyproject.toml"))
TEST_DEPS = ["pytest>=8", "pytest-asyncio>=0.24", "pytest-timeout>=2.3", "hypothesis>=6.100"]
INTEROP_DEPS = ["pika>=1.3", "cramjam>=2.8", "mmh3>=4", "python-snappy>=0.7", "rstream==1.1.1"]
INTEROP_DEPS += ["opentelemetry-sdk>=1.20"]  # in-memory exporters for rabbitstream-opentelemetry's tests
PYTEST = ["pytest", "--durations=10"]


def _editable(*paths: str) -> list[str]:
    out: list[str] = []
    for p in paths:
        out += ["-e", p]
    return out


def _all_distributions() -> list[str]:
    return _editable("core", "cli", *PLUGINS)


def _wheel_cache(session: nox.Session) -> None:
    """Keep the uv cache of a chroot interpreter beside the chroot (``<cache>/pythons-uv``).

    Packages without a wheel for the newest Python (lz4 and zstandard on 3.15) are built from their
    sdists once (about 3 minutes on 2 cores), then installed from this cache; it lives and goes with
    the chroot, whose compiler and headers built them.
    """
    location = getattr(session.virtualenv, "location", None)
    cfg = Path(location or "", "pyvenv.cfg")
    if location and cfg.is_file() and f"home = {CHROOT_PYTHONS}\n" in cfg.read_text():
        session.env["UV_CACHE_DIR"] = str(pythons.uv_cache_dir())


# ----------------------------------------------------------------- static checks


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every distribution's src and tests, the tools, benchmarks and noxfile.py."""
    session.install("mypy>=1.11", "nox>=2025.2.9", *TEST_DEPS, *INTEROP_DEPS, *_all_distributions())
    srcs = ["core/src", "cli/src", *(f"{p}/src" for p in PLUGINS)]
    session.run("mypy", *srcs)
    session.run("mypy", "tools", "noxfile.py", "benchmarks", "core/tests", "tests")
    session.run("mypy", "cli/tests")
    for p in PLUGINS:  # one run each: every plugin has its own tests/conftest.py
        session.run("mypy", f"{p}/tests")


# ----------------------------------------------------------------- unit tests


@nox.session(python=DEFAULT_PYTHON)
def core(session: nox.Session) -> None:
    """The core alone: no plugin installed."""
    session.install(*TEST_DEPS, "-e", "core")
    session.run(*PYTEST, "core/tests", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
@nox.parametrize("plugin", PLUGINS, ids=[p.removeprefix("plugins/") for p in PLUGINS])
def plugin(session: nox.Session, plugin: str) -> None:
    """Core + exactly one plugin, running that plugin's own tests."""
    session.install(*TEST_DEPS, *INTEROP_DEPS, "-e", "core", "-e", plugin)
    session.run(*PYTEST, f"{plugin}/tests", "-m", "not integration", *session.posargs)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Every distribution installed; all unit tests (no broker)."""
    _wheel_cache(session)
    session.install(*TEST_DEPS, *INTEROP_DEPS, *_all_distributions())
    session.run(
        *PYTEST,
        "core/tests",
        "cli/tests",
        *(f"{p}/tests" for p in PLUGINS),
        "tests",
        "-m",
        "not integration",
        *session.posargs,
    )


# ----------------------------------------------------------------- against a real broker


# The newest Python against 4.0, whose TLS node runs the TLS/EXTERNAL tests (ssl changes between Pythons),
# the oldest against 4.3: both Pythons and both brokers in two sessions (the CI budget has no room for four).
INTEGRATION = [(PYTHONS[-1], "4.0"), (PYTHONS[0], "4.3")]


@nox.session(default=False, tags=["broker"])
@nox.parametrize(("python", "broker"), INTEGRATION)
def integration(session: nox.Session, broker: str) -> None:
    """Integration tests against a real RabbitMQ started by tools/broker.py (newest and oldest Python)."""
    _wheel_cache(session)
    # pip + hatchling: tests install throwaway plugin distributions with pip
    session.install(*TEST_DEPS, *INTEROP_DEPS, "pip", "hatchling", *_all_distributions(), "-e", ".")
    env = {"RABBITSTREAM_TEST_BROKER_VERSION": broker}
    # the TLS and OAuth 2.0 nodes run beside the 4.0 main node only
    extra = ["--tls", "--oauth"] if broker == "4.0" else []
    # the launcher runs on nox's (host) interpreter: no node starts in a chroot interpreter's namespace
    session.run(sys.executable, "tools/broker.py", "up", "--version", broker, *extra, external=True)
    session.run(*PYTEST, "tests", "-m", "integration and not slow", *session.posargs, env=env)


@nox.session(python=DEFAULT_PYTHON, default=False, tags=["broker"])
def cluster(session: nox.Session) -> None:
    """Cluster, load-balancer and fault tests (3 nodes + HAProxy)."""
    session.install(*TEST_DEPS, *INTEROP_DEPS, *_all_distributions(), "-e", ".")
    session.run("python", "tools/broker.py", "up", "--cluster", "--lb", external=True)
    session.run(*PYTEST, "tests", "-m", "slow", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, default=False)
def perf(session: nox.Session) -> None:
    """The main job: a ~10 s publish/consume run against the local broker."""
    session.install(*_all_distributions(), "-e", ".")
    session.run("python", "tools/broker.py", "up", external=True)
    session.run("rabbitstream", "perf", *(session.posargs or ["--time", "10"]))


@nox.session(python=DEFAULT_PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Issue #17's user-shaped workloads side by side with rstream 1.1.1 (from PyPI) and the broker's ceiling.

    ``./run bench`` = ``benchmarks/bench_workloads.py`` (1,000,000 messages, 3 interleaved rounds, medians);
    arguments go to the script, e.g. ``./run bench --count 200000 --only p1,codec``.
    """
    session.install(*_all_distributions(), "rstream==1.1.1")
    session.run("python", "tools/broker.py", "up", external=True)
    session.run("python", "benchmarks/bench_workloads.py", *session.posargs)


# ----------------------------------------------------------------- documentation site


@nox.session(python=DEFAULT_PYTHON)
def docs(session: nox.Session) -> None:
    """The docs site (mkdocs-material + mkdocstrings, ``mkdocs.yml``) built in strict mode into ``site/``.

    Fails on a broken link, a reference to a name that does not exist or an unparsable docstring (mkdocs
    ``--strict``), and on a public name without a docstring or missing from ``docs/reference/``
    (``tests/test_api_docs.py``).
    """
    groups = nox.project.dependency_groups(nox.project.load_toml(ROOT / "pyproject.toml"), "docs")
    session.install(*groups, *TEST_DEPS, "-e", "core", "-e", "plugins/codecs/amqp")
    session.run("mkdocs", "build", "--strict", "--clean", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})
    session.run(*PYTEST, "tests/test_api_docs.py", "-p", "no:cacheprovider")


# ----------------------------------------------------------------- wheels and sdists, as the index sees them


@nox.session(python=DEFAULT_PYTHON, default=False)
def dists(session: nox.Session) -> None:
    """Build every wheel and sdist and check them (tools/check_dists.py, twine check --strict)."""
    session.install("uv>=0.4", "twine>=6")
    out = Path(session.create_tmp()) / "dist"
    session.run("python", "-c", f"import shutil; shutil.rmtree({str(out)!r}, ignore_errors=True)")
    session.run("uv", "build", "--all-packages", "--quiet", "-o", str(out))
    session.run("python", "tools/check_dists.py", str(out))
    session.run(
        "twine", "check", "--strict", *(str(p) for p in sorted(out.glob("*")) if p.suffix in (".whl", ".gz"))
    )


# ----------------------------------------------------------------- plugin template


@nox.session(python=DEFAULT_PYTHON)
def template(session: nox.Session) -> None:
    """Render ``_template/plugin`` as a real plugin, install it beside core, run its tests, ruff and mypy."""
    import shutil

    out = Path(session.create_tmp()) / "rendered"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(ROOT / "_template" / "plugin", out)
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".md"):
            text = path.read_text(encoding="utf-8")
            path.write_text(text.replace("<REPLACE ME>", "tmplcheck").replace("REPLACE_ME", "tmplcheck"))
    for path in sorted(out.rglob("*REPLACE_ME*"), key=lambda p: -len(p.parts)):  # deepest first
        path.rename(path.with_name(path.name.replace("REPLACE_ME", "tmplcheck")))
    session.install(*TEST_DEPS, "ruff>=0.6", "mypy>=1.11", "-e", "core", "-e", str(out))
    session.run("ruff", "check", "--no-cache", str(out))
    session.run("mypy", "--strict", str(out / "src"), str(out / "tests"))
    session.run(*PYTEST, str(out / "tests"), "-p", "no:cacheprovider", *session.posargs)
