"""The embedded stack: starting and stopping local servers for `make up`, demos and tests."""
