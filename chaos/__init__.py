"""`make chaos`: fault scenarios against the embedded stack, invariants checked after each.

`scenarios` (data) -> `runner` (jobs, fault phases, `disruptions`) -> `evidence` (Temporal,
emulator, ledger, storage) -> `invariants` (pure checks) -> `report` (JSON and Markdown).
"""
