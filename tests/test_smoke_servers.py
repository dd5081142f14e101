"""The embedded servers start from the packaged binaries, offline."""

from temporalio.client import Client


async def test_dev_server_has_search_attributes(client: Client) -> None:
    """Every custom search attribute is registered on the session's dev server."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from seedance_pipeline.core.search_attributes import ALL_KEYS

    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    assert {k.name for k in ALL_KEYS} <= set(resp.custom_attributes)
