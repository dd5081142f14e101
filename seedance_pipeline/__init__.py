"""seedance-pipeline: durable Seedance video generation on Temporal.

Imports nothing at package level, so `python3 -m seedance_pipeline.stack.postgres` runs on the
system interpreter before the project's venv exists.
"""
