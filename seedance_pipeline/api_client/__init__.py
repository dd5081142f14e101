"""A typed Python client for the seedance-pipeline HTTP API (sync and async, httpx).

    from seedance_pipeline.api_client import SeedanceClient, JobCreate
    with SeedanceClient("http://127.0.0.1:8702", api_key="sdp_...") as api:
        job = api.create_job(JobCreate(prompt="a red fox in snow"), idempotency_key="order-17")
        job = api.wait(job.job_id)
        api.download_video(job.job_id, "fox.mp4")

Bodies are the server's own pydantic models (`core.api_schema`); nothing here imports FastAPI.
"""

from seedance_pipeline.api_client.client import (
    ApiError,
    AsyncSeedanceClient,
    Created,
    SeedanceClient,
)
from seedance_pipeline.core.api_schema import (
    BatchCreate,
    BatchProgress,
    CostReportBody,
    EstimateResponse,
    Job,
    JobCreate,
    JobList,
    JobSummary,
)

__all__ = [
    "ApiError",
    "AsyncSeedanceClient",
    "BatchCreate",
    "BatchProgress",
    "CostReportBody",
    "Created",
    "EstimateResponse",
    "Job",
    "JobCreate",
    "JobList",
    "JobSummary",
    "SeedanceClient",
]
