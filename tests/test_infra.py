"""The deployment files, checked as far as this machine can without Docker, and `make run`'s stack started for real.

docker-compose.yml: structure, interpolation, env keys against the Settings fields, commands against the ones
infra.dev_stack runs. Dockerfiles: non-root user, COPY sources present and not ignored, and the CMD's modules
importable from exactly the files the image gets. infra.dev_stack: API, worker and Flower up, real MP3 out, and a
clean stop on SIGINT or on a child's death.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import site
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import kubernetes_validate
import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from api.services.metrics import Metrics
from core.redis_clients import async_client
from core.settings import Settings
from infra import dev_stack, flower
from tasks.celery_app import create_celery_app
from tasks.client import JobClient
from tasks.spec import SynthesisSpec
from tests.conftest import redis_db_url
from tests.support.processes import wait_for
from tests.support.s3 import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
DEV_STACK_REDIS_URL = redis_db_url(12)
DEFAULTS = Settings.model_construct()  # the field defaults, without reading this machine's environment

# Services built from our Dockerfiles, whose environment is read by core.settings.Settings.
APP_SERVICES = ("api", "worker-gpu", "worker-cpu", "worker-service", "flower")
# Variables that are not Settings fields but are read by something in our images.
THIRD_PARTY_ENV = {
    "CUDA_VISIBLE_DEVICES": "CUDA runtime: which GPU the worker sees",
    "HF_HOME": "huggingface_hub: where the weights are cached",
    "HF_TOKEN": "huggingface_hub: token for gated or private weights",
    "FLOWER_BASIC_AUTH": "Flower: user:password",
}


# --- docker-compose.yml -------------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg, current = match["op"], match["arg"], env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and not current:
            raise ValueError(f"${{{name}}} is required: {arg}")
        if current is None:
            raise ValueError(f"${{{name}}} has no default: an unset variable would become an empty string")
        return current

    return _INTERPOLATION.sub(substitute, value)


def interpolate_all(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_all(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_all(value, env) for key, value in node.items()}
    return node


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as `docker compose config` would see it with nothing set in the shell."""
    document: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    resolved: dict[str, Any] = interpolate_all(document, {})
    return resolved


def settings_from(env: Mapping[str, str]) -> Settings:
    """Settings from a container's environment alone (no .env file); other variables are not settings."""
    values: dict[str, Any] = {key.lower(): value for key, value in env.items() if key.lower() in Settings.model_fields}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment; a key without a value is passed through from the shell only when set there."""
    environment = service.get("environment") or {}
    assert isinstance(environment, dict), "environment as a mapping, so the shared anchor can be merged"
    return {key: str(value) for key, value in environment.items() if value is not None}


def active_services(compose: Mapping[str, Any], profiles: set[str]) -> set[str]:
    """What `docker compose --profile ... up` starts: services without profiles, and those in an enabled one."""
    return {
        name
        for name, service in compose["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & profiles
    }


def test_compose_file_interpolates_with_an_empty_shell() -> None:
    # Every ${VAR} has a default: an unset variable must not silently become "" (boto3 rejects endpoint_url="").
    interpolate_all(yaml.safe_load((REPO / "docker-compose.yml").read_text()), {})


def test_every_service_has_an_image_or_a_build_that_exists(compose: dict[str, Any]) -> None:
    expected = {"redis", "api", "worker-gpu", "worker-cpu", "worker-service", "flower", "minio", "minio-bucket"}
    assert set(compose["services"]) == expected
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            build = service["build"]
            assert (REPO / build["context"] / build["dockerfile"]).is_file(), name


def test_depends_on_targets_exist_and_are_started_with_them(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert condition["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            # A dependency in a profile the dependent lacks would not start with it.
            assert set(services[target].get("profiles", [])) <= set(service.get("profiles", [])), (name, target)


def test_profiles_keep_the_gpu_out_of_the_cpu_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    default = active_services(compose, set())
    assert default == {"redis", "api", "worker-service", "flower"}
    cpu = active_services(compose, {"cpu"})
    assert cpu == default | {"worker-cpu"}
    assert not any("deploy" in services[name] for name in cpu), "docker compose --profile cpu up needs no GPU"
    assert active_services(compose, {"gpu"}) == default | {"worker-gpu"}
    assert active_services(compose, {"s3"}) == default | {"minio", "minio-bucket"}


def test_redis_is_a_durable_broker(compose: dict[str, Any]) -> None:
    redis_service = compose["services"]["redis"]
    assert redis_service["image"].startswith("redis:7")
    command = " ".join(redis_service["command"])
    assert "--maxmemory-policy noeviction" in command
    assert "--appendonly yes" in command
    assert any(volume.endswith(":/data") for volume in redis_service["volumes"])
    assert "redis-cli" in redis_service["healthcheck"]["test"]


def test_gpu_worker_reserves_one_nvidia_gpu(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker-gpu"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    env = service_env(worker)
    assert env["TTS_ENGINE"] == "chatterbox"
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["HF_HOME"] in {volume.split(":")[1] for volume in worker["volumes"]}, "the weights cache is a volume"


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, f"unparsed duration {duration}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_workers_get_past_the_hard_time_limit_before_a_kill(compose: dict[str, Any]) -> None:
    for name in ("worker-gpu", "worker-cpu", "worker-service"):
        service = compose["services"][name]
        limit = settings_from(service_env(service)).task_time_limit_s
        assert _seconds(service["stop_grace_period"]) > limit, name


def test_app_environment_is_settings_fields_or_known_variables(compose: dict[str, Any]) -> None:
    assert not DEFAULTS.model_config.get("env_prefix"), "env names below assume no prefix"
    fields = {name.upper() for name in Settings.model_fields}
    for name in APP_SERVICES:
        service = compose["services"][name]
        unknown = set(service.get("environment") or {}) - fields - set(THIRD_PARTY_ENV)
        assert not unknown, f"{name}: {sorted(unknown)} are neither Settings fields nor known variables"


def test_app_environment_builds_valid_settings(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        env = service_env(compose["services"][name])
        settings = settings_from(env)
        assert settings.redis_url.startswith("redis://redis:"), name
        assert settings.data_dir == Path("/app/data")
    # Workers built from the API image have no torch: they must never be configured for ChatterBox.
    for name in ("worker-cpu", "worker-service"):
        assert service_env(compose["services"][name])["TTS_ENGINE"] == "espeak"


def test_commands_are_the_ones_make_run_uses(compose: dict[str, Any]) -> None:
    services = compose["services"]
    tts, service_queue = DEFAULTS.tts_queue, DEFAULTS.service_queue
    assert services["api"]["command"] == dev_stack.api_command("0.0.0.0", 8000)
    assert services["worker-gpu"]["command"] == dev_stack.worker_command([tts], "INFO")
    assert services["worker-cpu"]["command"] == dev_stack.worker_command([tts], "INFO")
    assert services["worker-service"]["command"] == dev_stack.worker_command([service_queue], "INFO")
    assert services["flower"]["command"] == ["python", "-m", *dev_stack.flower_command(5555, "0.0.0.0")]


def _published(port_spec: str) -> tuple[str, int, int]:
    """ "[host:]published:target" as (host, published, target); no host means every interface."""
    *host, published, target = port_spec.split(":")
    return (host[0] if host else "0.0.0.0", int(published), int(target))


def test_ports_match_the_commands_and_do_not_collide(compose: dict[str, Any]) -> None:
    published: list[tuple[str, int]] = []
    targets: dict[str, set[int]] = {}
    for name, service in compose["services"].items():
        for spec in service.get("ports", []):
            host, port, target = _published(spec)
            published.append((host, port))
            targets.setdefault(name, set()).add(target)
    assert len(published) == len(set(published)), published
    assert targets["api"] == {8000}
    assert targets["flower"] == {5555}
    assert ("127.0.0.1", 5555) in published, "Flower's /metrics has no auth: publish it on loopback only"


def test_volumes_are_declared_and_voices_shared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    assert {"data", "voices", "hf-cache"} <= declared
    mounts: dict[str, dict[str, str]] = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            assert source in declared, f"{name} mounts undeclared volume {source}"
            mounts.setdefault(name, {})[target] = mode[0] if mode else "rw"
    for name in ("api", "worker-gpu", "worker-cpu", "worker-service"):
        voices_dir = service_env(compose["services"][name])["VOICES_DIR"]
        assert voices_dir in mounts[name], f"{name} does not mount the voices volume at VOICES_DIR"
        assert "/app/data" in mounts[name], f"{name} does not share the data volume (local audio store)"
    assert mounts["api"]["/app/voices"] == "rw", "uploads are written by the API"


def test_flower_auth_comes_from_the_shell_only(compose: dict[str, Any]) -> None:
    # Passed through unset when the shell has none: an empty FLOWER_BASIC_AUTH locks everyone out.
    assert (
        yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["flower"]["environment"][
            "FLOWER_BASIC_AUTH"
        ]
        is None
    )


# --- Dockerfiles --------------------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        words = json.loads(self.args)
        assert isinstance(words, list), f"{self.keyword} in exec (JSON) form"
        return [str(word) for word in words]


def parse_dockerfile(path: Path) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    return instructions


def copy_sources(instruction: Instruction) -> tuple[list[str], str]:
    words = instruction.args.split()
    assert not any(word.startswith("--from") for word in words)
    words = [word for word in words if not word.startswith("--")]
    return words[:-1], words[-1]


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", glob):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
        patterns.append((negated, re.compile(regex + r"\Z")))
    return patterns


def ignored(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: a path is excluded when it or a parent matches the last matching pattern."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    result = False
    for negated, pattern in patterns:
        if any(pattern.match(candidate) for candidate in candidates):
            result = not negated
    return result


def context_files(source: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> list[Path]:
    root = REPO / source
    files = [root] if root.is_file() else sorted(path for path in root.rglob("*") if path.is_file())
    return [path for path in files if not ignored(path.relative_to(REPO).as_posix(), patterns)]


def image_tree(dockerfile: Path, destination: Path) -> Path:
    """The files the image's WORKDIR gets from the build context, laid out in `destination`."""
    patterns = dockerignore_patterns()
    for instruction in parse_dockerfile(dockerfile):
        if instruction.keyword != "COPY" or "--from" in instruction.args:
            continue
        sources, target = copy_sources(instruction)
        for source in sources:
            for path in context_files(source, patterns):
                if (REPO / source).is_dir():
                    relative = path.relative_to(REPO / source)
                    into = destination / target.rstrip("/") / relative if target != "./" else destination / relative
                elif target.endswith("/"):
                    into = destination / target / path.name
                else:
                    into = destination / target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, into)
    return destination


DOCKERFILES = ("Dockerfile.api", "Dockerfile.gpu")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_runs_as_a_non_root_user(name: str) -> None:
    users = [instruction.args for instruction in parse_dockerfile(REPO / name) if instruction.keyword == "USER"]
    assert users, f"{name} has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{name} runs as {users[-1]}"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_copies_files_that_exist_and_are_in_the_context(name: str) -> None:
    patterns = dockerignore_patterns()
    copied: list[str] = []
    for instruction in parse_dockerfile(REPO / name):
        if instruction.keyword == "COPY" and "--from" not in instruction.args:
            sources, _ = copy_sources(instruction)
            for source in sources:
                assert (REPO / source).exists(), f"{name} copies missing {source}"
                assert not ignored(source, patterns), f"{name} copies {source}, which .dockerignore excludes"
                assert context_files(source, patterns), f"{name} copies {source}, which has no file in the context"
                copied.append(source)
        if instruction.keyword == "RUN":
            for requirements in re.findall(r"-r\s+(\S+)", instruction.args):
                if requirements.startswith("/tmp/"):
                    continue  # written by the same RUN
                assert (REPO / requirements).is_file(), f"{name} installs missing {requirements}"
                assert requirements in copied, f"{name} installs {requirements} before copying it"


def test_dockerignore_keeps_environments_data_and_secrets_out() -> None:
    patterns = dockerignore_patterns()
    for path in (".git", ".venv/bin/python", "data/outputs/x.mp3", ".env", "tests/test_infra.py"):
        assert ignored(path, patterns), path
    for path in ("core/__pycache__/settings.cpython-311.pyc", "workers/engines/__pycache__"):
        assert ignored(path, patterns), path
    for path in ("pyproject.toml", "api/main.py", "requirements/gpu.txt", "infra/healthcheck.py"):
        assert not ignored(path, patterns), path


def test_api_image_is_slim_without_torch_or_dev_extras() -> None:
    instructions = parse_dockerfile(REPO / "Dockerfile.api")
    assert [i.args for i in instructions if i.keyword == "FROM"] == ["python:3.11-slim"]
    runs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert "torch" not in runs
    assert "[dev]" not in runs
    assert "apt-get" not in runs, "the wheels bundle espeak-ng and FFmpeg"
    # Every package pyproject.toml installs is copied.
    packages = {pattern.rstrip("*") for pattern in _pyproject_packages()}
    copied = {copy_sources(i)[0][0] for i in instructions if i.keyword == "COPY"}
    assert packages <= copied
    healthchecks = [i.args for i in instructions if i.keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "infra.healthcheck" in healthchecks[0]


def _pyproject_packages() -> list[str]:
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include: list[str] = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return include


def test_api_image_cmd_is_the_api_command() -> None:
    cmds = [i.exec_form() for i in parse_dockerfile(REPO / "Dockerfile.api") if i.keyword == "CMD"]
    assert cmds == [dev_stack.api_command("0.0.0.0", 8000)]


def test_gpu_image_runs_a_batch_of_jobs_per_gpu_with_make_runs_worker_command() -> None:
    instructions = parse_dockerfile(REPO / "Dockerfile.gpu")
    cmds = [i.exec_form() for i in instructions if i.keyword == "CMD"]
    assert cmds == [dev_stack.worker_command([DEFAULTS.tts_queue], "INFO")]
    env = " ".join(i.args for i in instructions if i.keyword == "ENV")
    assert "WORKER_CONCURRENCY=16" in env and DEFAULTS.engine_max_batch == 16, "a pool child per row the engine batches"


def test_the_pool_size_is_the_worker_concurrency_setting() -> None:
    app = create_celery_app(Settings.model_construct(**{**DEFAULTS.model_dump(), "worker_concurrency": 7}))
    assert app.conf.worker_concurrency == 7


def module_references(command: list[str]) -> list[str]:
    """`celery -A mod`, `uvicorn mod:attr`, `python -m mod`: what the command imports."""
    if command[0] == "celery":
        return [command[command.index("-A") + 1]]
    if command[0] == "uvicorn":
        return [command[1]]
    if command[:2] == ["python", "-m"]:
        return [command[2]]
    if command[0] == "CMD-SHELL" or command[:2] == ["sh", "-c"]:
        return module_references(command[-1].split())
    if command[0] == "CMD":
        return module_references(command[1:])
    return []


_IMPORT_CHECK = textwrap.dedent(
    """
    import importlib, json, sys
    from celery import Celery
    from fastapi import FastAPI
    problems = []
    for ref in json.loads(sys.argv[1]):
        module_name, _, attribute = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            problems.append(f"{ref}: {error!r}")
            continue
        if not module.__file__.startswith(sys.argv[2]):
            problems.append(f"{ref}: imported from {module.__file__}, outside the image's files")
        if attribute:
            factory = getattr(module, attribute)
            if not isinstance(factory(), FastAPI):
                problems.append(f"{ref}: the factory does not build a FastAPI app")
        elif module_name == "workers.celery_worker" and not isinstance(module.app, Celery):
            problems.append(f"{ref}: no Celery app")
        elif module_name.startswith("infra.") and not callable(getattr(module, "main", None)):
            problems.append(f"{ref}: no main()")
    print("\\n".join(problems))
    sys.exit(1 if problems else 0)
    """
)


def _commands_run_in(image: str, compose: dict[str, Any], k8s: K8s) -> list[list[str]]:
    """The image's CMD, ENTRYPOINT and HEALTHCHECK, and every command and healthcheck compose and the Kubernetes
    manifests run in it."""
    commands: list[list[str]] = []
    for instruction in parse_dockerfile(REPO / image):
        if instruction.keyword in ("CMD", "ENTRYPOINT"):
            commands.append(instruction.exec_form())
        elif instruction.keyword == "HEALTHCHECK":
            _options, _, command = instruction.args.partition(" CMD ")
            commands.append(json.loads(command))
    for service in compose["services"].values():
        if service.get("build", {}).get("dockerfile") == image:
            commands.append(service["command"])
            if "healthcheck" in service:
                commands.append(service["healthcheck"]["test"])
    for _workload, container in k8s.containers():
        if image_dockerfiles(compose).get(container["image"]) == image:
            commands.append(container["command"])
            commands += [probe["exec"]["command"] for probe in probes(container) if "exec" in probe]
    return commands


@pytest.mark.parametrize("image", DOCKERFILES)
def test_image_commands_import_from_the_files_the_image_gets(
    image: str, compose: dict[str, Any], k8s: K8s, tmp_path: Path
) -> None:
    refs = sorted({ref for command in _commands_run_in(image, compose, k8s) for ref in module_references(command)})
    assert "workers.celery_worker" in refs
    result = import_in_image(image, refs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def import_in_image(image: str, refs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Import `refs` (`module` or `module:factory`) from exactly the files `image` gets, with its installed
    packages; the check's problems are on stdout."""
    tree = image_tree(REPO / image, tmp_path / "app")
    # -S: no .pth files, so the editable install of this repo cannot stand in for a file the image lacks.
    path = [str(tree), *site.getsitepackages()]
    bootstrap = f"import sys; sys.path[:0] = {path!r}; exec(sys.argv.pop(1))"
    return subprocess.run(
        [sys.executable, "-S", "-c", bootstrap, _IMPORT_CHECK, json.dumps(refs), str(tree)],
        cwd=tree,
        env={**os.environ, "DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- infra/k8s ----------------------------------------------------------------------------------------------------

K8S = REPO / "infra" / "k8s"
# The oldest Kubernetes these manifests claim to run on, and the newest whose schemas the validator carries.
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
CRD_GROUPS = ("keda.sh/",)
"""API groups of custom resources, which Kubernetes' own schemas do not cover; their tests below check them."""
WORKLOADS = ("Deployment", "StatefulSet")


@dataclass
class K8s:
    """A kustomization's resources, as written (the base lists plain manifests; kustomize adds the namespace)."""

    namespace: str
    documents: list[dict[str, Any]]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [d for d in self.documents if d["kind"] == kind and d["metadata"]["name"] == name]
        return found

    def containers(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for document in self.documents:
            if document["kind"] in WORKLOADS:
                for container in document["spec"]["template"]["spec"]["containers"]:
                    yield document, container

    def container(self, deployment: str) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.get("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
        (container,) = containers
        return container

    def env(self, container: Mapping[str, Any]) -> dict[str, str]:
        """The container's environment: the ConfigMaps it reads, then its own `env` (which wins)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.get("ConfigMap", source["configMapRef"]["name"])["data"])
        env.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
        return env

    def settings(self, container: Mapping[str, Any]) -> Settings:
        return settings_from(self.env(container))


def load_kustomization(directory: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kustomization: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    documents = [
        document
        for resource in kustomization["resources"]
        if (directory / resource).is_file()
        for document in yaml.safe_load_all((directory / resource).read_text())
        if document
    ]
    return kustomization, documents


@pytest.fixture(scope="module")
def k8s() -> K8s:
    kustomization, documents = load_kustomization(K8S / "base")
    return K8s(kustomization["namespace"], documents)


def image_dockerfiles(compose: Mapping[str, Any]) -> dict[str, str]:
    """Image name -> the Dockerfile that builds it, from docker-compose.yml."""
    return {s["image"]: s["build"]["dockerfile"] for s in compose["services"].values() if "build" in s and "image" in s}


def probes(container: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [container[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe") if kind in container]


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The overlay rendered by kubectl's built-in kustomize: the one tool that applies its patches exactly."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the overlay's patches cannot be rendered")
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def validate_core(documents: list[dict[str, Any]]) -> None:
    for document in documents:
        if document["apiVersion"].startswith(CRD_GROUPS):
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def test_every_k8s_manifest_parses_and_the_base_lists_them_all() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) > 5
    for path in files:
        assert [document for document in yaml.safe_load_all(path.read_text()) if document], path
    kustomization, _ = load_kustomization(K8S / "base")
    listed = {K8S / "base" / resource for resource in kustomization["resources"]}
    assert listed == set((K8S / "base").glob("*.yaml")) - {K8S / "base" / "kustomization.yaml"}


def test_k8s_core_kinds_validate_against_kubernetes_schemas(k8s: K8s) -> None:
    validate_core(k8s.documents)
    kinds = {document["kind"] for document in k8s.documents if not document["apiVersion"].startswith(CRD_GROUPS)}
    assert {"Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds
    # Strict: a misspelt field is an error, not ignored.
    broken = json.loads(json.dumps(k8s.get("Deployment", "tts-worker-gpu")))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 660
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


def test_cpu_overlay_renders_valid_manifests_without_a_gpu() -> None:
    documents = kustomize(K8S / "overlays" / "cpu")
    validate_core(documents)
    overlay = K8s("tts", documents)
    worker = overlay.container("tts-worker-gpu")
    assert worker["image"] == overlay.container("tts-api")["image"], "the synthesis worker runs the API image"
    assert "nvidia.com/gpu" not in worker["resources"].get("limits", {})
    settings = overlay.settings(worker)
    assert settings.tts_engine == "espeak" == overlay.settings(overlay.container("tts-api")).tts_engine
    assert worker["command"] == dev_stack.worker_command([settings.tts_queue], "INFO")
    assert all(d["metadata"].get("namespace") == "tts" for d in documents if d["kind"] != "Namespace")


def test_k8s_containers_run_the_images_commands(k8s: K8s, compose: dict[str, Any]) -> None:
    dockerfiles = image_dockerfiles(compose)
    commands = {}
    for workload, container in k8s.containers():
        name = workload["metadata"]["name"]
        if name == "redis":
            assert container["image"] == compose["services"]["redis"]["image"]
            continue
        assert container["image"] in dockerfiles, f"{name}: {container['image']} is not an image we build"
        commands[name] = (dockerfiles[container["image"]], container["command"], k8s.settings(container))
    assert set(commands) == {"tts-api", "tts-worker-gpu", "tts-worker-service", "flower"}
    api_cmd = [i.exec_form() for i in parse_dockerfile(REPO / "Dockerfile.api") if i.keyword == "CMD"]
    assert (
        commands["tts-api"][:2]
        == ("Dockerfile.api", dev_stack.api_command("0.0.0.0", 8000))
        == (
            "Dockerfile.api",
            api_cmd[0],
        )
    )
    assert commands["flower"][:2] == ("Dockerfile.api", ["python", "-m", *dev_stack.flower_command(5555, "0.0.0.0")])
    for name, queue, dockerfile in (
        ("tts-worker-gpu", DEFAULTS.tts_queue, "Dockerfile.gpu"),
        ("tts-worker-service", DEFAULTS.service_queue, "Dockerfile.api"),
    ):
        image, command, settings = commands[name]
        assert image == dockerfile, name
        assert command == dev_stack.worker_command([queue], settings.log_level), name
    gpu_settings = commands["tts-worker-gpu"][2]
    assert gpu_settings.tts_engine == "chatterbox" == k8s.settings(k8s.container("tts-api")).tts_engine
    assert commands["tts-worker-service"][2].tts_engine == "espeak", "the API image has no torch"


def test_k8s_environment_is_settings_fields_or_known_variables(k8s: K8s) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for workload, container in k8s.containers():
        if workload["metadata"]["name"] != "redis":
            unknown = set(k8s.env(container)) - fields - set(THIRD_PARTY_ENV)
            assert not unknown, f"{workload['metadata']['name']}: {sorted(unknown)}"
            k8s.settings(container)  # valid values too


def test_k8s_gpu_workers_take_one_gpu_each_and_outlast_the_hard_time_limit(k8s: K8s) -> None:
    gpu = k8s.container("tts-worker-gpu")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1, "one engine per GPU: one GPU per pod"
    assert "CUDA_VISIBLE_DEVICES" not in k8s.env(gpu), "the device plugin picks the GPU"
    for name in ("tts-worker-gpu", "tts-worker-service"):
        pod = k8s.get("Deployment", name)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["terminationGracePeriodSeconds"] > k8s.settings(container).task_time_limit_s, name
        assert "livenessProbe" not in container, f"{name}: a warm shutdown stops answering pings"
    startup = gpu["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= DEFAULTS.model_load_timeout_s
    assert k8s.env(gpu)["HF_HOME"] in {mount["mountPath"] for mount in gpu["volumeMounts"]}


def test_k8s_volumes_share_voices_and_outputs(k8s: K8s) -> None:
    claims = {document["metadata"]["name"] for document in k8s.documents if document["kind"] == "PersistentVolumeClaim"}
    for name in ("tts-api", "tts-worker-gpu", "tts-worker-service"):
        pod = k8s.get("Deployment", name)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        volumes = {volume["name"]: volume["persistentVolumeClaim"]["claimName"] for volume in pod["volumes"]}
        assert set(volumes.values()) <= claims, name
        mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
        settings = k8s.settings(container)
        voices, data = mounts[str(settings.resolved_voices_dir)], mounts[str(settings.data_dir)]
        assert volumes[voices["name"]] == "tts-voices" and volumes[data["name"]] == "tts-data", name
        assert voices.get("readOnly", False) == (name != "tts-api"), "only the API writes voices"


def test_k8s_redis_is_a_durable_broker_that_refuses_writes_before_it_is_killed(k8s: K8s) -> None:
    (redis_container,) = k8s.get("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"]
    command = " ".join(redis_container["command"])
    assert "--maxmemory-policy noeviction" in command and "--appendonly yes" in command
    maxmemory = redis_container["command"][redis_container["command"].index("--maxmemory") + 1]
    limit = redis_container["resources"]["limits"]["memory"]
    assert maxmemory.endswith("mb") and limit.endswith("Gi")
    assert int(maxmemory[:-2]) < int(limit[:-2]) * 1024
    assert k8s.get("StatefulSet", "redis")["spec"]["volumeClaimTemplates"], "the append-only file on a volume"


def test_k8s_api_is_probed_on_health_and_scaled(k8s: K8s) -> None:
    api = k8s.container("tts-api")
    assert api["readinessProbe"]["exec"]["command"] == ["python", "-m", "infra.healthcheck"], "GET /health"
    assert "tcpSocket" in api["livenessProbe"], "a Redis outage must not restart the API"
    hpa = k8s.get("HorizontalPodAutoscaler", "tts-api")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tts-api"}
    assert hpa["spec"]["minReplicas"] >= 2
    pod = k8s.get("Deployment", "tts-api")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > k8s.settings(api).sync_wait_timeout_s


def _redis_address(url: str) -> tuple[str, int, int]:
    # redis-py's own parser: what the service's clients connect to.
    parsed: dict[str, Any] = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    return parsed.get("host", "localhost"), int(parsed.get("port", 6379)), int(parsed.get("db", 0))


def _service_fqdn(k8s: K8s, name: str) -> str:
    k8s.get("Service", name)
    return f"{name}.{k8s.namespace}.svc.cluster.local"


def test_keda_scales_gpu_workers_from_zero_on_the_real_queue(k8s: K8s) -> None:
    scaled = k8s.get("ScaledObject", "tts-worker-gpu")
    spec = scaled["spec"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert spec["scaleTargetRef"]["name"] == "tts-worker-gpu"
    assert "replicas" not in k8s.get("Deployment", "tts-worker-gpu")["spec"], "KEDA owns the replica count"
    assert spec["minReplicaCount"] == 0
    gpu = k8s.container("tts-worker-gpu")
    settings = k8s.settings(gpu)
    assert spec["cooldownPeriod"] > settings.task_time_limit_s
    triggers = {trigger["type"]: trigger["metadata"] for trigger in spec["triggers"]}
    assert set(triggers) == {"redis", "metrics-api"}

    # The address the settings produce, reachable by name from KEDA's own namespace.
    host, port, db = _redis_address(settings.redis_url)
    assert triggers["redis"]["address"] == f"{host}:{port}"
    assert int(triggers["redis"]["databaseIndex"]) == db
    assert host == _service_fqdn(k8s, "redis")
    assert port in {p["port"] for p in k8s.get("Service", "redis")["spec"]["ports"]}
    assert int(triggers["redis"]["activationListLength"]) == 0, "one queued job wakes the first worker"
    assert triggers["metrics-api"]["url"] == f"http://{_service_fqdn(k8s, 'tts-api')}:8000/metrics"
    assert int(triggers["metrics-api"]["targetValue"]) == settings.worker_concurrency


def test_keda_triggers_read_what_a_real_submit_writes(k8s: K8s, dev_redis: redis.Redis) -> None:
    """A job submitted the API's way, with the cluster's settings (on a test Redis), is what the triggers count:
    the list KEDA reads holds it, kombu's own queue size agrees, and /metrics exports the gauge KEDA reads."""
    triggers = {t["type"]: t["metadata"] for t in k8s.get("ScaledObject", "tts-worker-gpu")["spec"]["triggers"]}
    cluster = k8s.settings(k8s.container("tts-api"))
    settings = cluster.model_copy(update={"redis_url": DEV_STACK_REDIS_URL})
    spec = SynthesisSpec(text="Scale me up.", model="chatterbox-turbo")

    async def submit_and_scrape() -> bytes:
        client = async_client(settings)
        try:
            jobs = JobClient(settings, client, create_celery_app(settings))
            await jobs.submit(spec, max_queue_depth=10)
            return await Metrics().render(jobs, client)
        finally:
            await client.aclose()

    metrics = asyncio.run(submit_and_scrape())
    assert dev_redis.llen(triggers["redis"]["listName"]) == 1
    with create_celery_app(settings).connection_for_write() as connection:
        assert connection.default_channel._size(cluster.tts_queue) == 1  # kombu sums every priority's list
    gauges = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.decode())
        for sample in family.samples
        if not sample.labels
    }
    assert gauges[triggers["metrics-api"]["valueLocation"]] == 0
    assert gauges["tts_queue_depth"] == 1


# --- infra.dev_stack ----------------------------------------------------------------------------------------------


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str
    flower_port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 90) -> None:
        wait_for(lambda: "ready: API" in self.log() or self.process.poll() is not None, timeout_s, "dev stack ready")
        assert self.process.poll() is None, f"dev_stack exited early:\n{self.log()}"


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children_of(pending.pop()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def role(pid: int) -> str:
    """Which of dev_stack's children this is, from its argv."""
    words = cmdline(pid).split()
    return next((name for name in ("uvicorn", "worker", "flower") if name in words), "?")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has exited; only its parent's reaping is left


@pytest.fixture
def dev_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(DEV_STACK_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def start_dev_stack(tmp_path: Path, flower_port: int, **extra_env: str) -> DevStack:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("API_KEYS", "PUBLIC_BASE_URL", "HOST")}
    env.update(
        {
            "PORT": str(port),
            "FLOWER_PORT": str(flower_port),
            "REDIS_URL": DEV_STACK_REDIS_URL,
            "DATA_DIR": str(tmp_path / "data"),
            "TTS_ENGINE": "espeak",
            "STORAGE_BACKEND": "local",
            **extra_env,
        }
    )
    log_path = tmp_path / "dev_stack.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.dev_stack"], cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    return DevStack(process, log_path, f"http://127.0.0.1:{port}", flower_port)


def stop(stack: DevStack) -> None:
    if stack.process.poll() is None:
        stack.process.kill()
        stack.process.wait()


def assert_all_gone(pids: set[int]) -> None:
    wait_for(lambda: not any(alive(pid) for pid in pids), 15, "the stack's processes to exit")


def test_dev_stack_serves_speech_and_stops_cleanly_on_sigint(tmp_path: Path, dev_redis: redis.Redis) -> None:
    stack = start_dev_stack(tmp_path, free_port(), FLOWER_BASIC_AUTH="admin:s3cret")
    try:
        stack.wait_ready()
        children = children_of(stack.process.pid)
        assert sorted(role(pid) for pid in children) == ["flower", "uvicorn", "worker"], [cmdline(p) for p in children]
        # The containers' health probes, against the real API and Flower.
        port = stack.base_url.rpartition(":")[2]
        probe = [sys.executable, "-m", "infra.healthcheck"]
        env = {**os.environ, "PORT": port}
        assert subprocess.run(probe, cwd=REPO, env=env, timeout=30).returncode == 0
        flower_health = f"http://127.0.0.1:{stack.flower_port}/healthcheck"
        assert subprocess.run([*probe, flower_health], cwd=REPO, env=env, timeout=30).returncode == 0
        free = f"http://127.0.0.1:{free_port()}/health"
        assert subprocess.run([*probe, free], cwd=REPO, env=env, timeout=30).returncode == 1

        response = httpx.post(
            f"{stack.base_url}/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": "The local stack speaks."},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "audio/mpeg"
        with av.open(io.BytesIO(response.content), "r", format="mp3") as container:
            frames = list(container.decode(audio=0))
        assert sum(frame.samples for frame in frames) / frames[0].sample_rate > 0.5

        flower = f"http://127.0.0.1:{stack.flower_port}/"
        assert httpx.get(flower, timeout=10).status_code == 401
        assert httpx.get(flower, auth=("admin", "s3cret"), timeout=10).status_code == 200
        # Its JSON API with the same credentials: the worker, and the speech task that just ran.
        workers = httpx.get(f"{flower}api/workers?refresh=1", auth=("admin", "s3cret"), timeout=30)
        assert workers.status_code == 200 and len(workers.json()) == 1, workers.text
        tasks = httpx.get(f"{flower}api/tasks", auth=("admin", "s3cret"), timeout=10)
        assert tasks.status_code == 200 and len(tasks.json()) >= 1, tasks.text
        assert httpx.get(f"{flower}api/tasks", timeout=10).status_code == 401

        everything = descendants(stack.process.pid)
        stack.process.send_signal(signal.SIGINT)
        assert stack.process.wait(60) == 0, stack.log()
        assert_all_gone(everything)
        log = stack.log()
        assert "SIGINT received" in log
        for prefix in ("api    | ", "worker | ", "flower | ", "stack  | "):
            assert prefix in log, prefix
    finally:
        stop(stack)


def test_dev_stack_stops_everything_when_the_worker_dies(tmp_path: Path, dev_redis: redis.Redis) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        flower_port = taken.getsockname()[1]
        stack = start_dev_stack(tmp_path, flower_port)
        try:
            stack.wait_ready()
            assert f"port {flower_port} is taken" in stack.log()
            assert "Flower not running" in stack.log()
            children = children_of(stack.process.pid)
            assert sorted(role(pid) for pid in children) == ["uvicorn", "worker"]
            (worker,) = [pid for pid in children if role(pid) == "worker"]
            assert children_of(worker), "the worker's pool child"
            everything = descendants(stack.process.pid)

            os.kill(worker, signal.SIGKILL)
            assert stack.process.wait(60) == 1, stack.log()
            assert_all_gone(everything)  # the API and the orphaned pool child too
            assert "worker exited unexpectedly" in stack.log()
        finally:
            stop(stack)


@pytest.mark.parametrize(
    ("address", "auth", "expected"),
    [
        ("127.0.0.1", "", {"FLOWER_UNAUTHENTICATED_API": "true"}),
        ("::1", None, {"FLOWER_UNAUTHENTICATED_API": "true"}),
        ("127.0.0.1", "user:pass", {"FLOWER_BASIC_AUTH": "user:pass"}),
        ("0.0.0.0", "user:pass", {"FLOWER_BASIC_AUTH": "user:pass"}),
        ("0.0.0.0", "", None),
        ("192.0.2.7", None, None),
    ],
)
def test_flower_opens_its_api_on_loopback_only_and_needs_credentials_elsewhere(
    address: str, auth: str | None, expected: dict[str, str] | None
) -> None:
    env = {
        "PATH": "/bin",
        "FLOWER_UNAUTHENTICATED_API": "true",
        **({"FLOWER_BASIC_AUTH": auth} if auth is not None else {}),
    }
    result = flower.flower_environment(address, env)
    assert result == (None if expected is None else {"PATH": "/bin", **expected})


def test_flower_refuses_to_start_beyond_loopback_without_credentials() -> None:
    env = {key: value for key, value in os.environ.items() if key != "FLOWER_BASIC_AUTH"}
    result = subprocess.run(
        [sys.executable, "-m", "infra.flower", f"--port={free_port()}", "--address=0.0.0.0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "set FLOWER_BASIC_AUTH=user:password" in result.stderr


def test_flower_json_api_answers_locally_without_credentials(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "FLOWER_BASIC_AUTH"}
    env["REDIS_URL"] = DEV_STACK_REDIS_URL
    with (tmp_path / "flower.log").open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.flower", f"--port={port}", "--address=127.0.0.1"],
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{url}/healthcheck") or process.poll() is not None, 30, "Flower to start")
        for path in ("/api/workers?refresh=false", "/api/tasks"):
            response = httpx.get(f"{url}{path}", timeout=10)
            assert response.status_code == 200, response.text
            assert isinstance(response.json(), dict)
    finally:
        process.terminate()
        process.wait(15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_file_links_point_at_the_port_the_api_listens_on_unless_told_otherwise() -> None:
    assert settings_from({"PORT": "9999"}).resolved_public_base_url == "http://127.0.0.1:9999"
    assert settings_from({"HOST": "0.0.0.0", "PORT": "81"}).resolved_public_base_url == "http://127.0.0.1:81"
    explicit = settings_from({"PORT": "9999", "PUBLIC_BASE_URL": "https://tts.example.com/"})
    assert explicit.resolved_public_base_url == "https://tts.example.com"


def test_banner_is_one_line_with_urls_and_an_example() -> None:
    banner = dev_stack._banner(settings_from({}), "http://127.0.0.1:8000", "http://127.0.0.1:5555")
    assert "\n" not in banner
    for part in (
        "http://127.0.0.1:8000/playground/",
        "http://127.0.0.1:8000/docs",
        "http://127.0.0.1:5555",
        "curl -s http://127.0.0.1:8000/v1/audio/speech",
    ):
        assert part in banner
    keyed = settings_from({"API_KEYS": "k1"})
    banner = dev_stack._banner(keyed, "http://127.0.0.1:8000", None)
    assert "Bearer $API_KEY" in banner and "k1" not in banner
    assert "Flower not running" in banner


def test_the_port_check_sees_a_listening_socket() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert not dev_stack._port_free("127.0.0.1", taken.getsockname()[1])
    assert dev_stack._port_free("127.0.0.1", free_port())
