"""The HTTP API for applications: jobs with idempotency keys, tenants by API key, durable
links to stored videos, batches, estimates, costs and a jobs page (FastAPI on uvicorn;
`python -m seedance_pipeline.api`)."""
