# /// script
# dependencies = ["nox>=2025.2.9"]
# ///
"""Sessions for the rabbitstream monorepo.

``nox -l`` lists them.  The Python versions come from the core's classifiers and
the plugin list from ``plugins/*/*/pyproject.toml``: no hand-kept matrix.

- ``lint``, ``typecheck``: ruff and ``mypy --strict`` over every distribution.
- ``core``: the core alone, no plugin installed (proves core works with nothing
  discovered and that missing capabilities name what to install).
- ``plugin``: core + one plugin, that plugin's own tests (contract kit included).
- ``tests``: everything installed, every unit test (core, ``cli/``, plugins, ``tests/``), on Python 3.10-3.13.
- ``integration``: tests against a real RabbitMQ started by ``tools/broker.py``,
  parametrized on the broker version (4.0 and 4.3).
- ``perf``: the main job (``rabbitstream perf`` from ``cli/`` against the local broker).
- ``template``: ``_template/plugin`` rendered into a real plugin, its tests, ruff and mypy run.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["lint", "typecheck", "core", "plugin", "tests", "template"]

ROOT = Path(__file__).parent
PYTHONS = nox.project.python_versions(nox.project.load_toml(ROOT / "core" / "pyproject.toml"))
DEFAULT_PYTHON = "3.11"
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


@nox.session(python=DEFAULT_PYTHON, default=False, tags=["broker"])
@nox.parametrize("broker", ["4.0", "4.3"])
def integration(session: nox.Session, broker: str) -> None:
    """Integration tests against a real RabbitMQ started by tools/broker.py."""
    # pip + hatchling: tests install throwaway plugin distributions with pip
    session.install(*TEST_DEPS, *INTEROP_DEPS, "pip", "hatchling", *_all_distributions(), "-e", ".")
    env = {"RABBITSTREAM_TEST_BROKER_VERSION": broker}
    extra = ["--tls"] if broker == "4.0" else []  # the TLS node runs beside the 4.0 main node only
    session.run("python", "tools/broker.py", "up", "--version", broker, *extra, external=True)
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
