"""Client-side helpers shared by the worker, the starter and the webhook receiver."""
