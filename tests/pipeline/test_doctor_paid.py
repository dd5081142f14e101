"""`doctor --live --paid` end to end on the emulated stack: one 4 s 480p Mini job through the
running pipeline, and a verdict for each emulator assumption that matters."""

from __future__ import annotations

import json
from pathlib import Path

from seedance_pipeline.clients import doctor_live
from tests.pipeline.conftest import Pipeline


async def test_paid_check_reports_what_the_job_saw(pipeline: Pipeline, tmp_path: Path) -> None:
    async def client() -> object:
        return pipeline.client

    report = await doctor_live.run(
        pipeline.settings, "byteplus", paid=True, client_factory=client, wait_seconds=120
    )
    verdicts = {c.name: c for c in report.checks}
    assert verdicts["paid job"].verdict == "ok", verdicts["paid job"]
    # The output URL is on the provider's TOS host and the shipped allow-list admits it.
    assert verdicts["output host"].verdict == "ok"
    assert "tos-ap-southeast-1.volces.com" in verdicts["output host"].detail
    # 864 x 496 x 97 / 1024: the emulator bills 24·d+1 frames, as the estimate assumes.
    assert verdicts["billed tokens"].verdict == "ok"
    assert "40,594 billed" in verdicts["billed tokens"].detail
    assert verdicts["callback received"].verdict == "ok"
    assert verdicts["Retry-After"].verdict == "unchecked"
    assert verdicts["output URL expiry"].verdict == "ok"
    assert report.job is not None
    assert report.job["estimate"]["tokens"] == 40_594
    raw = json.dumps(report.job["provider_task"])
    assert "X-Tos-Signature=..." in raw and "X-Tos-Signature=0" not in raw
    path = tmp_path / "paid.json"
    path.write_text(report.to_json())
    kept = json.loads(path.read_text())
    assert kept["paid"] is True and kept["job"]["record"]["tokens"] == 40_594
    tasks = await pipeline.tasks_for(next(r for r in [await pipeline.status(report.job["job_id"])]))
    assert len(tasks) == 1  # one job, one task
