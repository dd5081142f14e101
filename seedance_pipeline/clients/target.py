"""Which Temporal a process talks to, and why.

In order: `TEMPORAL_ADDRESS` (or an SDK environment-config profile that names an address),
then `TEMPORAL_PORT` on this machine (the variable `make up` moves Temporal with), then the
address `make up` recorded (`adapters.stack_record`), then the SDK's default `localhost:7233`.

The reason travels with the address so the CLI can say which stack it talks to when that is
not the default, and can warn when the stack `make up` recorded is not the one answering.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError

from seedance_pipeline.adapters.stack_record import StackRecord, read_record, record_path

DEFAULT_ADDRESS = "localhost:7233"
_DEFAULT_SPELLINGS = frozenset({"localhost:7233", "127.0.0.1:7233", "[::1]:7233"})


@dataclass(frozen=True)
class Target:
    address: str
    source: str
    """`TEMPORAL_ADDRESS`, `TEMPORAL_PORT`, the record's path, or `default`."""
    record: StackRecord | None
    record_file: Path

    @property
    def is_default(self) -> bool:
        return self.address in _DEFAULT_SPELLINGS

    @property
    def from_record(self) -> bool:
        return self.record is not None and self.source == str(self.record_file)


def sdk_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    # An empty TEMPORAL_API_KEY= (a blank line in an env file) would switch the SDK to TLS.
    return {k: v for k, v in environ.items() if k.startswith("TEMPORAL_") and v.strip()}


def resolve_target(environ: Mapping[str, str] | None = None) -> tuple[Target, dict[str, object]]:
    """The target and the SDK's connect config (TLS, API key, namespace) to reach it."""
    env = os.environ if environ is None else environ
    config: dict[str, object] = dict(
        ClientConfig.load_client_connect_config(override_env_vars=sdk_overrides(env))
    )
    record = read_record()
    file = record_path()
    explicit = config.get("target_host")
    if isinstance(explicit, str) and explicit:
        source = "TEMPORAL_ADDRESS" if env.get("TEMPORAL_ADDRESS", "").strip() else "profile"
        target = Target(explicit, source, record, file)
    elif env.get("TEMPORAL_PORT", "").strip():
        target = Target(f"127.0.0.1:{env['TEMPORAL_PORT'].strip()}", "TEMPORAL_PORT", record, file)
    elif record is not None:
        target = Target(record.temporal, str(file), record, file)
    else:
        target = Target(DEFAULT_ADDRESS, "default", None, file)
    config["target_host"] = target.address
    return target, config


async def stack_notes(client: Client, target: Target) -> list[str]:
    """What a user should know about the stack this command talks to (one line each)."""
    notes: list[str] = []
    if not target.is_default:
        notes.append(f"note: Temporal at {target.address} (from {target.source})")
    record = target.record
    if record is None:
        return notes
    same_place = same_address(record.temporal, target.address)
    if same_place and not record.alive("temporal"):
        notes.append(
            f"warning: the stack recorded in {target.record_file} is not running (its Temporal "
            f"process {record.pids.get('temporal')} is gone); start it with `make up`"
        )
    elif same_place and record.namespace_id:
        answering = await _namespace_id(client, record.namespace)
        if answering is not None and answering != record.namespace_id:
            notes.append(
                f"warning: the Temporal answering at {target.address} is not the stack "
                f"`make up` recorded in {target.record_file}: another server has its port"
            )
    elif not same_place and record.alive("temporal"):
        notes.append(
            f"note: the stack `make up` started listens on {record.temporal}; this command "
            f"talks to {target.address} (from {target.source})"
        )
    return notes


def same_address(a: str, b: str) -> bool:
    def norm(value: str) -> str:
        host, _, port = value.rpartition(":")
        return f"{'127.0.0.1' if host in ('localhost', '[::1]', '') else host}:{port}"

    return norm(a) == norm(b)


async def _namespace_id(client: Client, namespace: str) -> str | None:
    try:
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
    except RPCError:
        return None
    return str(described.namespace_info.id)
