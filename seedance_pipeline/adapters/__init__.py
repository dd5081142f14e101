"""I/O building blocks shared by the activities (worker) and the CLI: the ModelArk HTTP client,
object stores, the ledger stores. No Temporal here; `activities/` wraps them."""
