"""Static checks of docker-compose.yml and docker-compose.emulator.yml.

No Docker engine runs here, so these read the files as data and check what `docker compose up`
relies on: pinned images, health checks and start order, ports, volumes, the env each process
needs, and that the one-shot setup registers exactly the search attributes the workflow upserts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from seedance_pipeline.core.search_attributes import ALL_KEYS, dev_server_flags
from seedance_pipeline.emulator.wiring import resolve_hosts
from tests.deploy.support import (
    DEPLOY,
    REPO,
    bind_mounts,
    command_argv,
    compose,
    emulator_override,
    env_files,
    environment,
    host_path_for,
    interpolated_names,
    is_pure_interpolation,
    named_volumes,
    on_demand_services,
    one_shot_services,
    pyproject,
    resolve,
    seedance_config,
    services,
)

OWN_IMAGE = "seedance-pipeline"
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|PASSWD|PWD|TOKEN)$")
PUBLISHED_PORTS = {7233, 8080, 8701, 8702, 9090, 3000, 9000, 9001}
VALID_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# Columns the Postgres visibility schema pre-allocates per custom attribute type
# (schema/postgresql/v12/visibility/schema.sql: Keyword01..10, Double01..03, ...).
POSTGRES_VISIBILITY_SLOTS = {
    "Keyword": 10,
    "Text": 3,
    "Int": 3,
    "Double": 3,
    "Bool": 3,
    "Datetime": 3,
    "KeywordList": 3,
}


def app_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if resolve(s["image"]).startswith(OWN_IMAGE)}


def image_tag(image: str) -> tuple[str, str]:
    reference = image.split("@", 1)[0]
    repository, _, tag = reference.rpartition(":")
    if "/" in tag or not repository:  # a registry port, not a tag: untagged
        return reference, ""
    return repository, tag


def test_uses_the_compose_spec_without_a_version_key() -> None:
    """The Compose spec dropped `version:`; current Compose warns that it is obsolete."""
    assert "version" not in compose()
    assert "version" not in emulator_override()


@pytest.mark.parametrize("name", sorted(services()))
def test_every_image_is_pinned_to_a_version(name: str) -> None:
    """`latest` or no tag makes two `docker compose pull` runs start different software."""
    repository, tag = image_tag(resolve(services()[name]["image"]))
    assert tag, f"{name}: image {repository} has no tag"
    assert tag != "latest", f"{name}: image {repository} is pinned to latest"
    assert re.search(r"\d", tag), f"{name}: tag {tag!r} names no version"


def test_our_image_is_tagged_with_the_package_version() -> None:
    """One build serves every role; its default tag follows pyproject's version."""
    version = pyproject()["project"]["version"]
    images = {resolve(s["image"]) for s in app_services().values()}
    assert images == {f"{OWN_IMAGE}:{version}"}
    assert all(s.get("build") for s in app_services().values())


def test_schema_tool_matches_the_server_version() -> None:
    """temporal-sql-tool migrates to the schema of its own release: it must match the server."""
    server = image_tag(resolve(services()["temporal"]["image"]))[1]
    tools = {
        image_tag(resolve(s["image"]))[1]
        for s in services().values()
        if resolve(s["image"]).startswith("temporalio/admin-tools:")
    }
    assert tools == {server}


@pytest.mark.parametrize("name", sorted(services()))
def test_long_running_services_have_a_healthcheck(name: str) -> None:
    """`depends_on: service_healthy` and `docker compose ps` both need a real probe."""
    if name in one_shot_services() | on_demand_services():
        return
    check = services()[name].get("healthcheck") or {}
    assert not check.get("disable"), f"{name}: healthcheck disabled"
    test = check.get("test")
    assert isinstance(test, list), f"{name}: no healthcheck"
    assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck {test!r}"
    assert len(test) > 1


def test_one_shot_services_run_once() -> None:
    """A restart policy on a setup job would loop it forever after it exits successfully."""
    assert one_shot_services() == {"temporal-schema", "temporal-setup", "minio-setup"}
    for name in one_shot_services():
        assert str(services()[name].get("restart", "no")) == "no", name


def test_depends_on_names_existing_services_with_known_conditions() -> None:
    for name, service in services().items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services(), f"{name} depends on unknown service {dep}"
            assert spec.get("condition") in VALID_CONDITIONS, f"{name} -> {dep}: {spec}"
            if dep in one_shot_services():
                assert spec["condition"] == "service_completed_successfully", (name, dep)


def test_default_services_do_not_wait_for_profile_services() -> None:
    """A dependency hidden behind a profile makes a plain `docker compose up` fail."""
    for name, service in services().items():
        if service.get("profiles"):
            continue
        for dep in service.get("depends_on") or {}:
            assert not services()[dep].get("profiles"), f"{name} waits for profiled {dep}"


def test_start_order_reaches_the_workers_through_the_setup_jobs() -> None:
    """Workers must not start before the namespace, search attributes and bucket exist."""
    deps = services()["worker"]["depends_on"]
    assert deps["temporal-setup"]["condition"] == "service_completed_successfully"
    assert deps["minio-setup"]["condition"] == "service_completed_successfully"
    assert services()["temporal-setup"]["depends_on"]["temporal"]["condition"] == (
        "service_healthy"
    )
    assert services()["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    assert services()["temporal-schema"]["depends_on"]["postgres"]["condition"] == (
        "service_healthy"
    )


def published() -> dict[str, list[dict[str, Any]]]:
    return {n: s.get("ports") or [] for n, s in services().items()}


def test_ports_are_published_once_each() -> None:
    container_ports = {int(p["target"]) for ports in published().values() for p in ports}
    assert container_ports >= PUBLISHED_PORTS
    host_ports = Counter(int(p["published"]) for ports in published().values() for p in ports)
    assert all(count == 1 for count in host_ports.values()), host_ports
    assert not published()["postgres"], "Postgres is for the stack only"
    assert not published()["worker"], "replicas cannot share a host port"


def test_only_the_webhook_listens_beyond_localhost_by_default() -> None:
    """Temporal, the UI, Prometheus, Grafana and MinIO have no auth worth exposing."""
    for name, ports in published().items():
        for port in ports:
            expected = "0.0.0.0" if name == "webhook" else "127.0.0.1"  # noqa: S104
            assert resolve(port["host_ip"]) == expected, (name, port)


def test_state_lives_in_named_volumes() -> None:
    declared = set(compose()["volumes"])
    expected = {
        "postgres": ("postgres-data", "/var/lib/postgresql/data"),
        "minio": ("minio-data", "/data"),
        "grafana": ("grafana-data", "/var/lib/grafana"),
        "prometheus": ("prometheus-data", "/prometheus"),
        "worker": ("ledger-data", "/var/lib/seedance/ledger"),
    }
    for name, (volume, path) in expected.items():
        assert named_volumes(services()[name]).get(volume) == path, name
    used = {v for s in services().values() for v in named_volumes(s)}
    assert used == declared


def test_bind_mounted_files_exist() -> None:
    for name, service in services().items():
        for source, _ in bind_mounts(service):
            assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_worker_gets_temporal_storage_and_ledger_settings() -> None:
    env = {k: resolve(v) for k, v in environment(services()["worker"]).items()}
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "default"
    assert env["SEEDANCE_STORAGE__URI"].startswith("s3://")
    assert urlsplit(env["SEEDANCE_STORAGE__S3_ENDPOINT_URL"]).netloc == "minio:9000"
    assert env["SEEDANCE_LEDGER__URL"].startswith(("sqlite:////var/lib/seedance/", "postgres"))
    assert env["WORKER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104
    assert "SEEDANCE_TEMPORAL__SUBMIT_RATE_PER_SECOND" in env


def test_api_reaches_temporal_storage_and_the_ledger() -> None:
    """The API reads records from Temporal, streams or presigns stored videos, and reports the
    ledger: the same settings as the worker, and the worker's ledger volume."""
    api = services()["api"]
    env = {k: resolve(v) for k, v in environment(api).items()}
    worker = {k: resolve(v) for k, v in environment(services()["worker"]).items()}
    for key in ("TEMPORAL_ADDRESS", "SEEDANCE_STORAGE__URI", "SEEDANCE_LEDGER__URL"):
        assert env[key] == worker[key], key
    assert env["API_PORT"] == "8702"
    assert named_volumes(api).get("ledger-data") == "/var/lib/seedance/ledger"
    argv = command_argv(api)
    assert argv[:3] == ["python", "-m", "seedance_pipeline.api"]
    assert argv[argv.index("--port") + 1] == "8702"
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


def test_webhook_listens_on_all_interfaces_and_reaches_temporal() -> None:
    env = {k: resolve(v) for k, v in environment(services()["webhook"]).items()}
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["WEBHOOK_HOST"] == "0.0.0.0"  # noqa: S104
    assert env["WEBHOOK_PORT"] == "8701"
    assert "/healthz" in " ".join(services()["webhook"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", ["worker", "webhook", "cli", "api"])
def test_secrets_come_from_the_env_file(name: str) -> None:
    """Keys and the callback secret are read from .env at run time, never written here."""
    service = services()[name]
    assert env_files(service) == [{"path": ".env", "required": True}]
    secret_names = {r["api_key_env"] for r in seedance_config()["routes"].values()}
    secret_names.add(seedance_config()["callbacks"]["secret_env"])
    assert not secret_names & set(environment(service)), "set in .env, not in compose"


def test_no_secret_value_is_written_into_a_compose_file() -> None:
    """Anything that looks like a credential must be a ${...} reference to the env file."""
    override = emulator_override()["services"]
    for source in (services(), override):
        for name, service in source.items():
            for key, value in environment(service).items():
                if SECRET_NAME.search(key):
                    assert is_pure_interpolation(value), f"{name}: {key} holds a literal"


def test_temporal_credentials_are_never_set_empty() -> None:
    """An empty TEMPORAL_API_KEY still switches the SDK to TLS and breaks the local server."""
    for source in (services(), emulator_override()["services"]):
        for name, service in source.items():
            for key in environment(service):
                assert not key.startswith(("TEMPORAL_API_KEY", "TEMPORAL_TLS")), (name, key)
    for line in (DEPLOY / "seedance.env.example").read_text().splitlines():
        assert not line.startswith(("TEMPORAL_API_KEY", "TEMPORAL_TLS")), line


def test_env_example_defines_every_required_variable() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    required = interpolated_names(text, required_only=True)
    example = (DEPLOY / "seedance.env.example").read_text()
    defined = {
        line.split("=", 1)[0] for line in example.splitlines() if re.match(r"^[A-Z_]+=", line)
    }
    assert required, "compose should refuse to start without its passwords"
    assert required <= defined, required - defined
    secret_names = {r["api_key_env"] for r in seedance_config()["routes"].values()}
    assert secret_names | {"SEEDANCE_CALLBACK_SECRET"} <= defined


def test_env_example_holds_placeholders_only() -> None:
    """The example is committed: every secret in it is empty or an obvious placeholder."""
    for line in (DEPLOY / "seedance.env.example").read_text().splitlines():
        match = re.match(r"^([A-Z_]+)=(.*)$", line)
        if match and SECRET_NAME.search(match[1]):
            assert match[2] == "" or match[2].startswith("change-me"), line


def test_every_worker_uses_the_same_submit_rate() -> None:
    """The submit queue's rate limit is enforced by the server; differing workers thrash it.

    All workers are replicas of one service, so they share one value by construction.
    """
    runners = [
        n
        for n, s in services().items()
        if command_argv(s)[-2:] == ["-m", "seedance_pipeline.worker"]
    ]
    assert runners == ["worker"]
    assert int(services()["worker"]["deploy"]["replicas"]) >= 2
    assert "container_name" not in services()["worker"]


@pytest.mark.parametrize("name", sorted(app_services()))
def test_app_commands_run_modules_of_the_package(name: str) -> None:
    """`python -m X` only works for modules pyproject installs into the image."""
    service = app_services()[name]
    argv = command_argv(service, "entrypoint") + command_argv(service)
    assert argv[:2] == ["python", "-m"], argv
    module = REPO / Path(*argv[2].split("."))
    assert argv[2].startswith("seedance_pipeline."), argv
    assert module.with_suffix(".py").is_file() or (module / "__main__.py").is_file(), argv


def registered_search_attributes() -> dict[str, str]:
    script = (DEPLOY / "temporal" / "scripts" / "temporal-setup.sh").read_text()
    pairs = re.findall(r"^register (\w+) (\w+)$", script, flags=re.MULTILINE)
    assert len(pairs) == len(dict(pairs)), "an attribute is registered twice"
    return dict(pairs)


def test_setup_registers_exactly_the_workflow_search_attributes() -> None:
    """The workflow upserts these; one missing fails every job's workflow task."""
    flags = dev_server_flags()
    expected = dict(flag.split("=", 1) for flag in flags[1::2])
    assert set(expected) == {key.name for key in ALL_KEYS}
    assert registered_search_attributes() == expected


def test_setup_service_runs_the_registration_script() -> None:
    service = services()["temporal-setup"]
    script = command_argv(service, "entrypoint")[-1]
    assert host_path_for(service, script) == DEPLOY / "temporal" / "scripts" / "temporal-setup.sh"
    env = {k: resolve(v) for k, v in environment(service).items()}
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == resolve(
        environment(services()["worker"])["TEMPORAL_NAMESPACE"]
    )


def test_search_attributes_fit_the_postgres_visibility_store() -> None:
    """Without Elasticsearch, each type has a fixed number of columns; one more fails setup."""
    per_type = Counter(registered_search_attributes().values())
    for type_name, count in per_type.items():
        assert count <= POSTGRES_VISIBILITY_SLOTS[type_name], (type_name, count)


def test_postgres_init_creates_the_databases_the_stack_uses() -> None:
    init = (DEPLOY / "postgres" / "initdb" / "10-databases.sh").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+)", init))
    temporal_env = environment(services()["temporal"])
    schema = (DEPLOY / "temporal" / "scripts" / "temporal-schema.sh").read_text()
    migrated = set(re.findall(r"^migrate (\w+) ", schema, flags=re.MULTILINE))
    assert {temporal_env["DBNAME"], temporal_env["VISIBILITY_DBNAME"]} == migrated
    assert created == migrated | {"ledger"}
    assert ":'temporal_password'" in init, "passwords reach psql as variables, not text"


def test_storage_bucket_is_the_one_the_setup_creates() -> None:
    uri = resolve(environment(services()["worker"])["SEEDANCE_STORAGE__URI"])
    bucket = urlsplit(uri).netloc
    setup = (DEPLOY / "minio" / "setup.sh").read_text()
    assert re.search(rf"^bucket={bucket}$", setup, flags=re.MULTILINE)
    policy = json.loads((DEPLOY / "minio" / "seedance-videos-policy.json").read_text())
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}


def test_emulator_is_an_opt_in_profile() -> None:
    emulator = services()["emulator"]
    assert emulator["profiles"] == ["emulator"]
    assert env_files(emulator) == [], "EMULATOR_* typos are fatal; it needs nothing from .env"
    argv = command_argv(emulator)
    assert argv[:3] == ["python", "-m", "seedance_pipeline.emulator"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # noqa: S104


def test_emulator_override_points_every_route_at_the_emulator() -> None:
    """Mirrors stack/embedded.py: both routes and their keys, callbacks, and outputs on the
    provider's TOS host names connected to the emulator; the shipped allow-list untouched."""
    override = emulator_override()["services"]
    assert set(override) <= set(services())
    emulator_argv = command_argv(services()["emulator"])
    assert "--tos-urls" in emulator_argv
    public = urlsplit(emulator_argv[emulator_argv.index("--public-url") + 1])
    emulator_key = resolve(environment(services()["emulator"])["EMULATOR_API_KEYS"])
    for name in ("worker", "cli"):
        env = {k: resolve(v) for k, v in environment(override[name]).items()}
        mapped = json.loads(env["SEEDANCE_STORAGE__RESOLVE_HOSTS"])
        assert mapped == resolve_hosts(f"http://{public.netloc}")
        for route, settings in seedance_config()["routes"].items():
            prefix = f"SEEDANCE_ROUTES__{route.upper()}__"
            base = urlsplit(env[prefix + "BASE_URL"])
            assert (base.scheme, base.netloc, base.path) == ("http", public.netloc, "/api/v3")
            assert prefix + "OUTPUT_HOSTS" not in env
            assert env[settings["api_key_env"]] == emulator_key
        assert env["SEEDANCE_CALLBACKS__BASE_URL"] == "http://webhook:8701"


def test_base_file_alone_keeps_the_configured_provider_routes() -> None:
    """Real mode: no route override in docker-compose.yml, so seedance.toml's URLs apply."""
    for name, service in services().items():
        assert not any(k.startswith("SEEDANCE_ROUTES__") for k in environment(service)), name
