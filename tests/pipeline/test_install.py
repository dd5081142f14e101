"""The package installed into an empty virtualenv, then the console script `seedance` and the
typed API client, from outside the source tree, drive a running `make up` stack (started on
free ports with a temporary SEEDANCE_DATA_DIR) to a stored video fetched by its durable link.

The install is of the committed tree (`git ls-files`, copied), so a file that only exists in
a developer's checkout cannot make it pass. Dependencies come from PyPI through uv, as
`make venv` installs them (from uv's cache after `make venv`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedance_pipeline.stack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")
PORT_NAMES = (
    "TEMPORAL_PORT",
    "TEMPORAL_UI_PORT",
    "EMULATOR_PORT",
    "WEBHOOK_PORT",
    "WORKER_METRICS_PORT",
    "API_PORT",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty venv with the project installed from a copy of the committed files."""
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        target = source / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name.decode()).is_file():
            shutil.copy2(ROOT / name.decode(), target)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = subprocess.run(
        # uv, as `make venv` installs (the same PEP 517 build of the same pyproject, so the
        # same wheel and dependencies pip installs): from the cache `make venv` filled it takes
        # 5 s and 2 s of CPU, where pip took 25 s and 18 s, unpacking every dependency again.
        [UV, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`make up` (the stack module, as the Makefile runs it) on free ports; `down` after."""
    data = tmp_path_factory.mktemp("stack-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "SEEDANCE_"))}
    env.pop("ARK_API_KEY", None)
    env.pop("VOLC_ARK_API_KEY", None)
    env["SEEDANCE_DATA_DIR"] = str(data)
    env.update({name: str(free_port()) for name in PORT_NAMES})
    up = subprocess.run(
        [sys.executable, "-m", "seedance_pipeline.stack", "up"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert "api" in up.stdout
        yield {
            **env,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{env['TEMPORAL_PORT']}",
            "API_URL": f"http://127.0.0.1:{env['API_PORT']}",
            "API_KEY": (data / "api_key").read_text().strip(),
        }
    finally:
        subprocess.run(
            [sys.executable, "-m", "seedance_pipeline.stack", "down"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )


def run(venv: Path, argv: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


CLIENT = """
import json, sys
from seedance_pipeline.api_client import JobCreate, SeedanceClient
url, key, out = sys.argv[1:4]
with SeedanceClient(url, key) as api:
    job = api.create_job(JobCreate(prompt="installed fox", return_last_frame=True),
                         idempotency_key="install-check").job
    job = api.wait(job.job_id, timeout=120, interval=0.5)
    api.download_video(job.job_id, out)
    print(json.dumps({"outcome": job.outcome, "sha256": job.video_sha256, "id": job.job_id}))
"""


def test_installed_package_has_only_its_own_names(installed: Path, tmp_path: Path) -> None:
    site = next((installed / "lib").glob("python3*/site-packages"))
    ours = [p.name for p in site.iterdir() if p.name.startswith(("core", "clients", "workflows"))]
    assert ours == [], "generic top-level packages leaked into site-packages"
    assert (site / "seedance_pipeline" / "config" / "seedance.toml").is_file()
    assert (site / "seedance_pipeline" / "api" / "templates" / "jobs.html").is_file()
    probe = "import importlib.util as u; print(u.find_spec('core') is None)"
    out = run(installed, [str(installed / "bin" / "python"), "-c", probe], {}, tmp_path)
    assert out.strip() == "True"


def test_cli_and_client_work_against_make_up(
    installed: Path, stack: dict[str, str], tmp_path: Path
) -> None:
    env = {
        "PATH": f"{installed / 'bin'}:/usr/bin:/bin",
        "TEMPORAL_ADDRESS": stack["TEMPORAL_ADDRESS"],
        "HOME": str(tmp_path),
    }
    cli = installed / "bin" / "seedance"
    generated = run(
        installed,
        [str(cli), "generate", "a red fox in snow", "--duration", "4", "--wait", "--json"],
        env,
        tmp_path,
    )
    record = json.loads(generated[generated.index("{") :])
    assert record["outcome"] == "succeeded" and record["video_uri"]
    status = run(installed, [str(cli), "status", record["job_id"], "--json"], env, tmp_path)
    assert json.loads(status[status.index("{") :])["job_id"] == record["job_id"]

    video = tmp_path / "fox.mp4"
    python = str(installed / "bin" / "python")
    args = [python, "-c", CLIENT, stack["API_URL"], stack["API_KEY"], str(video)]
    result = json.loads(run(installed, args, env, tmp_path).strip().splitlines()[-1])
    assert result["outcome"] == "succeeded"
    assert hashlib.sha256(video.read_bytes()).hexdigest() == result["sha256"]
    assert result["id"] == "demo:install-check"
