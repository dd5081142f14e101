"""All I/O: one class per dependency, constructed with its clients (see worker.py)."""
