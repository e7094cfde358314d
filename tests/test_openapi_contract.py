"""The OpenAPI document tells the truth: schemathesis, with all its default checks, finds nothing on any operation,
and the facts it cannot see for itself are checked here (limits from settings, the registry's voices, 405s)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Stack, redis_db_url, running_stack
from tests.support.audio import wav_bytes

pytestmark = pytest.mark.integration

USER, ADMIN = "user-key", "admin-key"
MAX_INPUT = 2000  # not the default, so the document must have read it from the settings
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis") / "schemathesis.toml"
SEED = "20261202"
EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20")
"""Per operation and phase: about a minute for the whole run on a 2-core machine."""


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    keys = {"API_KEYS": USER, "ADMIN_API_KEYS": ADMIN, "MAX_INPUT_CHARS": str(MAX_INPUT)}
    with running_stack(tmp_path_factory.mktemp("contract"), redis_db_url(10), **keys) as running:
        yield running


def schemathesis(stack: Stack, key: str, *options: str) -> subprocess.CompletedProcess[str]:
    # Run from the stack's own directory: schemathesis keeps a cache where it runs.
    return subprocess.run(
        [
            str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{stack.base_url}/openapi.json",
            "-H", f"Authorization: Bearer {key}", "--seed", SEED, "--max-examples", EXAMPLES,
            "--workers", "1", "--request-timeout", "60", "--no-color", *options,
        ],
        cwd=Path(stack.env["DATA_DIR"]).parent, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def document(stack: Stack) -> dict[str, Any]:
    response = httpx.get(f"{stack.base_url}/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(stack: Stack) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document(stack)["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_schemathesis_finds_nothing_as_a_client(keyed: Stack) -> None:
    # Every operation with a client's key; voice writes are then 403s, so the voices the document lists stay put.
    run = schemathesis(keyed, USER)
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    assert f"Tested: {len(list(operations(keyed)))}" in run.stdout and "passed" in run.stdout


def test_schemathesis_finds_nothing_as_an_admin_changing_voices(keyed: Stack) -> None:
    run = schemathesis(keyed, ADMIN, "--include-path-regex", "^/v1/audio/voices")
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    voice_operations = [path for path, _, _ in operations(keyed) if path.startswith("/v1/audio/voices")]
    assert f"Tested: {len(voice_operations)}" in run.stdout


def test_no_422_and_every_operation_documents_its_errors(keyed: Stack) -> None:
    ids = []
    for path, method, operation in operations(keyed):
        ids.append(operation["operationId"])
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        if not path.startswith("/files/"):
            assert "401" in responses and operation["security"], (method, path)
        if "requestBody" in operation:
            assert "413" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    paths = document(keyed)["paths"]
    speech = paths["/v1/audio/speech"]["post"]["responses"]
    assert {"200", "400", "401", "409", "413", "429", "500", "503", "504"} <= set(speech)
    assert "retry-after" in {name.lower() for name in speech["429"]["headers"]}
    assert {"403"} <= set(paths["/v1/audio/voices"]["post"]["responses"])
    assert "404" in paths["/status/{job_id}"]["get"]["responses"]
    assert {"404", "409"} <= set(paths["/cancel/{job_id}"]["post"]["responses"])


def test_every_runpod_layout_operation_declares_its_endpoint_id(keyed: Stack) -> None:
    runpod = [(path, op) for path, _, op in operations(keyed) if path.startswith("/v2/{endpoint_id}/")]
    plain = [path for path, _, _ in operations(keyed) if "/v2/{endpoint_id}" + path in {p for p, _ in runpod}]
    assert len(runpod) == len(plain) >= 10
    for path, operation in runpod:
        declared = {(p["name"], p["in"]) for p in operation.get("parameters", [])}
        assert ("endpoint_id", "path") in declared, path


def test_limits_and_choices_come_from_the_settings_and_the_registry(keyed: Stack) -> None:
    schemas = document(keyed)["components"]["schemas"]
    speech, custom = schemas["SpeechRequest"]["properties"], schemas["CustomInput"]["properties"]
    assert speech["input"]["maxLength"] == custom["text"]["maxLength"] == MAX_INPUT
    assert speech["input"]["pattern"] == custom["text"]["pattern"] == r"[\p{L}\p{N}]"
    assert speech["speed"]["minimum"] == 0.25 and speech["speed"]["maximum"] == 4.0
    assert speech["response_format"]["enum"] == ["mp3", "opus", "aac", "flac", "wav", "pcm"]
    assert "espeak" in speech["model"]["pattern"] and "gpt-4o-mini-tts" in speech["model"]["pattern"]
    voice_language = schemas["VoiceUpdate"]["properties"]["language"]
    for language in (custom["language"], voice_language):
        assert "[pP][tT]" in language["anyOf"][0]["allOf"][0]["pattern"]
    listed = httpx.get(f"{keyed.base_url}/v1/audio/voices", headers={"Authorization": USER}).json()["data"]
    assert speech["voice"]["anyOf"][0]["enum"] == [voice["name"] for voice in listed if voice["enabled"]]
    newcomer = f"newcomer-{uuid.uuid4().hex[:8]}"
    upload = httpx.post(
        f"{keyed.base_url}/v1/audio/voices",
        data={"name": newcomer},
        files={"file": ("clip.wav", wav_bytes(), "audio/wav")},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert upload.status_code == 201, upload.text
    schemas = document(keyed)["components"]["schemas"]
    assert newcomer in schemas["SpeechRequest"]["properties"]["voice"]["anyOf"][0]["enum"]
    assert newcomer in schemas["CustomInput"]["properties"]["audio_prompt"]["anyOf"][0]["enum"]


def test_the_job_input_is_one_of_the_two_request_shapes(keyed: Stack) -> None:
    schemas = document(keyed)["components"]["schemas"]
    job_input = schemas["RunRequest"]["properties"]["input"]
    refs = {choice["$ref"].rsplit("/", 1)[1] for choice in job_input["oneOf"]}
    assert refs == {"SpeechRequest", "CustomInput"}
    assert schemas["CustomInput"]["required"] == ["text"]
    assert schemas["CustomInput"]["not"] == {"required": ["model", "voice"], "not": {"required": ["audio_prompt"]}}
    assert set(schemas["SpeechRequest"]["required"]) == {"model", "input", "voice"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/audio/voices", "GET, POST"),
        ("PUT", "/v1/audio/voices", "GET, POST"),
        ("OPTIONS", "/v1/audio/voices/alloy", "DELETE, PATCH, PUT"),
        ("PUT", "/status/some-id", "GET, POST"),
        ("DELETE", "/v2/e/status/some-id", "GET, POST"),
        ("GET", "/v1/audio/speech", "POST"),
    ],
)
def test_405_lists_every_method_of_the_path(keyed: Stack, method: str, path: str, allowed: str) -> None:
    response = httpx.request(method, f"{keyed.base_url}{path}", headers={"Authorization": USER})
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["error"]["type"] == "invalid_request_error"
