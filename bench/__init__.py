"""Benchmark harness: throughput, completion-to-storage latency, API budget, worker memory
and large copies, each measured next to a same-run baseline (`python -m bench`, `make bench`).
"""
