"""Screenshots of the Temporal Web UI as the job console, for the README.

    .venv/bin/python -m stack.screenshots      # or: make screenshots

Uses the running embedded stack (or starts it, and stops it again, when nothing listens on
the Temporal and Web UI ports), runs a small batch on the emulator with one prompt rejected
by output moderation (an emulator fault rule, removed afterwards), then drives Debian's
headless Chromium over the DevTools pipe (no extra Python packages) to capture:

- docs/screenshots/job-list.png    the list filtered by `Model = 'mini'`, with the Outcome,
                                   Model, CostUsd and ErrorCode columns
- docs/screenshots/job-detail.png  the rejected job's Queries tab with the `status` result

Job IDs derive from the request, so running it again finds the same four jobs (the list also
shows any other `mini` jobs in the dev server's history). Refuses to run against real provider
routes (it would pay for the batch): the emulator must answer on EMULATOR_PORT.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from seedance_pipeline.adapters.stack_record import ROOT
from seedance_pipeline.stack.binaries import temporal_cli
from seedance_pipeline.stack.embedded import Ports, down, stack_env, up

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WORD = "trademarked"  # the emulator's moderation fault matches prompts containing it
BATCH = [
    {"prompt": "a red fox trotting through fresh snow, golden hour", "resolution": "480p"},
    {"prompt": "a lighthouse on a cliff at night, slow dolly-in", "resolution": "720p"},
    {"prompt": f"a {WORD} cartoon mascot dancing on a stage", "resolution": "480p"},
    {"prompt": "a paper boat drifting down a rain gutter, macro shot", "resolution": "720p"},
]
LIST_QUERY = "Model = 'mini'"
COLUMNS = ["Status", "Workflow ID", "Outcome", "Model", "CostUsd", "ErrorCode"]
WIDTH, HEIGHT = 1600, 1000
CHROMIUM_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-sync "
    "--disable-background-networking --disable-component-update --remote-debugging-pipe "
    f"--window-size={WIDTH},{HEIGHT}"
).split()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-framed)."""

    def __init__(self, binary: str, profile: str) -> None:
        to_chrome, self._tx = os.pipe()
        self._rx, from_chrome = os.pipe()

        def wire() -> None:  # in the child: our pipe ends become fds 3 and 4
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            close_fds=False,  # Python's own fds are not inheritable (PEP 446)
            preexec_fn=wire,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buf = b""
        self._id = 0
        self._session: str | None = None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
        self._session = attached["sessionId"]
        size = {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", **size)

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self._session:
            msg["sessionId"] = self._session
        os.write(self._tx, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return dict(reply.get("result", {}))
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._rx], [], [], left)[0]:
                raise TimeoutError(f"chromium did not answer {method}")
            chunk = os.read(self._rx, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buf += chunk

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait(self, ready: str, timeout: float = 30.0) -> None:
        """Wait until the JS expression `ready` is truthy, then let the page finish painting."""
        deadline = time.monotonic() + timeout
        while not self.js(ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true after {timeout:.0f}s: {ready}")
            time.sleep(0.25)
        time.sleep(1.0)

    def open(self, url: str, ready: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait(ready)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))

    def close(self) -> None:
        os.close(self._tx)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._rx)


def run_batch(ports: Ports) -> dict[str, str]:
    """Run the batch with one moderation rejection; returns job ID -> outcome."""
    faults = f"http://127.0.0.1:{ports.emulator}/_emulator/faults"
    before = [
        {k: v for k, v in rule.items() if k != "hits"}
        for rule in httpx.get(faults, timeout=5).json()["rules"]
    ]
    rule = {"kind": "output_moderation", "match": {"prompt_contains": WORD}}
    httpx.put(faults, json=[rule, *before], timeout=5).raise_for_status()
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.writelines(json.dumps({"model": "mini", "duration": 5, **row}) + "\n" for row in BATCH)
    try:
        out = subprocess.run(
            [sys.executable, "starter.py", "batch", f.name, "--json"],
            cwd=ROOT,
            env=stack_env(ports),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        ).stdout
    finally:
        httpx.put(faults, json=before, timeout=5).raise_for_status()
        Path(f.name).unlink()
    start = out.find("{")
    records = json.loads(out[start:])["jobs"] if start >= 0 else []
    jobs = {str(r["job_id"]): str(r["outcome"]) for r in records}
    if "rejected_moderation" not in jobs.values():
        raise RuntimeError(f"the batch did not end as planned: {jobs or out or 'no output'}")
    return jobs


def run_id(ports: Ports, workflow_id: str) -> str:
    address = f"127.0.0.1:{ports.temporal}"
    argv = [temporal_cli(), "workflow", "describe", "-w", workflow_id, "--address", address]
    described = subprocess.run(
        [*argv, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return str(json.loads(described)["workflowExecutionInfo"]["execution"]["runId"])


def shoot(ports: Ports, jobs: dict[str, str]) -> list[Path]:
    ui = f"http://127.0.0.1:{ports.ui}/namespaces/default/workflows"
    rejected = next(j for j, outcome in jobs.items() if outcome == "rejected_moderation")
    detail = f"{ui}/{rejected}/{run_id(ports, rejected)}/query"
    columns = json.dumps(json.dumps({"default": [{"label": c} for c in COLUMNS]}))  # a JS string
    OUT.mkdir(parents=True, exist_ok=True)
    shots = [OUT / "job-list.png", OUT / "job-detail.png"]
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        browser = Chromium(CHROMIUM, profile)
        try:
            # the column set lives in the UI's localStorage, not in the URL
            browser.open(ui, "document.readyState === 'complete'")
            browser.js(f"localStorage.setItem('namespace-workflow-table-columns', {columns})")
            text = "document.body.innerText"
            seen = " && ".join(f"{text}.includes({json.dumps(j)})" for j in jobs)
            browser.open(f"{ui}?query={urllib.parse.quote(LIST_QUERY)}", seen)
            browser.screenshot(shots[0])
            browser.open(detail, f"{text}.includes('Run Query')")
            browser.js(
                "[...document.querySelectorAll('button')]"
                ".find(b => b.innerText.trim() === 'Run Query').click()"
            )
            browser.wait(f"{text}.includes('\"outcome\"')")
            fold = "document.querySelectorAll('.cm-foldGutter span[title=\"Fold line\"]')"
            browser.js(f"{fold}[1]?.click()")  # fold `request`: outcome and error fit
            time.sleep(0.5)
            browser.screenshot(shots[1])
        finally:
            browser.close()
    return shots


def main() -> int:
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        print(
            f"no Chromium at {CHROMIUM}: install it with "
            "`apt-get update && apt-get install -y chromium` (or run `make screenshots`, "
            "which does), or point CHROMIUM at another Chromium/Chrome binary",
            file=sys.stderr,
        )
        return 2
    ports = Ports()
    started = not (_listening(ports.temporal) or _listening(ports.ui))
    if started:
        os.environ["SEEDANCE_PROVIDER"] = "emulator"  # never pay for screenshots
        up()
    try:
        if not _listening(ports.emulator):
            print(
                f"no emulator on 127.0.0.1:{ports.emulator}: the running stack uses real "
                "provider routes; stop it (`make down`) and run this again",
                file=sys.stderr,
            )
            return 1
        print(f"running a batch of {len(BATCH)} jobs on the emulator ...")
        jobs = run_batch(ports)
        print("  " + ", ".join(f"{j}: {o}" for j, o in jobs.items()))
        for path in shoot(ports, jobs):
            print(f"wrote {path.relative_to(ROOT)}")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    finally:
        if started:
            down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
