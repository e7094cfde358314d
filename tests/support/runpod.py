"""The Runpod serverless worker (workers/runpod_handler.py) as Runpod runs it: under the runpod SDK's own local API
(`--rp_serve_api`), or under the SDK's production worker loop against a stand-in for Runpod's job queue."""

from __future__ import annotations

import json
import sys
import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.processes import ManagedProcess, start_process, wait_for
from tests.support.s3 import free_port

HANDLER_MODULE = "workers.runpod_handler"


@dataclass
class LocalRunpod:
    """The SDK's development API (`/run`, `/runsync`, `/stream/{id}`, `/status/{id}`) serving our handler."""

    base_url: str
    process: ManagedProcess

    def runsync(self, job_input: Mapping[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{self.base_url}/runsync", json={"input": job_input}, timeout=300)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def streamed(self, job_input: Mapping[str, Any]) -> list[dict[str, Any]]:
        """`/run`, then `/stream/{id}`: the local API runs the job then and answers with every item it yielded."""
        job = httpx.post(f"{self.base_url}/run", json={"input": job_input}, timeout=30).json()
        response = httpx.post(f"{self.base_url}/stream/{job['id']}", timeout=300)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "COMPLETED", body
        return [chunk["output"] for chunk in body["stream"]]

    def stop(self) -> None:
        self.process.stop()


def start_local_runpod(env: Mapping[str, str], log_dir: Path) -> LocalRunpod:
    """`python -m workers.runpod_handler --rp_serve_api`: ready once it answers, which is after the engine loaded."""
    port = free_port()
    local_api = ["--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    process = start_process([sys.executable, "-m", HANDLER_MODULE, *local_api], env, log_dir / "runpod-local-api.log")
    base_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(base_url) or process.process.poll() is not None, 300, "the runpod local API")
    if process.process.poll() is not None:
        raise RuntimeError(f"the Runpod worker exited early:\n{process.log()}")
    return LocalRunpod(base_url, process)


def _answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/openapi.json", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class FakeRunpodQueue:
    """Runpod's side of a serverless worker, as runpod-python's worker loop calls it (rp_job.py, rp_http.py): it
    hands out jobs (`job-take`, `job-take-batch` with the worker's `batch_size`), answers the stop channel with
    nothing to stop, and records what the worker streams (`job-stream`) and each job's result (`job-done`)."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self._queued = deque(jobs)
        self._lock = threading.Lock()
        self.batch_sizes: list[int] = []
        """`batch_size` of every take that got jobs (1 for the single-job take)."""
        self.streamed: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.done: dict[str, dict[str, Any]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def env(self) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.port}"
        return {
            "RUNPOD_POD_ID": "test-pod",
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=test",
            # The fitness checks want the internet (8.8.8.8) and a GPU's tools.
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        }

    def _take(self, batch_size: int) -> list[dict[str, Any]]:
        with self._lock:
            taken = [self._queued.popleft() for _ in range(min(batch_size, len(self._queued)))]
            if taken:
                self.batch_sizes.append(batch_size)
            return taken

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        queue = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                if url.path.startswith("/job-take-batch/"):
                    jobs = queue._take(int(query["batch_size"][0]))
                    self._answer(jobs or None)
                elif url.path.startswith("/job-take/"):
                    jobs = queue._take(1)
                    self._answer(jobs[0] if jobs else None)
                else:  # the stop channel: nothing to stop
                    self._answer(None)

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                job_id = url.path.rsplit("/", 1)[1]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if url.path.startswith("/job-stream/"):
                    queue.streamed[job_id].append(body)
                else:
                    queue.done[job_id] = body
                self._answer({})

            def _answer(self, payload: object) -> None:
                if payload is None:
                    self.send_response(204)
                    self.end_headers()
                    return
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
