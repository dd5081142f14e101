"""Boundaries that keep bad input from doing harm: object keys stay under the prefix, the
copy step follows only the provider's output hosts, and arbitrary requests, provider bodies
and error codes are refused or classified, never crashed on (property-based)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.storage import StorageActivities, object_key
from seedance_pipeline.adapters.object_store import FileStore, UnsafeKey, safe_key
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import CopyOutputInput, GenerationRequest, ProviderTask
from seedance_pipeline.core.outcomes import classify_http
from seedance_pipeline.core.validation import validate_request

SETTINGS = load_settings()


@pytest.mark.parametrize("part", ["..", ".", "a/b", "a\\b", "", "x\x00y"])
def test_key_parts_that_could_escape_are_refused(part: str) -> None:
    with pytest.raises(UnsafeKey):
        safe_key("2026", part, "video.mp4")


def test_file_store_refuses_a_key_outside_its_root(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "outputs")
    with pytest.raises(UnsafeKey):
        store.uri("../../etc/passwd")


def test_object_keys_use_only_the_job_id_and_date() -> None:
    key = object_key("job-abc", datetime(2026, 11, 24, tzinfo=UTC), "video.mp4")
    assert key == "2026/11/24/job-abc/video.mp4"


async def test_copy_refuses_urls_off_the_providers_output_hosts(tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        storage = StorageActivities(http, FileStore(tmp_path), SETTINGS)
        copy = CopyOutputInput(
            job_id="j1",
            route="byteplus",
            kind="video",
            url="http://169.254.169.254/latest/meta-data/",
            requested_at=datetime.now(UTC),
        )
        with pytest.raises(ApplicationError) as info:
            await ActivityEnvironment().run(storage.copy_output, copy)
    assert info.value.type == "OutputHostRefused" and info.value.non_retryable
    assert not any(tmp_path.iterdir())


FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "prompt": st.one_of(st.text(max_size=50), st.integers(), st.none()),
        "model": st.one_of(st.sampled_from(["mini", "fast", "pro", "ultra", ""]), st.integers()),
        "duration": st.one_of(st.integers(-5, 100), st.text(max_size=3), st.floats()),
        "resolution": st.one_of(
            st.sampled_from(["480p", "720p", "1080p", "4k"]), st.text(max_size=5)
        ),
        "ratio": st.one_of(st.sampled_from(["16:9", "9:16", "adaptive", "2:1"]), st.none()),
        "seed": st.one_of(st.integers(-10, 2**33), st.text(max_size=2)),
        "service_tier": st.sampled_from(["default", "flex", "turbo"]),
        "references": st.lists(
            st.fixed_dictionaries(
                {"url": st.text(max_size=30)},
                optional={
                    "kind": st.sampled_from(["image", "video", "audio", "pdf"]),
                    "role": st.sampled_from(
                        [
                            "first_frame",
                            "last_frame",
                            "reference_image",
                            "reference_video",
                            "reference_audio",
                            "boss",
                        ]
                    ),
                },
            ),
            max_size=14,
        ),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FIELDS)
def test_any_request_is_refused_by_field_or_accepted(fields: dict[str, Any]) -> None:
    """Shape errors stop at the model; valid shapes get a list of named problems or none."""
    try:
        request = GenerationRequest.model_validate(fields)
    except ValidationError:
        return
    for problem in validate_request(request, SETTINGS):
        assert problem.field and problem.message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
TASKISH = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON | st.text(max_size=40),
        "status": JSON
        | st.sampled_from(
            ["queued", "running", "succeeded", "failed", "expired", "cancelled", "exploded"]
        ),
        "usage": JSON,
        "content": JSON,
        "error": JSON,
        "created_at": JSON,
        "updated_at": JSON,
        "failure_reason": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(TASKISH)
def test_any_provider_body_parses_or_is_refused(body: dict[str, Any]) -> None:
    try:
        task = ProviderTask.model_validate(body)
    except ValidationError:
        return
    assert task.status in {"queued", "running", "succeeded", "failed", "expired", "cancelled"}
    assert isinstance(task.terminal, bool)


MODERATION = [
    "InputTextSensitiveContentDetected",
    "InputImageSensitiveContentDetected",
    "OutputVideoSensitiveContentDetected",
    "OutputAudioSensitiveContentDetected",
    "SensitiveContentDetected",
]


@settings(max_examples=300, deadline=None)
@given(st.integers(100, 599), st.one_of(st.none(), st.text(max_size=60)))
def test_any_error_code_is_classified(status: int, code: str | None) -> None:
    cls = classify_http(status, code)
    assert cls.outcome.value in {
        "failed_infra",
        "failed_input",
        "rejected_moderation",
        "failed_quota",
    }


@settings(max_examples=200, deadline=None)
@given(
    st.integers(400, 599),
    st.sampled_from(MODERATION),
    st.one_of(
        st.just(""),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", min_size=1, max_size=20).map(
            lambda s: "." + s
        ),
    ),
)
def test_moderation_is_never_retried(status: int, code: str, suffix: str) -> None:
    """Whatever the HTTP status and sub-code, a moderation code is final (never auto-retried)."""
    cls = classify_http(status, code + suffix)
    assert cls.outcome.value == "rejected_moderation" and not cls.retryable
