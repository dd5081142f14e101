"""One way to connect to Temporal, for the worker, the starter and the webhook receiver.

Connection settings come from the SDK's environment config (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, profiles), defaulting to localhost:7233. The
pydantic data converter is always set: every model crossing a Temporal boundary is pydantic.
"""

from __future__ import annotations

import os
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime


class TemporalUnavailable(RuntimeError):
    """No Temporal server answered; the message says where we looked and how to start one."""


def connect_config() -> dict[str, Any]:
    # An empty TEMPORAL_API_KEY= (a blank line in an env file) would switch the SDK to TLS.
    overrides = {k: v for k, v in os.environ.items() if k.startswith("TEMPORAL_") and v.strip()}
    config: dict[str, Any] = dict(
        ClientConfig.load_client_connect_config(override_env_vars=overrides)
    )
    config.setdefault("target_host", "localhost:7233")
    return config


async def connect(runtime: Runtime | None = None, **extra: Any) -> Client:
    config = connect_config()
    config.update(extra)
    try:
        return await Client.connect(
            data_converter=pydantic_data_converter, runtime=runtime, **config
        )
    except RuntimeError as exc:
        raise TemporalUnavailable(
            f"cannot reach Temporal at {config['target_host']} ({exc}). Start the embedded "
            "stack with `make up`, or set TEMPORAL_ADDRESS to your cluster."
        ) from exc


def with_pydantic(client: Client) -> Client:
    """The same connection with the pydantic converter (test environments' clients lack it)."""
    config = client.config()
    config["data_converter"] = pydantic_data_converter
    return Client(**config)
