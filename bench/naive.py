"""The naive client: what most first integrations of a video API do, as the latency and API
budget baselines.

For each job: create the task, GET it every 5 s until it is finished, then download the video
with `httpx.get` and write it to disk. No callbacks, no backoff, no streaming, no retries, no
durability. Jobs run concurrently (one coroutine each), started at the same pace as the
pipeline's jobs, and the script prints one JSON object: the task IDs, where each video was
written and how it ended. Provider-side facts (when each task succeeded, how many calls named
it) are read from the emulator by the harness, exactly as for the pipeline.

    python -m bench.naive --api-base http://127.0.0.1:8700/api/v3 --api-key KEY \
        --model-id MODEL_ID --jobs 200 --rate 4 --out-dir /tmp/naive

MODEL_ID is the configured one (config/seedance.toml), e.g. `load_settings().model("mini")
.ids["byteplus"]`; the harness passes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "expired", "cancelled"}


def create_body(model_id: str, prompt: str) -> dict[str, Any]:
    """The same request the pipeline sends for its bench job (720p 16:9, 5 s, no callback)."""
    return {
        "model": model_id,
        "content": [{"type": "text", "text": prompt}],
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
    }


async def one_job(
    http: httpx.AsyncClient, model_id: str, prompt: str, interval: float, out: Path
) -> dict[str, Any]:
    """Create, poll every `interval` seconds, download: the whole integration."""
    created = await http.post("/contents/generations/tasks", json=create_body(model_id, prompt))
    created.raise_for_status()
    task_id = created.json()["id"]
    while True:
        await asyncio.sleep(interval)
        task = (await http.get(f"/contents/generations/tasks/{task_id}")).json()
        if task["status"] in TERMINAL:
            break
    if task["status"] != "succeeded":
        return {"task_id": task_id, "status": task["status"], "path": None}
    video = await http.get(task["content"]["video_url"])
    video.raise_for_status()
    out.write_bytes(video.content)  # noqa: ASYNC240 (blocking, as first integrations write it)
    return {"task_id": task_id, "status": "succeeded", "path": str(out)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out_dir = Path(args.out_dir)
    headers = {"Authorization": f"Bearer {args.api_key}"}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        base_url=args.api_base, headers=headers, timeout=60, limits=limits
    ) as http:
        start = time.monotonic()

        async def paced(i: int) -> dict[str, Any]:
            await asyncio.sleep(max(0.0, start + i / args.rate - time.monotonic()))
            prompt = f"naive {args.tag} #{i}: a red fox in snow"
            return await one_job(http, args.model_id, prompt, args.interval, out_dir / f"{i}.mp4")

        jobs = await asyncio.gather(*(paced(i) for i in range(args.jobs)))
    return {"jobs": jobs, "seconds": time.monotonic() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive", description=__doc__)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model-id", required=True)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=4.0, help="job starts per second")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between GETs")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--tag", default="naive")
    args = parser.parse_args(argv)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
