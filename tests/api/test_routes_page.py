"""The jobs page (`GET /`), opened in headless Chromium: three demo jobs show their last
frame as thumbnail and a player that loads the stored video through its durable link; the
screenshot is kept in docs/screenshots/jobs-page.png. Sign-in: page link, form, cookie."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from seedance_pipeline.api_client import JobCreate
from seedance_pipeline.core.models import Outcome
from seedance_pipeline.stack.screenshots import CHROMIUM, Chromium
from tests.api.conftest import ApiEnv

ROOT = Path(__file__).resolve().parents[2]
SHOT = ROOT / "docs" / "screenshots" / "jobs-page.png"
DEMO = [
    "a red fox trotting through fresh snow, golden hour",
    "a lighthouse on a cliff at night, slow dolly-in",
    "a paper boat drifting down a rain gutter, macro shot",
]
PLAYERS_READY = """
(async () => {
  const videos = [...document.querySelectorAll('article.card video')];
  const thumbs = [...document.querySelectorAll('article.card img.thumb')];
  if (videos.length < 3 || thumbs.length < 3) return false;
  if (!thumbs.every(t => t.complete && t.naturalWidth > 0)) return false;
  const heads = await Promise.all(
    videos.map(v => fetch(v.src, {headers: {Range: 'bytes=0-1023'}})));
  const posters = await Promise.all(videos.map(v => fetch(v.poster)));
  return heads.every(r => r.status === 206 && r.headers.get('content-type') === 'video/mp4')
      && posters.every(r => r.ok && r.headers.get('content-type') === 'image/png');
})()
"""


def ensure_chromium() -> str:
    """Installed by the project's own Makefile target when missing (never skipped)."""
    if not Path(CHROMIUM).exists():
        subprocess.run(["make", "chromium"], cwd=ROOT, check=True, timeout=900)
    return CHROMIUM


def shoot(url: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        browser = Chromium(ensure_chromium(), profile)
        try:
            browser.call("Page.enable")
            browser.call("Page.navigate", url=url)
            for _ in range(120):
                found = browser.call(
                    "Runtime.evaluate",
                    expression=PLAYERS_READY,
                    awaitPromise=True,
                    returnByValue=True,
                )
                if found.get("result", {}).get("value") is True:
                    break
                time.sleep(0.25)
            else:
                raise AssertionError("the page never showed three loaded players")
            cards = browser.js("document.querySelectorAll('article.card').length")
            text = browser.js("document.body.innerText")
            SHOT.parent.mkdir(parents=True, exist_ok=True)
            browser.screenshot(SHOT)
        finally:
            browser.close()
    return int(cards), str(text)


async def test_the_page_shows_thumbnails_and_players(api: ApiEnv) -> None:
    word = uuid.uuid4().hex[:6]
    ids = []
    for prompt in DEMO:
        body = JobCreate(prompt=f"{prompt} ({word})", return_last_frame=True, resolution="480p")
        ids.append((await api.client.create_job(body)).job.job_id)
    for job_id in ids:
        done = await asyncio.wait_for(api.client.wait(job_id, interval=0.2), 60)
        assert done.outcome == Outcome.SUCCEEDED
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {api.acme.key}"}) as http:
        link = (await http.post(f"{api.url}/v1/page-links")).json()
    cards, text = await asyncio.to_thread(shoot, link["url"])
    assert cards == 3
    assert "succeeded" in text and "mini" in text and api.acme.name in text
    assert SHOT.stat().st_size > 10_000


async def test_sign_in_by_form_and_filter_by_outcome(api: ApiEnv) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        login = await http.get("/")
        assert login.status_code == 200 and 'name="api_key"' in login.text
        refused = await http.post("/login", content="api_key=sdp_wrong")
        assert refused.status_code == 401
        signed = await http.post(
            "/login",
            content=f"api_key={api.acme.key}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert signed.status_code == 303
        cookie = signed.cookies.get("seedance_session")
        assert cookie and api.acme.key not in cookie
        assert "HttpOnly" in signed.headers["set-cookie"]
    async with httpx.AsyncClient(base_url=api.url, cookies={"seedance_session": cookie}) as http:
        page = await http.get("/?outcome=rejected_moderation")
        assert page.status_code == 200 and "No jobs with outcome rejected_moderation" in page.text
        # The cookie works for the API and the durable links; it names one tenant.
        jobs = await http.get("/v1/jobs")
        assert jobs.status_code == 200
        expired = await http.get("/?t=forged.token")
        assert expired.status_code == 401
