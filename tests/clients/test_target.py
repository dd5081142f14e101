"""Which Temporal a command talks to, and what it says about it: TEMPORAL_ADDRESS, then
TEMPORAL_PORT, then the stack `make up` recorded, then the default; a warning when the
recorded stack is gone or another server answers on its port."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.adapters.stack_record import StackRecord, read_record, write_record
from seedance_pipeline.clients.target import DEFAULT_ADDRESS, resolve_target, stack_notes

DEAD_PID = 2**22 + 12345  # above the kernel's pid_max default: never a live process


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEEDANCE_DATA_DIR", str(tmp_path))
    return tmp_path


def record(data: Path, address: str, *, pid: int | None = None, ns_id: str = "") -> StackRecord:
    made = StackRecord(
        temporal=address,
        namespace_id=ns_id,
        pids={"temporal": os.getpid() if pid is None else pid},
        logs={"worker": str(data / "logs" / "worker.log")},
    )
    write_record(made, data)
    return made


def test_the_order_of_sources(data: Path) -> None:
    target, config = resolve_target({})
    assert (target.address, target.source, target.record) == (DEFAULT_ADDRESS, "default", None)
    record(data, "127.0.0.1:17233")
    from_file, config = resolve_target({})
    assert from_file.address == "127.0.0.1:17233" and from_file.from_record
    assert config["target_host"] == "127.0.0.1:17233"
    by_port, _ = resolve_target({"TEMPORAL_PORT": "27233"})
    assert (by_port.address, by_port.source) == ("127.0.0.1:27233", "TEMPORAL_PORT")
    explicit, _ = resolve_target(
        {"TEMPORAL_ADDRESS": "temporal.example:7233", "TEMPORAL_PORT": "1"}
    )
    assert (explicit.address, explicit.source) == ("temporal.example:7233", "TEMPORAL_ADDRESS")
    blank, _ = resolve_target({"TEMPORAL_ADDRESS": " ", "TEMPORAL_PORT": ""})
    assert blank.from_record


def test_a_corrupt_record_is_no_record(data: Path) -> None:
    (data / "stack.json").write_text("{not json")
    assert read_record(data) is None
    assert resolve_target({})[0].source == "default"


async def _namespace_id(client: Client) -> str:
    """The session server's namespace ID. A call racing the server's periodic connection
    recycling (GOAWAY) can end CANCELLED, which the SDK does not retry: ask again."""
    for attempt in range(3):
        try:
            described = await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace="default")
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.CANCELLED or attempt == 2:
                raise
            continue
        return str(described.namespace_info.id)
    raise AssertionError("unreachable")


async def test_notes_say_where_and_warn_when_the_record_lies(client: Client, data: Path) -> None:
    here = client.service_client.config.target_host
    port = here.rsplit(":", 1)[1]
    answering = await _namespace_id(client)

    record(data, f"127.0.0.1:{port}", ns_id=answering)
    target, _ = resolve_target({})
    assert await stack_notes(client, target) == [
        f"note: Temporal at 127.0.0.1:{port} (from {data / 'stack.json'})"
    ]

    record(data, f"127.0.0.1:{port}", ns_id="01a2-some-other-server")
    target, _ = resolve_target({})
    warned = await stack_notes(client, target)
    assert any("is not the stack `make up` recorded" in n for n in warned), warned

    record(data, f"127.0.0.1:{port}", pid=DEAD_PID, ns_id=answering)
    target, _ = resolve_target({})
    gone = await stack_notes(client, target)
    assert any("is not running" in n and "make up" in n for n in gone), gone

    record(data, "127.0.0.1:1", ns_id=answering)
    target, _ = resolve_target({"TEMPORAL_ADDRESS": here})
    elsewhere = await stack_notes(client, target)
    assert any("the stack `make up` started listens on 127.0.0.1:1" in n for n in elsewhere)
