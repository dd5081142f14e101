"""Readers for the deployment files, shared by the static deploy tests.

No Docker engine runs on these machines, so the compose files, the Dockerfile and the
Prometheus/Grafana configuration are checked as data: parsed with PyYAML, `${VAR:-default}`
resolved the way Compose would with an empty environment.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(REPO / "docker-compose.yml")
    return data


@cache
def emulator_override() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(REPO / "docker-compose.emulator.yml")
    return data


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


@cache
def seedance_config() -> dict[str, Any]:
    return tomllib.loads(
        (REPO / "seedance_pipeline" / "config" / "seedance.toml").read_text(encoding="utf-8")
    )


def resolve(value: object) -> str:
    """The value Compose would use with nothing set: `${X:-d}` -> d, `${X:?m}` -> <X>."""

    def one(match: re.Match[str]) -> str:
        op, arg = match["op"], match["arg"] or ""
        if op in (":-", "-"):
            return arg
        return f"<{match['name']}>"

    return _INTERPOLATION.sub(one, str(value))


def interpolated_names(text: str, *, required_only: bool = False) -> set[str]:
    """Variable names a compose file reads from the environment (or only the `:?` ones)."""
    return {
        m["name"]
        for m in _INTERPOLATION.finditer(text)
        if not required_only or (m["op"] or "").endswith("?")
    }


def is_pure_interpolation(value: object) -> bool:
    return bool(_INTERPOLATION.fullmatch(str(value)))


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, as a mapping (Compose accepts a list of KEY=VALUE too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def command_argv(service: dict[str, Any], key: str = "command") -> list[str]:
    value = service.get(key) or []
    return value.split() if isinstance(value, str) else [str(v) for v in value]


def env_files(service: dict[str, Any]) -> list[dict[str, Any]]:
    files = service.get("env_file") or []
    if isinstance(files, str):
        files = [files]
    return [{"path": f, "required": True} if isinstance(f, str) else f for f in files]


def one_shot_services() -> set[str]:
    """Services others wait for with `service_completed_successfully`: they run and exit."""
    names: set[str] = set()
    for service in services().values():
        for dep, spec in (service.get("depends_on") or {}).items():
            if spec.get("condition") == "service_completed_successfully":
                names.add(dep)
    return names


def on_demand_services() -> set[str]:
    """Services only started by hand (`docker compose run`), e.g. the CLI."""
    return {n for n, s in services().items() if "tools" in (s.get("profiles") or [])}


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of the service's bind mounts (sources starting with ./)."""
    mounts: list[tuple[str, str]] = []
    for volume in service.get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            mounts.append((source, target))
    return mounts


def named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> container path, for the service's named-volume mounts."""
    result: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        if not source.startswith(("./", "/", "~")):
            result[source] = target
    return result


def host_path_for(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a bind-mounted container path comes from."""
    for source, target in bind_mounts(service):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return REPO / source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not inside any bind mount of the service")
