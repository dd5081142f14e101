"""A throwaway PostgreSQL server on loopback, for the ledger's tests and local trials.

    python -m stack.postgres deps    # install the Debian package when no pg_ctl is found
    python -m stack.postgres up      # start (or find) the shared local server; prints its URL
    python -m stack.postgres url     # the URL of the running shared server
    python -m stack.postgres down    # stop it

Postgres refuses to run as root, so when we are root the server runs as the `postgres` user
the Debian package creates (through `runuser`), with its data directory under the system temp
directory (a path that user can reach; a clone under /root is not). The cluster trusts
loopback connections and skips fsync: it holds test data only. The standard library only, so
`make pg-deps` works before the virtualenv exists.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seedance_pipeline.stack.ports import free_port

REPO = Path(__file__).resolve().parents[2]  # the checkout: .data/ and examples/ live there
SUPERUSER = "seedance"
DATABASE = "seedance"
SERVICE_USER = "postgres"
DEB_PACKAGE = "postgresql"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or the server would not start; the message says what to do."""


def shared_dir() -> Path:
    """The data directory of the server `make pg-up` starts (one per clone and user)."""
    tag = hashlib.sha256(str(REPO).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"seedance-postgres-{os.getuid()}-{tag}"


def find_bin(name: str) -> str | None:
    """A server binary, from the same installation as `pg_ctl` (on PATH first, else Debian's
    versioned directory, newest first), so initdb, pg_ctl and createdb always match."""
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
            key=lambda p: _version(p.parent.parent.name),
            reverse=True,
        )
        pg_ctl = str(found[0]) if found else None
    if pg_ctl is None:
        return None
    beside = Path(pg_ctl).resolve().parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def ensure_installed() -> None:
    """Install the Debian package when the server binaries are missing (needs root)."""
    if find_bin("pg_ctl") and find_bin("initdb"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries (pg_ctl, initdb) not found. Install the Debian "
            f"package as root: apt-get install -y {DEB_PACKAGE}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", DEB_PACKAGE],
        check=True,
        env=env,
    )
    if not (find_bin("pg_ctl") and find_bin("initdb")):
        raise PostgresUnavailable(f"installed {DEB_PACKAGE} but still no pg_ctl/initdb")


@dataclass(frozen=True)
class Server:
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def _run_as() -> list[str]:
    """Prefix that runs a server command as a non-root user (Postgres refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no {SERVICE_USER!r} user to run the server as "
            f"(the Debian package {DEB_PACKAGE} creates it)"
        ) from None
    return ["runuser", "-u", SERVICE_USER, "--"]


def _pg(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = find_bin(name)
    if binary is None:
        raise PostgresUnavailable(f"{name} not found; run `make pg-deps`")
    return subprocess.run(
        [*_run_as(), binary, *args],
        check=check,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # the service user may not be able to enter our cwd
        env={**os.environ, "LC_ALL": "C", "LANG": "C"},
    )


def running(data_dir: Path) -> Server | None:
    """The server of `data_dir` if it is up (its port is line 4 of postmaster.pid)."""
    pid_file = data_dir / "postmaster.pid"
    if (
        not pid_file.exists()
        or _pg("pg_ctl", "status", "-D", str(data_dir), check=False).returncode
    ):
        return None
    lines = pid_file.read_text().splitlines()
    return Server(data_dir, int(lines[3])) if len(lines) > 3 else None


def start(data_dir: Path, port: int | None = None) -> Server:
    """Start the server of `data_dir` (initialising it on first use); reuse it when up.

    `port`: listen there (a restart that clients reconnect to); by default a free port."""
    ensure_installed()
    found = running(data_dir)
    if found is not None:
        return found
    fresh = not (data_dir / "PG_VERSION").exists()
    if fresh:
        _prepare(data_dir)
        _check(
            _pg(
                "initdb",
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                check=False,
            ),
            "initdb",
        )
    last = ""
    for _ in range(3 if port is None else 1):  # a free port can be taken before we bind it
        port_now = port if port is not None else free_port()
        options = (
            f"-h 127.0.0.1 -p {port_now} -k {data_dir} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        done = _pg(
            "pg_ctl",
            "-D",
            str(data_dir),
            "-l",
            str(data_dir / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
            check=False,
        )
        if done.returncode == 0:
            server = Server(data_dir, port_now)
            if fresh:
                _check(
                    _pg(
                        "createdb",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port_now),
                        "-U",
                        SUPERUSER,
                        DATABASE,
                    ),
                    "createdb",
                )
            return server
        last = _log_tail(data_dir) or done.stderr
    raise PostgresUnavailable(f"postgres did not start in {data_dir}: {last}")


def stop(data_dir: Path) -> bool:
    """Stop the server of `data_dir` (fast shutdown); False when it was not running."""
    if running(data_dir) is None:
        return False
    _check(_pg("pg_ctl", "-D", str(data_dir), "-m", "fast", "-w", "stop", check=False), "stop")
    return True


@contextlib.contextmanager
def temporary_server() -> Iterator[Server]:
    """A private server in a fresh temp directory, stopped and removed on exit."""
    data_dir = Path(tempfile.mkdtemp(prefix="seedance-pg-"))
    try:
        yield start(data_dir)
    finally:
        with contextlib.suppress(PostgresUnavailable, subprocess.SubprocessError, OSError):
            stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def _prepare(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER)
        os.chown(data_dir, user.pw_uid, user.pw_gid)


def _log_tail(data_dir: Path) -> str:
    log = data_dir / "server.log"
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-5:])
    return ""


def _check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise PostgresUnavailable(f"{what} failed ({done.returncode}): {done.stderr.strip()}")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    data_dir = shared_dir()
    try:
        if command == "deps":
            ensure_installed()
            print(f"postgres binaries: {find_bin('pg_ctl')}")
        elif command == "up":
            server = start(data_dir)
            print(server.url)
        elif command == "url":
            found = running(data_dir)
            if found is None:
                print("no local postgres running; `make pg-up` starts one", file=sys.stderr)
                return 1
            print(found.url)
        elif command == "down":
            print("stopped" if stop(data_dir) else "not running")
        else:
            print(f"usage: python -m stack.postgres deps|up|url|down (not {command!r})")
            return 2
    except PostgresUnavailable as exc:
        print(f"postgres ({getpass.getuser()}): {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
