"""The custom search attributes that make jobs filterable in the Web UI.

One list, used by the workflow (upserts), `make up` (dev server flags), the test fixtures and
`starter.py setup` (operator service), so the Web UI, tests and production agree.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

JOB_STATE = SearchAttributeKey.for_keyword("JobState")
OUTCOME = SearchAttributeKey.for_keyword("Outcome")
MODEL = SearchAttributeKey.for_keyword("Model")
MODEL_ID = SearchAttributeKey.for_keyword("ModelId")
ROUTE = SearchAttributeKey.for_keyword("Route")
PROVIDER_TASK_ID = SearchAttributeKey.for_keyword("ProviderTaskId")
COST_USD = SearchAttributeKey.for_float("CostUsd")
COST_CNY = SearchAttributeKey.for_float("CostCny")
FALLBACK = SearchAttributeKey.for_bool("Fallback")
ERROR_CODE = SearchAttributeKey.for_keyword("ErrorCode")
TENANT = SearchAttributeKey.for_keyword("Tenant")
"""Set with the start (never upserted): the API shows a tenant only its own jobs."""
BATCH = SearchAttributeKey.for_keyword("Batch")
"""Set with the start of each job of an API batch: progress counts and `?batch=` filters."""

ALL_KEYS: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    JOB_STATE,
    OUTCOME,
    MODEL,
    MODEL_ID,
    ROUTE,
    PROVIDER_TASK_ID,
    COST_USD,
    COST_CNY,
    FALLBACK,
    ERROR_CODE,
    TENANT,
    BATCH,
)

_CLI_TYPES = {
    "KEYWORD": "Keyword",
    "DOUBLE": "Double",
    "BOOL": "Bool",
    "INT": "Int",
    "TEXT": "Text",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
}


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPES[key.indexed_value_type.name]}"]
    return flags
