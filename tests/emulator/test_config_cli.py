"""Configuration sources (defaults, EMULATOR_* env, CLI), the catalogue file and the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from seedance_pipeline.emulator.catalog import CATALOG_PATH, Catalog, default_catalog
from seedance_pipeline.emulator.config import (
    DEFAULT_API_KEY,
    EmulatorConfig,
    build_config,
    raw_from_env,
)
from seedance_pipeline.emulator.faults import FaultSpecError
from seedance_pipeline.emulator.testing import running_emulator

REPO = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    config = EmulatorConfig()
    assert config.api_keys == [DEFAULT_API_KEY] == ["ek-emulator-local"]
    assert (config.port, config.url_ttl, config.retention_hours) == (8700, 86400, 24)
    assert config.plus_one_frame is True and config.retry_after is False
    assert config.tos_urls is False
    assert config.base_url() == "http://127.0.0.1:8700"
    assert EmulatorConfig(api_keys=[" ", ""]).api_keys == [DEFAULT_API_KEY]
    wildcard = EmulatorConfig(host="0.0.0.0", port=9)  # noqa: S104
    assert wildcard.base_url() == "http://127.0.0.1:9"
    assert EmulatorConfig(public_url="https://x.test/").base_url() == "https://x.test"


def test_env_vars_map_onto_config(tmp_path: Path) -> None:
    faults = tmp_path / "f.json"
    faults.write_text(json.dumps({"rules": [{"kind": "stuck"}]}))
    env = {
        "EMULATOR_API_KEYS": "k1, k2",
        "EMULATOR_QUEUE_SECONDS": "0.5",
        "EMULATOR_PLUS_ONE_FRAME": "true",
        "EMULATOR_RPM_PER_MODEL": "30",
        "EMULATOR_ACCOUNT": "individual",
        "EMULATOR_MODEL_TIMINGS": '{"m": {"run_seconds": 3}}',
        "EMULATOR_FAULTS": str(faults),
        "EMULATOR_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin",
    }
    config = build_config(env, {"queue_seconds": 0.25, "port": None})
    assert config.api_keys == ["k1", "k2"]
    assert config.queue_seconds == 0.25  # CLI beats env
    assert config.plus_one_frame is True
    assert config.limits().rpm_per_model == 30
    assert config.limits().concurrency_per_model == 3  # the individual preset
    assert config.model_timings["m"].run_seconds == 3
    assert [r.kind for r in config.faults] == ["stuck"]
    assert config.data_dir == tmp_path
    assert config.port == 8700


def test_unknown_env_var_is_an_error() -> None:
    with pytest.raises(ValueError, match="EMULATOR_QUEUE_SECS"):
        raw_from_env({"EMULATOR_QUEUE_SECS": "1"})


def test_catalogue_is_data_and_consistent() -> None:
    catalog = default_catalog()
    ids = catalog.model_ids()
    assert "dreamina-seedance-2-0-260128" in ids and "doubao-seedance-2-0-260128" in ids
    assert len(ids) == 17
    for model_id in ids:
        spec = catalog.get(model_id)
        assert spec is not None
        for res in spec.resolutions:
            for ratio in spec.ratios:
                if ratio != "adaptive":
                    w, h = catalog.pixels(spec, res, ratio)
                    assert w % 2 == 0 and h % 2 == 0
    # Model IDs never appear in the Python sources.
    pattern = re.compile(r"seedance-\d-\d")
    sources = list((REPO / "seedance_pipeline" / "emulator").glob("*.py"))
    assert len(sources) > 20
    offenders = [p.name for p in sources if pattern.search(p.read_text())]
    assert offenders == []


def test_catalogue_rejects_duplicates(tmp_path: Path) -> None:
    raw = json.loads(CATALOG_PATH.read_text())
    raw["models"].append(raw["models"][0])
    bad = tmp_path / "catalog.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="duplicate"):
        Catalog.load(bad)


def test_running_emulator_sync_form_and_call(tmp_path: Path) -> None:
    with running_emulator(data_dir=tmp_path, queue_seconds=0, run_seconds=0) as handle:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", handle)
        assert handle.api_base == f"{handle}/api/v3"
        with handle.client() as c:
            resp = c.post(
                "/contents/generations/tasks",
                json={
                    "model": "seedance-1-0-pro-250528",
                    "content": [{"type": "text", "text": "x"}],
                },
            )
            assert resp.status_code == 200
        assert handle.call(lambda: len(handle.emulator.store.tasks)) == 1
        handle.set_faults([{"kind": "create_5xx"}])
        assert handle.stats()["request_totals"]["create"] == 1
        assert len(handle.tasks()) == 1
        handle.advance_clock(10)
        handle.reset()
        assert handle.tasks() == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{handle}/_emulator/info", timeout=1)


def test_cli_serves_and_reads_flags(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"kind": "create_5xx", "max_hits": 1}]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seedance_pipeline.emulator",
            "--port",
            "0",
            "--api-keys",
            "cli-key",
            "--queue-seconds",
            "0",
            "--run-seconds",
            "0",
            "--data-dir",
            str(tmp_path),
            "--faults",
            str(faults),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)/api/v3", line)
        assert m, line
        base = m.group(1)
        headers = {"Authorization": "Bearer cli-key"}
        payload = {"model": "seedance-1-0-pro-250528", "content": [{"type": "text", "text": "x"}]}
        url = f"{base}/api/v3/contents/generations/tasks"
        assert httpx.post(url, json=payload, headers=headers).status_code == 500  # fault file
        created = httpx.post(url, json=payload, headers=headers)
        assert created.status_code == 200
        deadline = time.monotonic() + 5
        while True:
            task = httpx.get(f"{url}/{created.json()['id']}", headers=headers).json()
            if task["status"] == "succeeded" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert task["status"] == "succeeded"
        assert task["content"]["video_url"].startswith(base + "/seedance-1-0-pro/021")
        assert (
            httpx.get(url, headers={"Authorization": "Bearer ek-emulator-local"}).status_code == 401
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_rejects_bad_fault_file(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"kind": "nope"}]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seedance_pipeline.emulator",
            "--port",
            "0",
            "--faults",
            str(faults),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "nope" in result.stderr


def test_parse_rules_errors_list_every_problem() -> None:
    from seedance_pipeline.emulator.faults import parse_rules

    with pytest.raises(FaultSpecError) as info:
        parse_rules([{"kind": "create_5xx", "probability": 3}, {"kind": "stuck", "extra": 1}])
    message = str(info.value)
    assert "rules.0" in message and "rules.1" in message
