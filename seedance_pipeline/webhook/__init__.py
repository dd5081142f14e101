"""The callback receiver: the provider's `callback_url` lands here and becomes a workflow signal.

`POST /callbacks/{token}` checks the token (it names the job and proves we issued the URL),
bounds and validates the body, and signals the job's workflow. Signals, not updates: the server
stores a signal even while no worker runs, so callbacks survive worker deploys.
"""
