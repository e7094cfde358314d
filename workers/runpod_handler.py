"""Runpod serverless worker: `python -m workers.runpod_handler` in the GPU image (Dockerfile.gpu).

The same job as `/run` on this service's API, without Redis or Celery: a Runpod job's `input` is either request
shape, validated by the code the API validates with (tasks/validation.py), so a bad input fails with the message
the API's 400 carries; the job runs through the workers' pipeline against one engine process (workers/engine_host/,
the model loaded once, before the worker takes jobs), and its output is built as the Celery worker builds it
(workers/job_result.py).

The handler is an async generator, as Runpod needs for streaming: a custom request with `"stream": true` yields
its audio as it is made (base64 16-bit PCM pieces of at most half a second, as `/stream/{id}` gives them here),
then the output; any other job yields its output alone. `return_aggregate_stream` makes Runpod's `/run` and
`/runsync` output the list of what was yielded, so a job's output is the last item. A yielded `{"error": ...}`
is Runpod's FAILED with that error.

Jobs run concurrently, each in a thread of its own with its own connection to the engine, which decodes their
chunks together; `concurrency_modifier` holds Runpod to as many jobs as the engine decodes at once
(RUNPOD_CONCURRENCY overrides it). A job Runpod stops (cancelled, timed out) stops its rows in the engine within a
quarter second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.errors import APIError
from core.logs import configure_logging
from core.settings import Settings, get_settings
from core.storage import ObjectStore, create_object_store
from tasks.client import pcm_piece
from tasks.spec import SynthesisSpec
from tasks.validation import job_input, job_spec
from voices.registry import VoiceRegistry
from workers.audio.loudness import to_int16
from workers.engine_host.client import EngineLost
from workers.engine_host.supervisor import EngineStartFailed, EngineSupervisor
from workers.engines.base import Audio
from workers.job_result import deliver, failure, reference_audio
from workers.pipeline import PipelineHooks, SynthesisCancelled, SynthesisPipeline, SynthesisResult

log = logging.getLogger(__name__)

ENGINE_RETRY_DELAY_S = 1.0
"""How long a job whose engine process was lost waits before it runs again (the engine restarts meanwhile)."""
Output = dict[str, Any]


class RunpodWorker:
    """The handler and its concurrency, over pipelines that each hold a connection to the engine process."""

    def __init__(
        self,
        settings: Settings,
        pipelines: list[SynthesisPipeline],
        voices: VoiceRegistry,
        store: ObjectStore | None,
    ) -> None:
        self._settings = settings
        self._voices = voices
        self._store = store
        self.concurrency = len(pipelines)
        self._pipelines: queue.SimpleQueue[SynthesisPipeline] = queue.SimpleQueue()
        for pipeline in pipelines:
            self._pipelines.put(pipeline)
        # One thread per job Runpod may give at once, so no job waits for a thread while another runs.
        self._threads = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="runpod-job")

    def concurrency_modifier(self, _current: int) -> int:
        return self.concurrency

    async def handler(self, job: dict[str, Any]) -> AsyncIterator[Output]:
        job_id = str(job["id"])
        try:
            spec = job_spec(job_input({"input": job.get("input")}), self._settings, self._voices)
        except APIError as error:
            log.info("job %s: refused: %s", job_id, error.message)
            yield {"error": error.message}
            return
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[bytes | None] = asyncio.Queue()
        stopped = threading.Event()

        def hand_over(pcm: bytes | None) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, pcm)

        def on_samples(samples: Audio) -> None:
            if samples.size:
                hand_over(to_int16(samples).tobytes())

        hooks = PipelineHooks(
            on_audio=_discard,
            on_samples=on_samples if spec.stream_pcm else _discard,
            on_progress=lambda _done, _total: not stopped.is_set(),
            keep_going=lambda: not stopped.is_set(),
        )

        def run() -> Output:
            try:
                return self._run(job_id, spec, hooks)
            finally:
                hand_over(None)

        finished = loop.run_in_executor(self._threads, run)
        try:
            while (pcm := await pieces.get()) is not None:
                yield pcm_piece(pcm, self._settings.output_sample_rate)
            yield await finished
        finally:
            # Runpod stopped the job (its task is cancelled) or the caller closed the generator: stop the engine's
            # rows for it; `run` ends soon after and gives its pipeline back.
            stopped.set()

    def _run(self, job_id: str, spec: SynthesisSpec, hooks: PipelineHooks) -> Output:
        """One job on a pipeline of its own: synthesize, deliver, or the error its caller is told."""
        started = time.perf_counter()
        pipeline = self._pipelines.get()
        try:
            result = self._synthesize(job_id, spec, hooks, pipeline)
            output = deliver(self._settings, self._store, job_id, spec, result)
        except SynthesisCancelled:
            log.info("job %s: stopped while synthesizing", job_id)
            return {"error": "The job was stopped before it finished."}
        except Exception as error:
            return {"error": failure(job_id, error).message}
        finally:
            self._pipelines.put(pipeline)
        log.info(
            "job %s: COMPLETED, %.2f s of audio in %.2f s", job_id, result.duration_s, time.perf_counter() - started
        )
        return output

    def _synthesize(
        self, job_id: str, spec: SynthesisSpec, hooks: PipelineHooks, pipeline: SynthesisPipeline
    ) -> SynthesisResult:
        """Run the job, again while the engine process was lost (the supervisor restarts it) before any audio went
        out, up to MAX_ATTEMPTS runs, as the Celery worker retries such a job."""
        streamed = False

        def on_samples(samples: Audio) -> None:
            nonlocal streamed
            streamed = streamed or (spec.stream_pcm and samples.size > 0)
            hooks.on_samples(samples)

        counted = PipelineHooks(hooks.on_audio, on_samples, hooks.on_progress, hooks.keep_going)
        reference = reference_audio(self._voices, spec)
        attempt = 1
        while True:
            try:
                return pipeline.run(spec, reference, counted, request_prefix=f"{job_id}:{attempt}")
            except EngineLost:
                if streamed or attempt >= self._settings.max_attempts:
                    raise
                log.warning("job %s: attempt %d lost its engine process; it will run again", job_id, attempt)
                time.sleep(ENGINE_RETRY_DELAY_S)
                attempt += 1


def runpod_store(settings: Settings) -> ObjectStore | None:
    """S3 (`audio_url`) or none (`audio_base64`): the local store needs this service's API to serve its files."""
    if settings.storage_backend == "local":
        raise SystemExit(
            "STORAGE_BACKEND=local needs this service's API to serve the files; a Runpod worker delivers to S3 "
            "(STORAGE_BACKEND=s3 with S3_BUCKET_NAME...) or inline as base64 (STORAGE_BACKEND=none)"
        )
    return create_object_store(settings, _no_signing_key)


def _no_signing_key() -> bytes:
    raise AssertionError("only the local store signs links")


def _discard(_: object) -> None:
    return None


def start_worker(settings: Settings, engine: EngineSupervisor, store: ObjectStore | None) -> RunpodWorker:
    """Start the engine process (the model loads and warms up once) and build the worker around it."""
    info = engine.start()
    concurrency = settings.runpod_concurrency or info.max_batch
    clients = [engine.client() for _ in range(concurrency)]
    for client in clients:
        client.connect()
    log.info(
        "engine %s on %s ready; Runpod concurrency %d (engine batch %d)",
        info.name,
        info.device,
        concurrency,
        info.max_batch,
    )
    pipelines = [SynthesisPipeline(client, settings) for client in clients]
    return RunpodWorker(settings, pipelines, VoiceRegistry.from_settings(settings), store)


def _stop_this_process() -> None:
    """The engine cannot be kept running: end the worker (Runpod starts another) rather than fail every job."""
    log.critical("the engine process cannot be kept running; stopping this Runpod worker")
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    # The SDK logs every item a generator yields at its default level, DEBUG: here that is all the audio.
    os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
    import runpod

    settings = get_settings()
    configure_logging(settings.log_level)
    store = runpod_store(settings)  # a misconfigured store stops the worker before the model loads, not after
    engine = EngineSupervisor(settings, on_give_up=_stop_this_process)
    try:
        try:
            worker = start_worker(settings, engine, store)
        except EngineStartFailed as error:
            log.critical("could not load the %s engine; this worker takes no jobs: %s", settings.tts_engine, error)
            raise SystemExit(1) from error
        # Runpod's own arguments (--rp_serve_api, --rp_api_port...) are read from sys.argv by start().
        runpod.serverless.start(
            {
                "handler": worker.handler,
                "concurrency_modifier": worker.concurrency_modifier,
                "return_aggregate_stream": True,
            }
        )
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
