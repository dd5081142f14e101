"""The create's seed fingerprint: derived when the request leaves the seed to the provider,
stable, within the provider's range, different per job, run and create, and the listed task's
echoed seed proves (or disproves) which create made it."""

from __future__ import annotations

from seedance_pipeline.core.fingerprint import (
    SEED_SPACE,
    Fingerprint,
    create_seed,
    expected_seed,
    verdict,
)
from seedance_pipeline.core.models import GenerationRequest, ProviderTask
from seedance_pipeline.core.request_body import build_create_body

FP = Fingerprint("job-1", "run-a", 1)


def body(request: GenerationRequest, fingerprint: Fingerprint | None) -> dict[str, object]:
    return build_create_body(
        request, "dreamina-seedance-2-0-mini-260615", "720p", "16:9", None, fingerprint=fingerprint
    )


def test_a_random_seed_request_sends_the_creates_derived_seed() -> None:
    request = GenerationRequest(prompt="a fox")
    assert body(request, FP)["seed"] == FP.seed == Fingerprint("job-1", "run-a", 1).seed
    assert 0 <= FP.seed < SEED_SPACE
    assert body(request, None)["seed"] == -1


def test_a_pinned_seed_is_sent_as_asked_and_carries_no_fingerprint() -> None:
    request = GenerationRequest(prompt="a fox", seed=42)
    assert body(request, FP)["seed"] == 42 == create_seed(request, FP)
    assert expected_seed(request, FP) is None


def test_seeds_differ_per_job_run_and_create() -> None:
    seeds = {
        Fingerprint(job, run, n).seed
        for job in ("job-1", "job-2")
        for run in ("run-a", "run-b")
        for n in (1, 2, 3)
    }
    assert len(seeds) == 12
    many = {Fingerprint(f"job-{i}", "r", 1).seed for i in range(5000)}
    assert len(many) >= 4990  # 2^32 space: a handful of collisions at most


def test_the_echoed_seed_decides_whose_a_listed_task_is() -> None:
    request = GenerationRequest(prompt="a fox")
    mine = expected_seed(request, FP)
    assert verdict(ProviderTask(id="t", status="running", seed=FP.seed), mine) == "match"
    other = Fingerprint("job-2", "run-a", 1).seed
    assert verdict(ProviderTask(id="t", status="running", seed=other), mine) == "mismatch"
    assert verdict(ProviderTask(id="t", status="running"), mine) == "unknown"  # list omits it
    assert verdict(ProviderTask(id="t", status="running", seed=42), None) == "unknown"
