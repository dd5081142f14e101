"""Deterministic workflow code only: stdlib, temporalio and the pure models from core/."""
