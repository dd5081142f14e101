"""Safe deploys: committed histories of every job path replay against the current workflow.

A change that would break running jobs (a reordered activity, a new timer, a removed branch)
raises a nondeterminism error here. Nothing is deployed yet: there is one history shape, and a
change re-records it (`python -m tests.replay.record`). After the first deployment a change
goes behind `workflow.patched(...)` (docs/architecture.md, "The patch lifecycle") and its new
histories are added beside the old ones.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from seedance_pipeline.core.models import GenerationInput, JobRecord
from seedance_pipeline.workflows.generation import GenerationWorkflow
from tests.replay.record import PATHS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_job_path_has_a_history() -> None:
    assert {p.stem for p in HISTORIES} == set(PATHS)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[GenerationWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


@workflow.defn(name="GenerationWorkflow", sandboxed=False)
class ChangedGenerationWorkflow:
    """Stands in for a careless edit: the first step calls a different activity."""

    @workflow.run
    async def run(self, inp: GenerationInput) -> JobRecord:
        await workflow.execute_activity(
            "something_else", inp, start_to_close_timeout=timedelta(seconds=5)
        )
        raise ApplicationError("unreachable")


async def test_a_changed_workflow_is_caught() -> None:
    """The check has teeth: the success history fails to replay against the changed code."""
    history = WorkflowHistory.from_json(
        "replay-success", (Path(__file__).parent / "histories" / "success.json").read_text()
    )
    replayer = Replayer(
        workflows=[ChangedGenerationWorkflow], data_converter=pydantic_data_converter
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)
