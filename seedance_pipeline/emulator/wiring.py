"""How an emulated stack points a worker at the emulator without touching the shipped
output-host allow-list (`make up`, the bench and chaos stacks, the pipeline tests).

The routes' base URLs go to the emulator. Outputs are downloaded either from the provider's
real TOS host names, which the worker's download client connects to the emulator
(`storage.resolve_hosts`; the emulator runs with `tos_urls`), or, for stacks whose other
clients download from the emulator's own address, from loopback hosts added *on top of* the
shipped `output_hosts`, never instead of them.
"""

from __future__ import annotations

import json

from seedance_pipeline.config.loader import DEFAULT_CONFIG_PATH, load_settings
from seedance_pipeline.emulator.config import DEFAULT_TOS_HOSTS

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
ROUTES = ("byteplus", "volcengine")


def resolve_hosts(emulator_url: str) -> dict[str, str]:
    """Every TOS host the emulator may name -> the emulator's address."""
    return {host: emulator_url.rstrip("/") for host in DEFAULT_TOS_HOSTS.values()}


def output_hosts_with_loopback(route: str) -> list[str]:
    """The shipped allow-list of `route` with loopback added on top."""
    shipped = load_settings(DEFAULT_CONFIG_PATH).route(route).output_hosts
    return [*shipped, *LOOPBACK_HOSTS]


def emulated_env(api_base: str, emulator_url: str, *, loopback_outputs: bool) -> dict[str, str]:
    """`SEEDANCE_*` variables for a worker of an emulated stack."""
    env = {"SEEDANCE_STORAGE__RESOLVE_HOSTS": json.dumps(resolve_hosts(emulator_url))}
    for route in ROUTES:
        env[f"SEEDANCE_ROUTES__{route.upper()}__BASE_URL"] = api_base
        if loopback_outputs:
            hosts = output_hosts_with_loopback(route)
            env[f"SEEDANCE_ROUTES__{route.upper()}__OUTPUT_HOSTS"] = json.dumps(hosts)
    return env
