"""Which jobs own which provider tasks, from Temporal visibility (the `ProviderTaskId`
search attribute every job sets as soon as it knows its task).

Used when reconciling an ambiguous create: a task in the provider's list that another job
already owns is not ours, so it must neither be adopted nor block a safe resubmit.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from seedance_pipeline.core.models import TaskOwnersInput
from seedance_pipeline.core.search_attributes import PROVIDER_TASK_ID


class JobDirectoryActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="task_owners")
    async def task_owners(self, data: TaskOwnersInput) -> dict[str, str]:
        """task ID -> owning job ID, for the IDs some other job has claimed."""
        owners: dict[str, str] = {}
        ids = [t for t in data.task_ids if t.replace("-", "").isalnum()]  # query-safe IDs only
        for start in range(0, len(ids), 50):
            chunk = ids[start : start + 50]
            quoted = ", ".join(f"'{t}'" for t in chunk)
            query = f"ProviderTaskId IN ({quoted})"
            async for execution in self._client.list_workflows(query):
                task_id = execution.typed_search_attributes.get(PROVIDER_TASK_ID)
                if task_id and execution.id != data.job_id:
                    owners[task_id] = execution.id
        return owners
