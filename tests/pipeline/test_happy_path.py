"""A job end to end on the dev server: emulator over HTTP, callbacks via the webhook receiver,
real storage and ledger; the stored video is a playable MP4 of the requested shape."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import av

from seedance_pipeline.core.models import GenerationRequest, Outcome
from tests.pipeline.conftest import Pipeline


def probe(uri: str) -> tuple[int, int, float, str]:
    """(width, height, seconds, codec) of a stored MP4, read with a real demuxer (PyAV)."""
    data = Path(urlsplit(uri).path).read_bytes()
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        seconds = float(container.duration) / 1e6
        return stream.width, stream.height, seconds, stream.codec_context.name


async def test_mini_480p_job_stores_playable_mp4(pipeline: Pipeline) -> None:
    """A mini 480p 5 s job ends succeeded with a stored H.264 MP4 of 864x496, ~5 s."""
    record = await pipeline.run(
        GenerationRequest(prompt="happy path fox 480p", model="mini", resolution="480p", duration=5)
    )
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.video_uri and record.manifest_uri
    width, height, seconds, codec = probe(record.video_uri)
    assert (width, height, codec) == (864, 496, "h264")
    assert 4.9 <= seconds <= 5.3
    assert record.tokens == 50_638  # 864 x 496 x (24 x 5 + 1) / 1024: 24·d+1 frames (C6)
    assert record.cost == round(50_638 * 3.5 / 1e6, 6)
    assert record.currency == "USD"
    tasks = await pipeline.tasks_for(record)
    assert len(tasks) == 1 and tasks[0]["id"] == record.provider_task_id


async def test_manifest_and_ledger_row_match_the_record(pipeline: Pipeline) -> None:
    record = await pipeline.run(
        GenerationRequest(
            prompt="manifest check",
            model="mini",
            resolution="720p",
            duration=4,
            return_last_frame=True,
        )
    )
    assert record.outcome == Outcome.SUCCEEDED, record.error
    manifest = json.loads(Path(urlsplit(record.manifest_uri or "").path).read_text())
    assert manifest["model_id"] == record.model_id
    assert manifest["model_id"].startswith("dreamina-seedance-2-0-mini-")
    assert manifest["provider_task_id"] == record.provider_task_id
    assert manifest["request"]["prompt"] == "manifest check"
    assert manifest["outputs"]["video"]["sha256"] == record.video_sha256
    # The provider's own storage host (the emulated stack connects it to the emulator).
    assert manifest["outputs"]["video"]["provider_url"].startswith(
        "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com/"
    )
    assert record.last_frame_uri and Path(urlsplit(record.last_frame_uri).path).exists()
    ledger = pipeline.settings.ledger.url.removeprefix("sqlite:///")
    rows = (
        sqlite3.connect(ledger)
        .execute(
            "SELECT job_id, tokens, cost, currency, outcome, provider_task_id FROM ledger "
            "WHERE job_id = ?",
            (record.job_id,),
        )
        .fetchall()
    )
    assert rows == [
        (record.job_id, record.tokens, record.cost, "USD", "succeeded", record.provider_task_id)
    ]
