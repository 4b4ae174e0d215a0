"""A private, throw-away PostgreSQL cluster for the test suite.

Standard library only, so ``scripts/test`` and the pytest fixtures share it:

    eval "$(python tests/support/pgcluster.py start [--owner PID])"  # exports ITB_TEST_POSTGRES_*
    python tests/support/pgcluster.py stop "$ITB_TEST_POSTGRES_DIR"  # stops it, removes the dir

``start`` runs Debian's ``initdb`` and ``pg_ctl`` (``/usr/lib/postgresql/<ver>/bin``,
the newest version found; ``ITB_PG_BINDIR`` overrides) as the ``postgres`` user
when run as root, on a fresh ``mktemp -d`` directory holding the data directory,
the Unix socket directory and the log. The server listens on 127.0.0.1 only, on
a free port, with a superuser ``itb`` whose random password is in the URL:
``postgresql+psycopg://itb:PASSWORD@127.0.0.1:PORT/postgres``. Durability is off
(``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is thrown away.

It never touches a system-wide cluster: no ``pg_ctlcluster``, no service
command, nothing under ``/var/lib/postgresql``.

A watchdog process (``--owner PID``) stops the cluster and removes its directory
when the owner process has gone without doing so (killed with SIGKILL, say).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "itb"
RUN_AS = "postgres"  # the OS user the server runs as when we are root (initdb refuses root)
_TOOLS = ("initdb", "pg_ctl", "postgres")
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "log_min_messages": "warning",
}


class ClusterError(RuntimeError):
    """The private cluster could not be started; the message is one line."""


@dataclass(frozen=True)
class Cluster:
    base: Path  # the private directory: data/, sock/, server.log
    port: int
    password: str
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.base / "data"


def find_bindir() -> Path:
    """Debian's server binaries: ``$ITB_PG_BINDIR``, else the newest /usr/lib/postgresql/<ver>/bin."""
    override = os.environ.get("ITB_PG_BINDIR")
    candidates = [Path(override)] if override else _debian_bindirs()
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in _TOOLS):
            return bindir
    where = override or "/usr/lib/postgresql/*/bin"
    raise ClusterError(
        f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in {where}: "
        "install them with `apt-get install postgresql` (scripts/test does)"
    )


def _debian_bindirs() -> list[Path]:
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    return sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> tuple[int, int] | None:
    """(uid, gid) of ``postgres`` when we are root (initdb refuses root); None: run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(RUN_AS)
    except KeyError:
        raise ClusterError(
            f"running as root but there is no {RUN_AS!r} user to run PostgreSQL as "
            "(the postgresql package creates it)"
        ) from None
    return user.pw_uid, user.pw_gid


def _tool(cluster_base: Path, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "HOME": str(cluster_base)}
    as_user = _server_user()
    return subprocess.run(
        argv,
        cwd=cluster_base,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        user=as_user[0] if as_user else None,
        group=as_user[1] if as_user else None,
        extra_groups=[] if as_user else None,
    )


def _last_line(*texts: str) -> str:
    """The most telling line of a tool's output or a server log, on one line.

    The last FATAL/ERROR line, with the LOG/DETAIL/HINT line just before it (the
    server says *which* setting was wrong there), without log timestamps.
    """
    stamp = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] ")
    lines = [stamp.sub("", line.strip()) for text in texts for line in text.splitlines()]
    lines = [line for line in lines if line]
    telling = [i for i, line in enumerate(lines) if re.search(r"FATAL|ERROR|PANIC|error", line)]
    if not telling:
        return lines[-1] if lines else "(no output)"
    last = telling[-1]
    before = lines[last - 1] if last > 0 else ""
    if re.match(r"(LOG|DETAIL|HINT|WARNING):", before):
        return f"{before} / {lines[last]}"
    return lines[last]


def start_cluster(*, owner_pid: int | None = None, attempts: int = 3) -> Cluster:
    """Create and start a private cluster; raise ClusterError (one line) if it cannot be had."""
    bindir = find_bindir()
    base = Path(tempfile.mkdtemp(prefix="itb-pg-", dir=os.environ.get("ITB_TEST_PG_TMPDIR")))
    try:
        cluster = _init_and_start(base, bindir, attempts)
    except BaseException:
        _kill_postmaster(base / "data")
        shutil.rmtree(base, ignore_errors=True)
        raise
    if owner_pid is not None:
        _spawn_watchdog(owner_pid, base)
    return cluster


def _init_and_start(base: Path, bindir: Path, attempts: int) -> Cluster:
    (base / "sock").mkdir(mode=0o700)
    password = secrets.token_hex(16)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    as_user = _server_user()
    if as_user:
        for path in (base, base / "sock", pwfile):
            os.chown(path, *as_user)
    init = _tool(
        base,
        [
            str(bindir / "initdb"),
            "--pgdata",
            str(base / "data"),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",  # the socket directory is private (0700) to the server's user
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        timeout=120,
    )
    pwfile.unlink()
    if init.returncode != 0:
        raise ClusterError(
            f"initdb ({bindir / 'initdb'}) failed: {_last_line(init.stdout, init.stderr)}"
        )
    conf = base / "data" / "postgresql.conf"
    settings = dict(_SETTINGS, unix_socket_directories=f"'{base / 'sock'}'")
    with conf.open("a", encoding="utf-8") as handle:
        handle.write("\n# itb test suite: private throw-away cluster\n")
        handle.writelines(f"{key} = {value}\n" for key, value in settings.items())

    log = base / "server.log"
    reason = "no attempt made"
    for _ in range(max(1, attempts)):
        port = free_port()
        started = _tool(
            base,
            [
                str(bindir / "pg_ctl"),
                "--pgdata",
                str(base / "data"),
                "--log",
                str(log),
                "--wait",
                "--timeout=60",
                "-o",
                f"-p {port}",
                "start",
            ],
            timeout=90,
        )
        log_text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        if started.returncode == 0 and _accepts(port):
            return Cluster(base=base, port=port, password=password, bindir=bindir)
        reason = _last_line(started.stdout, started.stderr, log_text)
        _kill_postmaster(base / "data")
        if "already in use" not in log_text:  # only a lost race for the port is worth a retry
            break
    raise ClusterError(f"pg_ctl start ({bindir / 'pg_ctl'}) failed: {reason}")


def _accepts(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
            return True
        time.sleep(0.05)
    return False


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _kill_postmaster(data: Path) -> None:
    """Immediate shutdown by signal (SIGQUIT, then SIGKILL): for a server pg_ctl cannot stop."""
    pid = _postmaster_pid(data)
    if pid is None or not _alive(pid):
        return
    for sig, wait_s in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if not _alive(pid):
            return


def stop(base: Path | str) -> None:
    """Stop the cluster in ``base`` (immediate mode: its data is discarded) and remove ``base``.

    Idempotent, and safe on a half-made directory; refuses anything that is not ours.
    """
    base = Path(base)
    if not base.name.startswith("itb-pg-"):
        raise ClusterError(f"refusing to remove {base}: not a private itb-pg-* cluster directory")
    data = base / "data"
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(ClusterError, OSError, subprocess.TimeoutExpired):
            pg_ctl = find_bindir() / "pg_ctl"
            _tool(base, [str(pg_ctl), "--pgdata", str(data), "-m", "immediate", "-w", "stop"], 60)
        _kill_postmaster(data)
    shutil.rmtree(base, ignore_errors=True)


def _spawn_watchdog(owner_pid: int, base: Path) -> None:
    subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "watch", str(owner_pid), str(base)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _watch(owner_pid: int, base: Path) -> None:
    while base.exists():
        if not _alive(owner_pid):
            stop(base)
            return
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgcluster", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start_p = sub.add_parser("start", help="start a cluster; print shell assignments")
    start_p.add_argument("--owner", type=int, help="stop the cluster when this process is gone")
    stop_p = sub.add_parser("stop", help="stop a cluster and remove its directory")
    stop_p.add_argument("dir")
    watch_p = sub.add_parser("watch", help=argparse.SUPPRESS)
    watch_p.add_argument("owner", type=int)
    watch_p.add_argument("dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            cluster = start_cluster(owner_pid=args.owner)
            print(f"export ITB_TEST_POSTGRES_URL={shlex.quote(cluster.url)}")
            print(f"export ITB_TEST_POSTGRES_DIR={shlex.quote(str(cluster.base))}")
            print(f"export ITB_TEST_POSTGRES_BINDIR={shlex.quote(str(cluster.bindir))}")
        elif args.command == "stop":
            stop(args.dir)
        else:
            _watch(args.owner, Path(args.dir))
    except ClusterError as error:
        what = "did not start" if args.command == "start" else f"{args.command} failed"
        print(f"PostgreSQL private cluster {what}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
