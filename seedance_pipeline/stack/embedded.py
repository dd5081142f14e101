"""The embedded stack on one machine, no Docker: Temporal dev server (SQLite file, Web UI),
the ModelArk emulator, the webhook receiver and the worker.

`python -m seedance_pipeline.stack up` starts what is not running yet and waits until each
part is ready (the worker: until Temporal lists it polling every queue it serves), then
records where everything listens in `<data dir>/stack.json` (`adapters.stack_record`), which every
CLI command reads. A part that dies during start is reported with its own last log lines and
the log's path, and `up` exits non-zero. `down` stops exactly what `up` started (pid files
under <data dir>/pids) and removes the record; `demo` runs a small batch end to end on the
stack, starting only what is not running and stopping only what it started.

Without a provider key in the environment (ARK_API_KEY / VOLC_ARK_API_KEY), both routes point
at the emulator; with one, the routes keep their configured (real) base URLs. Nothing else
differs: same worker, same workflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

from seedance_pipeline.adapters.stack_record import (
    ROOT,
    StackRecord,
    data_dir,
    read_record,
    remove_record,
    write_record,
)
from seedance_pipeline.clients.media_probe import matches, probe_video
from seedance_pipeline.core.pricing import frame_size
from seedance_pipeline.core.search_attributes import dev_server_flags
from seedance_pipeline.emulator.wiring import emulated_env
from seedance_pipeline.stack.binaries import sqlite_file_flags, temporal_cli
from seedance_pipeline.stack.readiness import (
    log_tail,
    missing_pollers,
    namespace_id,
    worker_needs,
)

DATA = data_dir()
PIDS = DATA / "pids"
LOGS = DATA / "logs"
EMULATOR_KEY = "ek-emulator-local"
START_TIMEOUT = 60.0
STOP_ORDER = ("api", "worker", "webhook", "emulator", "temporal")
"""Parts `down` knows even without a record (a stack whose `up` failed half-way)."""


class StackError(RuntimeError):
    """A part did not start; the message carries its own last words and where its log is."""


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{variable}={raw!r} is not a port number (1-65535)")
    return int(raw)


@dataclass(frozen=True)
class Ports:
    """Where each part listens: the defaults, or the variables that move them."""

    temporal: int = field(default_factory=lambda: _port("TEMPORAL_PORT", 7233))
    ui: int = field(default_factory=lambda: _port("TEMPORAL_UI_PORT", 8233))
    emulator: int = field(default_factory=lambda: _port("EMULATOR_PORT", 8700))
    webhook: int = field(default_factory=lambda: _port("WEBHOOK_PORT", 8701))
    metrics: int = field(default_factory=lambda: _port("WORKER_METRICS_PORT", 9464))
    api: int = field(default_factory=lambda: _port("API_PORT", 8702))


def emulated() -> bool:
    """Real routes when a key is set (and SEEDANCE_PROVIDER is not 'emulator')."""
    if os.environ.get("SEEDANCE_PROVIDER") == "emulator":
        return True
    return not (os.environ.get("ARK_API_KEY") or os.environ.get("VOLC_ARK_API_KEY"))


def callback_secret() -> str:
    path = DATA / "callback_secret"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def demo_tenant() -> tuple[Path, Path]:
    """The `demo` tenant of the local API: its key (for you: `.data/api_key`), the key's hash
    and its webhook secret (for the API and the worker), made once."""
    from seedance_pipeline.api.keys import hash_key, new_key
    from seedance_pipeline.core.standard_webhooks import new_secret

    folder = DATA / "api"
    hashes, secret = folder / "demo.keys", folder / "demo.whsec"
    key_file = DATA / "api_key"
    if not key_file.exists() or not hashes.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = new_key()
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        hashes.write_text(hash_key(key) + "\n")
    if not secret.exists():
        folder.mkdir(parents=True, exist_ok=True)
        secret.write_text(new_secret() + "\n")
        secret.chmod(0o600)
    return hashes, secret


def stack_env(ports: Ports) -> dict[str, str]:
    """The environment every stack process (and the demo's starter) runs with."""
    # The stack's processes talk to the stack's own Temporal, whatever TEMPORAL_* (another
    # cluster's address, namespace, API key or profile) the shell that runs `make up` holds.
    env = {k: v for k, v in os.environ.items() if not _foreign_temporal(k)}
    env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{ports.temporal}"
    env["TEMPORAL_NAMESPACE"] = "default"
    env["WORKER_METRICS_PORT"] = str(ports.metrics)
    env.setdefault("SEEDANCE_CALLBACK_SECRET", callback_secret())
    env.setdefault("SEEDANCE_CALLBACKS__BASE_URL", f"http://127.0.0.1:{ports.webhook}")
    env.setdefault("SEEDANCE_STORAGE__URI", str(DATA / "outputs"))
    env.setdefault("SEEDANCE_LEDGER__URL", f"sqlite:///{DATA / 'ledger.sqlite3'}")
    env["API_PORT"] = str(ports.api)
    hashes, secret = demo_tenant()
    env.setdefault("SEEDANCE_API__TENANTS__DEMO__KEY_HASHES_FILE", str(hashes))
    env.setdefault("SEEDANCE_API__TENANTS__DEMO__WEBHOOK_SECRET_FILE", str(secret))
    # One host: the applications a developer points webhooks at run on loopback.
    env.setdefault("SEEDANCE_API__ALLOW_PRIVATE_WEBHOOK_HOSTS", "true")
    if emulated():
        # The emulator serves outputs under the provider's TOS host names (--tos-urls) and the
        # worker connects those names to it: the shipped output_hosts stay as they are.
        emulator = f"http://127.0.0.1:{ports.emulator}"
        env.update(emulated_env(f"{emulator}/api/v3", emulator, loopback_outputs=False))
        for key_env in ("ARK_API_KEY", "VOLC_ARK_API_KEY"):
            env[key_env] = EMULATOR_KEY
        env.setdefault("EMULATOR_API_KEYS", EMULATOR_KEY)
    return env


def _foreign_temporal(name: str) -> bool:
    return name.startswith("TEMPORAL_") and name not in ("TEMPORAL_PORT", "TEMPORAL_UI_PORT")


class Part(NamedTuple):
    """One process of the stack: how to start it, when it is ready, where it listens."""

    name: str
    argv: list[str]
    ready: Callable[[], bool]
    where: str


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _pid(name: str) -> int | None:
    """The pid of a running part (None, and its stale pid file removed, when it is gone)."""
    path = PIDS / f"{name}.pid"
    if not path.exists():
        return None
    try:
        pid = int(path.read_text())
    except ValueError:
        path.unlink()
        return None
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if we started it (demo) and it has exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    if _zombie(pid):
        path.unlink(missing_ok=True)
        return None
    return pid


def _zombie(pid: int) -> bool:
    """True when `pid` has exited and only waits to be reaped. A part outlives the `up` that
    spawned it, so init reaps it, when it gets to it: a container's init may take seconds
    (2 s each on the CI box, so `down` took 10 s for five parts that exited in 0.2 s) or
    never reap at all, and kill(pid, 0) still answers for a zombie. No /proc (macOS): False,
    and kill(pid, 0) decides alone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]  # the name may hold ") "


def _log(name: str) -> Path:
    return LOGS / f"{name}.log"


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    PIDS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    with _log(name).open("ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (PIDS / f"{name}.pid").write_text(str(proc.pid))
    return proc


def _log_size(name: str) -> int:
    try:
        return _log(name).stat().st_size
    except OSError:
        return 0


def _wait(part: Part, proc: subprocess.Popen[bytes] | None, log_offset: int) -> None:
    """Until `part` is ready; StackError with its own last log lines when it exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        code = proc.poll() if proc is not None else None
        if code is not None or _pid(part.name) is None:
            said = log_tail(_log(part.name), log_offset)
            raise StackError(
                f"{part.name} exited during start"
                + (f" (exit code {code})" if code is not None else "")
                + f"; its log, {_log(part.name)}, ends with:\n"
                + ("\n".join(f"    {line}" for line in said) or "    (nothing)")
            )
        if part.ready():
            return
        time.sleep(0.3)
    said = log_tail(_log(part.name), log_offset)
    raise StackError(
        f"{part.name} is running but not ready after {START_TIMEOUT:.0f} s; its log, "
        f"{_log(part.name)}, ends with:\n" + ("\n".join(f"    {line}" for line in said) or "")
    )


def _worker_ready(ports: Ports) -> bool:
    """Temporal lists this worker process polling every queue it serves."""
    pid = _pid("worker")
    if pid is None or not _port_open(ports.metrics):
        return False
    return not missing_pollers(f"127.0.0.1:{ports.temporal}", pid, worker_needs())


def parts(ports: Ports, env: dict[str, str]) -> list[Part]:
    """Every process of the stack, in start order (a new part is one more entry)."""
    py = sys.executable
    found = [
        Part(
            "temporal",
            [
                temporal_cli(),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(ports.temporal),
                "--ui-port",
                str(ports.ui),
                *sqlite_file_flags(DATA / "temporal.sqlite"),
                "--log-level",
                "warn",
                *dev_server_flags(),
            ],
            lambda: _port_open(ports.temporal) and _port_open(ports.ui),
            f"Temporal 127.0.0.1:{ports.temporal}, Web UI http://127.0.0.1:{ports.ui}",
        ),
    ]
    if emulated():
        found.append(
            Part(
                "emulator",
                [
                    py,
                    "-m",
                    "seedance_pipeline.emulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports.emulator),
                    "--data-dir",
                    str(DATA / "emulator"),
                    "--queue-seconds",
                    os.environ.get("EMULATOR_QUEUE_SECONDS", "1"),
                    "--run-seconds",
                    os.environ.get("EMULATOR_RUN_SECONDS", "3"),
                    "--tos-urls",
                ],
                lambda: _http_ok(f"http://127.0.0.1:{ports.emulator}/_emulator/stats"),
                f"ModelArk emulator http://127.0.0.1:{ports.emulator}/api/v3",
            )
        )
    found += [
        Part(
            "webhook",
            [
                py,
                "-m",
                "seedance_pipeline.webhook",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports.webhook),
            ],
            lambda: _http_ok(f"http://127.0.0.1:{ports.webhook}/healthz"),
            f"webhook receiver http://127.0.0.1:{ports.webhook}/callbacks/...",
        ),
        Part(
            "worker",
            [py, "-m", "seedance_pipeline.worker"],
            lambda: _worker_ready(ports),
            f"worker polling {', '.join(n.queue for n in worker_needs())}; "
            f"metrics http://127.0.0.1:{ports.metrics}/metrics",
        ),
        Part(
            "api",
            [py, "-m", "seedance_pipeline.api", "--host", "127.0.0.1", "--port", str(ports.api)],
            lambda: _http_ok(f"http://127.0.0.1:{ports.api}/healthz"),
            f"HTTP API http://127.0.0.1:{ports.api} (docs /docs, jobs page /; "
            f"key of tenant demo in {DATA / 'api_key'})",
        ),
    ]
    return found


def running() -> set[str]:
    return {name for name in _known_parts() if _pid(name) is not None}


def _known_parts() -> list[str]:
    recorded = read_record(DATA)
    names = list(recorded.parts) if recorded else []
    names += [p.stem for p in sorted(PIDS.glob("*.pid"))] if PIDS.exists() else []
    names += [n for n in reversed(STOP_ORDER)]
    return list(dict.fromkeys(names))


def up() -> int:
    ports = Ports()
    env = stack_env(ports)
    started: list[str] = []
    stack = parts(ports, env)
    try:
        for part in stack:
            proc = None
            offset = _log_size(part.name)
            if _pid(part.name) is None:
                proc = _spawn(part.name, part.argv, env)
                started.append(part.name)
            _wait(part, proc, offset)
            print(f"  {part.name:9s} up   {part.where}")
    except StackError as exc:
        alive = sorted(running())
        still = (
            f"\nstill running: {', '.join(alive)}; fix the problem and run `make up` again, "
            "or `make down`"
            if alive
            else ""
        )
        raise StackError(f"{exc}{still}") from None
    record = StackRecord(
        temporal=f"127.0.0.1:{ports.temporal}",
        namespace_id=namespace_id(f"127.0.0.1:{ports.temporal}"),
        ui=f"http://127.0.0.1:{ports.ui}",
        parts={part.name: part.where for part in stack},
        pids={name: pid for name in (p.name for p in stack) if (pid := _pid(name)) is not None},
        logs={part.name: str(_log(part.name)) for part in stack},
        job_queue=worker_needs()[0].queue,
        worker_queues=[need.queue for need in worker_needs()],
        data_dir=str(DATA),
        storage=env.get("SEEDANCE_STORAGE__URI", ""),
        ledger=_shareable(env.get("SEEDANCE_LEDGER__URL", "")),
        emulated=emulated(),
        started_at=datetime.now(UTC),
    )
    where = write_record(record, DATA)
    mode = "emulator" if emulated() else "REAL provider routes (key found in environment)"
    print(
        f"stack ready ({mode}); Web UI: http://127.0.0.1:{ports.ui}; addresses in {where}; "
        "stop with `make down`"
    )
    return 0


def _shareable(url: str) -> str:
    """The URL if it holds no password: the record is a plain file any CLI reads."""
    return "" if urlsplit(url).password else url


def _stop(name: str) -> bool:
    pid = _pid(name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _pid(name) is not None:
        time.sleep(0.2)
    if _pid(name) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    (PIDS / f"{name}.pid").unlink(missing_ok=True)
    print(f"  {name:9s} stopped")
    return True


def down(only: set[str] | None = None) -> int:
    """Stop the stack's parts (or `only` those), last started first."""
    names = list(reversed(_known_parts()))
    stopped = [name for name in names if (only is None or name in only) and _stop(name)]
    if not running():
        remove_record(DATA)
    if not stopped:
        print("nothing was running")
    return 0


def demo() -> int:
    """A small batch end to end; a stack that was already running is left running."""
    before = running()
    code = 1
    try:
        up()
        env = stack_env(Ports())
        batch = ROOT / "examples" / "demo.jsonl"
        print(f"running {batch.relative_to(ROOT)} through the whole pipeline ...")
        code = subprocess.call(
            [sys.executable, "starter.py", "batch", str(batch), "--concurrency", "3"],
            cwd=ROOT,
            env=env,
        )
        if code == 0:
            print("checking every stored video with a real demuxer ...")
            code = _check_outputs(batch, env)
        print(
            "demo "
            + (
                "succeeded: every job ended as expected"
                if code == 0
                else f"FAILED (exit {code}); logs under {LOGS}"
            )
        )
    finally:
        started_here = running() - before
        if before:
            down(only=started_here)
            print(
                f"the stack you started is still running ({', '.join(sorted(before))}); "
                "`make down` stops it"
            )
        else:
            down()
    if code == 0:
        outputs = stack_env(Ports()).get("SEEDANCE_STORAGE__URI", str(DATA / "outputs"))
        print(f"the demo's videos (with last frames and manifests) are under {outputs}")
    return code


def _check_outputs(batch: Path, env: dict[str, str]) -> int:
    """Every stored video is a playable H.264 MP4 of the requested frame size and length;
    says where each one is."""
    out = subprocess.run(
        [sys.executable, "starter.py", "batch", str(batch), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    jobs = json.loads(out.stdout[out.stdout.index("{") :])["jobs"]
    bad = 0
    for job in jobs:
        info = probe_video(job["video_uri"])
        width, height = frame_size("v15", job["resolution"], job["ratio"])
        ok = matches(info, width, height, job["duration"])
        bad += not ok
        print(
            f"  {'ok ' if ok else 'BAD'} {job['job_id']}: {info.codec} {info.width}x"
            f"{info.height} {info.seconds:.2f} s (asked {width}x{height}, {job['duration']} s)"
        )
    if jobs:
        print(f"the videos are in {env.get('SEEDANCE_STORAGE__URI', DATA / 'outputs')}:")
        for job in jobs:
            print(f"  {job['video_uri']}")
    return 1 if bad or not jobs else 0


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "demo": demo}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m seedance_pipeline.stack up|down|demo", file=sys.stderr)
        return 2
    try:
        return commands[argv[0]]()
    except (StackError, FileNotFoundError) as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
