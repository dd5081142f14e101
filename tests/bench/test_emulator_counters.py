"""The emulator's per-task request counters the harness relies on (`requests` in
`/_emulator/tasks`): creates are attributed to the task they made, GETs and DELETEs to the
task they name, downloads counted apart; list calls name no task and are only in the stats."""

from __future__ import annotations

from pathlib import Path

import httpx

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.emulator.testing import running_emulator


def test_requests_are_counted_per_task(tmp_path: Path) -> None:
    with running_emulator(
        data_dir=tmp_path, queue_seconds=0.0, run_seconds=0.0, prewarm_media=False
    ) as emu:
        model = load_settings().models["mini"].ids["byteplus"]  # the configured ID
        body = {"model": model, "content": [{"type": "text", "text": "a fox"}]}
        with emu.client() as client:
            task_id = client.post("/contents/generations/tasks", json=body).json()["id"]
            other = client.post("/contents/generations/tasks", json=body).json()["id"]
            for _ in range(3):
                task = client.get(f"/contents/generations/tasks/{task_id}").json()
            client.get("/contents/generations/tasks")
            client.delete(f"/contents/generations/tasks/{other}")
        assert task["status"] == "succeeded"
        assert httpx.get(task["content"]["video_url"], timeout=60).status_code == 200
        logged = {t["id"]: t for t in emu.tasks()}
        assert logged[task_id]["requests"] == {"create": 1, "get": 3, "file": 1}
        assert logged[other]["requests"] == {"create": 1, "delete": 1}
        assert logged[task_id]["finished_at"] >= logged[task_id]["created_at"]
        assert emu.stats()["request_totals"]["list"] == 1
