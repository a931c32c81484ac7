"""Debian chroots holding RabbitMQ (helper of ``tools/broker.py``; stdlib only, run as root).

A chroot per Debian suite lives in ``${RABBITSTREAM_BROKER_CACHE:-/var/cache/rabbitstream}/<suite>``; it is
built by ``debootstrap --variant=minbase`` into a temporary directory and renamed when complete, so an
interrupted build is never mistaken for a cache. The Debian mirror is read at run time from the host's apt
configuration (or ``RABBITSTREAM_DEBIAN_MIRROR``) and is never written into any file: the chroot's
``sources.list`` is emptied and apt gets the source line through a pipe; apt lists are deleted after use.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "BrokerError",
    "apt_install",
    "cache_dir",
    "chroot_path",
    "debian_mirror",
    "ensure_chroot",
    "inroot",
    "mount_proc",
    "processes_in",
    "run",
    "umount_proc",
]

PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
SUITE_OPTS: dict[str, list[str]] = {"sid": ["-o", "Acquire::Check-Valid-Until=false"]}
_NEEDED_BYTES = 1_500_000_000
_SOURCES_NOTE = "# The Debian mirror is supplied at run time by tools/broker.py (never stored here).\n"
MAIN_CONF = "stream.advertised_host = localhost\nloopback_users = none\n"
MAIN_PLUGINS = ["rabbitmq_stream", "rabbitmq_stream_management", "rabbitmq_management"]


class BrokerError(RuntimeError):
    """The launcher cannot provide the requested broker; the message says why and what to do."""


def cache_dir() -> Path:
    """``$RABBITSTREAM_BROKER_CACHE`` or ``/var/cache/rabbitstream``."""
    return Path(os.environ.get("RABBITSTREAM_BROKER_CACHE") or "/var/cache/rabbitstream")


def chroot_path(suite: str) -> Path:
    """Host path of the chroot of ``suite``."""
    return cache_dir() / suite


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
    check: bool = True,
    shown: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; :raises BrokerError: on failure (with the output's tail).

    :param shown: the command as shown in error messages (default ``cmd``).
    """
    what = " ".join((shown or cmd)[:12])
    try:
        proc = subprocess.run(
            list(cmd),
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BrokerError(f"command not found: {cmd[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"timed out after {timeout:.0f}s: {what}") from exc
    if check and proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        if "No space left on device" in tail:
            raise BrokerError(f"disk full while running {cmd[0]}: free space in {cache_dir()}")
        raise BrokerError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


def inroot(
    root: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` inside the chroot with a clean environment (plus ``env``)."""
    extra = [f"{k}={v}" for k, v in (env or {}).items()]
    cmd = ["chroot", str(root), "/usr/bin/env", "-i", PATH, "HOME=/root", *extra, *args]
    return run(cmd, timeout=timeout, check=check, shown=["chroot", str(root), *args])


def mount_proc(root: Path) -> None:
    """Mount ``proc`` on ``root/proc`` unless already mounted."""
    if not os.path.ismount(root / "proc"):
        run(["mount", "-t", "proc", "proc", str(root / "proc")])


def processes_in(root: Path) -> list[int]:
    """Pids of processes whose root directory is ``root``."""
    target = str(root.resolve())
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/root") == target:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def umount_proc(root: Path) -> bool:
    """Unmount ``root/proc`` if mounted and no process runs in the chroot. :returns: whether unmounted."""
    if os.path.ismount(root / "proc") and not processes_in(root):
        run(["umount", str(root / "proc")], check=False)
        return not os.path.ismount(root / "proc")
    return False


# ---------------------------------------------------------------------------------------------- mirror
def _os_release() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key] = value.strip().strip('"')
    except OSError:
        pass
    return info


def _apt_uris() -> list[str]:
    uris: list[str] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
                continue
            uris.extend(fields.get("uris", "").split())
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words = words[1:]
                words = words[1:]
            if words:
                uris.append(words[0])
    return uris


def debian_mirror() -> str:
    """A Debian archive mirror read at run time from the host apt configuration.

    ``RABBITSTREAM_DEBIAN_MIRROR`` overrides. On Ubuntu hosts only a ``…/debian`` mirror named in the apt
    configuration qualifies. :raises BrokerError: none found.
    """
    override = os.environ.get("RABBITSTREAM_DEBIAN_MIRROR")
    if override:
        return override
    usable = [
        u
        for u in _apt_uris()
        if urllib.parse.urlparse(u).scheme in ("http", "https", "ftp", "file")
        and "security" not in u
        and "ubuntu" not in urllib.parse.urlparse(u).path
    ]
    debian = [u for u in usable if urllib.parse.urlparse(u).path.rstrip("/").endswith("/debian")]
    if debian:
        return debian[0]
    if _os_release().get("ID") == "debian" and usable:
        return usable[0]
    raise BrokerError(
        "no Debian mirror in the host apt configuration (/etc/apt/sources.list.d/*.sources URIs:, "
        "/etc/apt/sources.list deb lines); debootstrap of Debian needs one: set "
        "RABBITSTREAM_DEBIAN_MIRROR=http://<mirror>/debian"
    )


# ---------------------------------------------------------------------------------------------- build
def _preflight() -> None:
    if os.geteuid() != 0:
        raise BrokerError(
            "building/starting a chroot broker needs root (or run Docker, or set RABBITSTREAM_BROKER_URI)"
        )
    if shutil.which("apt-get") is None or not Path("/etc/debian_version").exists():
        raise BrokerError(
            "the chroot backend needs a Debian/Ubuntu host with apt-get "
            "(or run Docker, or set RABBITSTREAM_BROKER_URI)"
        )
    if shutil.which("chroot") is None:
        raise BrokerError("chroot(8) not found")


def _check_space(path: Path) -> None:
    probe = path
    while not probe.exists():
        probe = probe.parent
    st = os.statvfs(probe)
    free = st.f_bavail * st.f_frsize
    if free < _NEEDED_BYTES:
        raise BrokerError(
            f"disk full: {free / 1e9:.2f} GB free under {probe}, a broker chroot needs about "
            f"{_NEEDED_BYTES / 1e9:.1f} GB (set RABBITSTREAM_BROKER_CACHE to another filesystem)"
        )


def _ensure_debootstrap() -> str:
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if found:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env, timeout=600)
    run(["apt-get", "install", "-y", "-qq", "debootstrap"], env=env, timeout=600)
    return shutil.which("debootstrap") or "/usr/sbin/debootstrap"


def apt_install(root: Path, suite: str, packages: Sequence[str], *, no_start: bool = True) -> None:
    """``apt-get update`` + install ``packages`` in the chroot.

    The source line and the apt lists (whose file names carry the mirror host) live on a tmpfs mounted for
    the duration of the call only, so the mirror never reaches the disk. Services are kept from starting
    (``policy-rc.d`` exit 101); the ``.deb`` cache is cleaned after.
    """
    tmpfs = root / "run/rabbitstream-apt"
    tmpfs.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=0755", "tmpfs", str(tmpfs)])
    policy = root / "usr/sbin/policy-rc.d"
    try:
        (tmpfs / "lists/partial").mkdir(parents=True)
        (tmpfs / "sources.list").write_text(f"deb {debian_mirror()} {suite} main\n")
        opts = [
            "-o",
            "Dir::Etc::SourceList=/run/rabbitstream-apt/sources.list",
            "-o",
            "Dir::Etc::SourceParts=/run/rabbitstream-apt/none",
            "-o",
            "Dir::State::Lists=/run/rabbitstream-apt/lists",
            *SUITE_OPTS.get(suite, []),
        ]
        if no_start:
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        inroot(root, ["apt-get", "-q", *opts, "--error-on=any", "update"], env=env, timeout=900)
        inroot(
            root,
            ["apt-get", "-q", *opts, "install", "-y", "--no-install-recommends", *packages],
            env=env,
            timeout=900,
        )
    finally:
        if no_start:
            policy.unlink(missing_ok=True)
        run(["umount", str(tmpfs)], check=False)
        inroot(root, ["apt-get", "clean"], check=False)


def _wipe_lists(root: Path) -> None:
    """Remove apt lists (named after the mirror host) and the log left by debootstrap."""
    lists = root / "var/lib/apt/lists"
    for entry in lists.glob("*"):
        if entry.is_file():
            entry.unlink()
    (root / "var/log/bootstrap.log").unlink(missing_ok=True)  # debootstrap's log names the mirror


def ensure_chroot(suite: str, *, log: bool = True) -> Path:
    """Return the chroot of ``suite``, building it first when missing (about 1 minute, 0.5 GB)."""
    root = chroot_path(suite)
    if (root / "usr/sbin/rabbitmq-server").exists():
        return root
    _preflight()
    cache = cache_dir()
    _check_space(cache)
    mirror = debian_mirror()
    debootstrap = _ensure_debootstrap()
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob(f".{suite}.build-*"):  # leftovers of interrupted builds
        pid = stale.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            if os.path.ismount(stale / "proc"):
                run(["umount", "-l", str(stale / "proc")], check=False)
            shutil.rmtree(stale, ignore_errors=True)
    tmp = cache / f".{suite}.build-{os.getpid()}"
    t0 = time.monotonic()
    if log:
        print(f"[broker] building Debian {suite} chroot in {root} (about 1 minute) ...", flush=True)
    try:
        run([debootstrap, "--variant=minbase", suite, str(tmp), mirror], timeout=1800)
        (tmp / "etc/apt/sources.list").write_text(_SOURCES_NOTE)
        _wipe_lists(tmp)
        apt_install(tmp, suite, ["rabbitmq-server"])
        inroot(tmp, ["rabbitmq-plugins", "enable", "--offline", *MAIN_PLUGINS], timeout=120)
        (tmp / "etc/rabbitmq/rabbitmq.conf").write_text(MAIN_CONF)
        _wipe_lists(tmp)
        if os.path.ismount(tmp / "proc"):
            run(["umount", str(tmp / "proc")])
        if root.exists():  # a concurrent/partial target without rabbitmq-server: replace it
            shutil.rmtree(root)
        os.rename(tmp, root)
    except BaseException:
        if os.path.ismount(tmp / "proc"):
            run(["umount", "-l", str(tmp / "proc")], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if log:
        print(f"[broker] {suite} chroot ready in {time.monotonic() - t0:.1f}s", flush=True)
    return root
