"""Sorting listed tasks for an ambiguous create: the seed proves mine or another's, a claim by
another create wins over everything, no seed to compare leaves a task unproven."""

from __future__ import annotations

from datetime import UTC, datetime

from seedance_pipeline.core.attribution import sort_listed
from seedance_pipeline.core.fingerprint import Fingerprint
from seedance_pipeline.core.models import ProviderTask, TaskClaim

ME = Fingerprint("job-1", "run-1", 2)
OTHER = Fingerprint("job-2", "run-9", 1)


def listed(task_id: str, seed: int | None) -> ProviderTask:
    return ProviderTask(id=task_id, status="running", seed=seed)


def claim(task_id: str, who: Fingerprint) -> TaskClaim:
    return TaskClaim(
        task_id=task_id,
        job_id=who.job_id,
        run=who.run,
        submit_no=who.submit_no,
        route="byteplus",
        claimed_at=datetime(2026, 11, 24, tzinfo=UTC),
    )


def test_the_echoed_seed_sorts_mine_from_anothers() -> None:
    tasks = [listed("a", ME.seed), listed("b", OTHER.seed), listed("c", None)]
    found = sort_listed(tasks, me=ME, expected_seed=ME.seed, claims={})
    assert [t.id for t in found.mine] == ["a"]
    assert [t.id for t in found.others] == ["b"]
    assert [t.id for t in found.unproven] == ["c"]
    assert not found.none_can_be_mine


def test_a_claim_by_another_create_wins_even_over_a_matching_seed() -> None:
    tasks = [listed("a", ME.seed), listed("b", None)]
    claims = {"a": claim("a", OTHER), "b": claim("b", ME)}
    found = sort_listed(tasks, me=ME, expected_seed=ME.seed, claims=claims)
    assert [t.id for t in found.others] == ["a"] and [t.id for t in found.unproven] == ["b"]


def test_with_only_others_listed_a_new_create_is_safe() -> None:
    found = sort_listed([listed("b", OTHER.seed)], me=ME, expected_seed=ME.seed, claims={})
    assert found.none_can_be_mine


def test_a_pinned_seed_proves_nothing() -> None:
    tasks = [listed("a", 42), listed("b", 42)]
    found = sort_listed(tasks, me=ME, expected_seed=None, claims={})
    assert [t.id for t in found.unproven] == ["a", "b"] and not found.mine
