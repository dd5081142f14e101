"""The pipeline fixtures (real emulator, webhook receiver, workers on loopback), shared with
tests/pipeline so security tests drive the same stack."""

from tests.pipeline.conftest import emulator, pipeline, pipeline_factory, webhook_url

__all__ = ["emulator", "pipeline", "pipeline_factory", "webhook_url"]
