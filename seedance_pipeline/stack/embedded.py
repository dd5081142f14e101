"""The embedded stack on one machine, no Docker: Temporal dev server (SQLite file, Web UI),
the ModelArk emulator, the webhook receiver and the worker.

`python -m stack up` starts what is not running yet, waits until each part answers and prints
where it listens; `down` stops exactly what `up` started (pid files under .data/pids);
`demo` = up, a small batch end to end, summary, down.

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
from dataclasses import dataclass
from pathlib import Path

import httpx

from seedance_pipeline.clients.media_probe import matches, probe_video
from seedance_pipeline.core.pricing import frame_size
from seedance_pipeline.core.search_attributes import dev_server_flags
from seedance_pipeline.emulator.wiring import emulated_env
from seedance_pipeline.stack.binaries import sqlite_file_flags, temporal_cli

ROOT = Path(__file__).resolve().parents[2]  # the checkout: .data/ and examples/ live there
DATA = Path(os.environ.get("SEEDANCE_DATA_DIR", ROOT / ".data"))
PIDS = DATA / "pids"
LOGS = DATA / "logs"
EMULATOR_KEY = "ek-emulator-local"


@dataclass(frozen=True)
class Ports:
    temporal: int = int(os.environ.get("TEMPORAL_PORT", "7233"))
    ui: int = int(os.environ.get("TEMPORAL_UI_PORT", "8233"))
    emulator: int = int(os.environ.get("EMULATOR_PORT", "8700"))
    webhook: int = int(os.environ.get("WEBHOOK_PORT", "8701"))
    metrics: int = int(os.environ.get("WORKER_METRICS_PORT", "9464"))
    api: int = int(os.environ.get("API_PORT", "8702"))


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
    env = dict(os.environ)
    env.setdefault("TEMPORAL_ADDRESS", f"127.0.0.1:{ports.temporal}")
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


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(name: str) -> int | None:
    path = PIDS / f"{name}.pid"
    if not path.exists():
        return None
    pid = int(path.read_text())
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if we started it (demo) and it has exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink()
        return None
    return pid


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> int:
    PIDS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = (LOGS / f"{name}.log").open("ab")
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
    return proc.pid


def _wait(name: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _alive(name) is None:
            raise RuntimeError(f"{name} exited during start; see {LOGS / (name + '.log')}")
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer within {timeout:.0f}s; see {LOGS / (name + '.log')}")


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code < 500


def up() -> int:
    ports = Ports()
    env = stack_env(ports)
    py = sys.executable
    parts: list[tuple[str, list[str], object, str]] = [
        (
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
        parts.append(
            (
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
    parts += [
        (
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
        (
            "worker",
            [py, "-m", "seedance_pipeline.worker"],
            lambda: _port_open(ports.metrics),
            f"worker metrics http://127.0.0.1:{ports.metrics}/metrics",
        ),
        (
            "api",
            [py, "-m", "seedance_pipeline.api", "--host", "127.0.0.1", "--port", str(ports.api)],
            lambda: _http_ok(f"http://127.0.0.1:{ports.api}/healthz"),
            f"HTTP API http://127.0.0.1:{ports.api} (docs /docs, jobs page /; "
            f"key of tenant demo in {DATA / 'api_key'})",
        ),
    ]
    for name, argv, check, where in parts:
        if _alive(name) is None:
            _spawn(name, argv, env)
        _wait(name, check)
        print(f"  {name:9s} up   {where}")
    mode = "emulator" if emulated() else "REAL provider routes (key found in environment)"
    print(f"stack ready ({mode}); Web UI: http://127.0.0.1:{ports.ui}  stop with `make down`")
    return 0


def down() -> int:
    stopped = 0
    for name in ("api", "worker", "webhook", "emulator", "temporal"):
        pid = _alive(name)
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(name) is not None:
            time.sleep(0.2)
        if _alive(name) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        (PIDS / f"{name}.pid").unlink(missing_ok=True)
        print(f"  {name:9s} stopped")
        stopped += 1
    if not stopped:
        print("nothing was running")
    return 0


def demo() -> int:
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
        down()
    return code


def _check_outputs(batch: Path, env: dict[str, str]) -> int:
    """Every stored video is a playable H.264 MP4 of the requested frame size and length."""
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
    return 1 if bad or not jobs else 0


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "demo": demo}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m stack up|down|demo", file=sys.stderr)
        return 2
    try:
        return commands[argv[0]]()
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
