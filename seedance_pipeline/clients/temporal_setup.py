"""Prepare a Temporal namespace for the pipeline: register the custom search attributes.

Used by `starter.py setup` against an existing cluster, and by test fixtures for servers that
are not started with `--search-attribute` flags (the time-skipping server).
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core.search_attributes import ALL_KEYS


async def missing_search_attributes(client: Client) -> list[str]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [k.name for k in ALL_KEYS if k.name not in listed.custom_attributes]


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register every attribute the pipeline upserts that is missing; return what was added."""
    try:
        missing = set(await missing_search_attributes(client))
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        missing = {k.name for k in ALL_KEYS}  # the time-skipping server cannot list them
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    k.name: IndexedValueType.ValueType(k.indexed_value_type)
                    for k in ALL_KEYS
                    if k.name in missing
                },
            )
        )
    return sorted(missing)
