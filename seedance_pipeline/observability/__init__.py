"""Logging and metrics set-up shared by the worker, the starter and the receivers."""
