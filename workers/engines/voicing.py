"""S3Gen beside T3: the chunks T3 has finished, and the next pieces of streamed ones, are voiced in a thread of
their own while the batch goes on decoding.

S3Gen (the flow and HiFT) costs about what T3's batched decoding does, so voicing in the decode loop would stop every
row for seconds each time one finished. Here the decode loop hands voicing jobs to a Voicer and collects what it
has made at each step. Pieces of streamed chunks go before whole chunks (a listener is waiting on them), a chunk's
jobs are voiced one after another in the order they came, and the rows of one group are voiced together
(s3gen_batch.py). torch releases the GIL inside its operators, so the threads really run at once.

On a GPU one voicing thread batches whatever is ready. On a CPU, where S3Gen is compute-bound and a batch saves
nothing, there is one voicing thread per core, each voicing a row at a time: while T3 and S3Gen work together,
every thread runs torch on one core (ThreadShare), so the OS spreads T3's step and the voicing over the cores with
none idle, and no thread team waits at a barrier for a thread the OS has put aside. Those voicing threads run at a
lower OS priority (nice 10), so T3's thread keeps a core whenever it has a step to run: every decoding row's
latency stays what T3 alone would give it, and S3Gen takes the rest of the machine.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from workers.engines.base import AudioPiece, EngineOutput, RequestFailed
from workers.engines.piece_watermark import PieceWatermarker
from workers.engines.s3gen_batch import VocoderInput, VoiceStream, vocode, vocode_pieces

logger = logging.getLogger(__name__)

TURBO_MEANFLOW_STEPS = 2
CPU_VOICER_NICENESS = 10


@dataclass(frozen=True)
class VoiceJob:
    request_id: str
    tokens: torch.Tensor
    """The chunk's speech tokens so far (all of them, silence appended, when final)."""
    ref_dict: dict[str, Any]
    final: bool
    stream: VoiceStream | None = None
    """Set for a streamed chunk: its S3Gen state, carried from piece to piece."""
    marker: PieceWatermarker | None = None


class ThreadShare:
    """torch's intra-op CPU threads: all of them to a thread that starts working alone (a lone request voices as
    fast as the library's own generate, and exactly as it does), one to each that starts while another works.

    torch's thread count holds for the thread that sets it, so each sets its own as it starts working. A thread
    that started alone keeps its team until it finishes that step or that row, so the cores are oversubscribed
    for that long at most.
    """

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._working = 0
        self._lock = threading.Lock()

    @contextmanager
    def working(self) -> Iterator[None]:
        with self._lock:
            self._working += 1
            torch.set_num_threads(self._threads if self._working == 1 else 1)
        try:
            yield
        finally:
            with self._lock:
                self._working -= 1


class Voicer:
    """Threads voicing jobs with S3Gen and watermarking them; `collect` hands back what they have made."""

    def __init__(self, model: Any, watermark: Any, *, max_rows: int, workers: int, threads: ThreadShare) -> None:
        self._s3gen = model.s3gen
        self._sample_rate: int = model.sr
        self._watermark = watermark
        self._max_rows = max_rows
        self._threads = threads
        self._changed = threading.Condition()
        self._pieces: deque[VoiceJob] = deque()
        self._wholes: deque[VoiceJob] = deque()
        self._running: dict[int, list[VoiceJob]] = {}
        """The group each voicing thread is on, by thread index."""
        self._dropped: set[str] = set()
        """Requests cancelled while their jobs were being voiced."""
        self._made: list[EngineOutput] = []
        self._closed = False
        self._workers = [
            threading.Thread(target=self._serve, args=(index,), name=f"s3gen-{index}", daemon=True)
            for index in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def busy(self) -> bool:
        """Whether any job is waiting, being voiced, or made and not yet collected."""
        with self._changed:
            return bool(self._pieces or self._wholes or self._running or self._made)

    def submit(self, job: VoiceJob) -> None:
        with self._changed:
            (self._wholes if job.stream is None else self._pieces).append(job)
            self._changed.notify_all()

    def cancel(self, request_id: str) -> None:
        with self._changed:
            for jobs in (self._pieces, self._wholes):
                kept = [job for job in jobs if job.request_id != request_id]
                jobs.clear()
                jobs.extend(kept)
            if any(job.request_id == request_id for group in self._running.values() for job in group):
                self._dropped.add(request_id)
            self._made = [output for output in self._made if output.request_id != request_id]

    def collect(self, wait_s: float = 0.0) -> list[EngineOutput]:
        """What has been voiced since the last call; waits up to `wait_s` for something while jobs are pending."""
        with self._changed:
            if not self._made and wait_s > 0 and (self._pieces or self._wholes or self._running):
                self._changed.wait(wait_s)
            made, self._made = self._made, []
            return made

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for worker in self._workers:
            worker.join()

    def _serve(self, index: int) -> None:
        if len(self._workers) > 1:
            _lower_this_threads_priority()
        while True:
            with self._changed:
                group: list[VoiceJob] = []
                while not self._closed and not (group := self._next_group()):
                    self._changed.wait()
                if self._closed:
                    return
                self._running[index] = group
            with self._threads.working():
                made = self._voice(group)
            with self._changed:
                self._made += [output for output in made if output.request_id not in self._dropped]
                self._dropped -= {job.request_id for job in group}
                del self._running[index]
                self._changed.notify_all()

    def _next_group(self) -> list[VoiceJob]:
        """Streamed pieces first, then whole chunks; at most one job per chunk at a time, in the order they came (a
        chunk's next piece waits while another thread voices its last)."""
        busy = {job.request_id for group in self._running.values() for job in group}
        for queue in (self._pieces, self._wholes):
            group: list[VoiceJob] = []
            for job in list(queue):
                if len(group) == self._max_rows:
                    break
                if job.request_id not in busy:
                    group.append(job)
                    queue.remove(job)
                busy.add(job.request_id)  # its later jobs wait behind this one
            if group:
                return group
        return []

    def _voice(self, group: list[VoiceJob]) -> list[EngineOutput]:
        try:
            with torch.inference_mode():
                if group[0].stream is None:
                    waveforms = vocode(
                        self._s3gen,
                        [VocoderInput(job.tokens, job.ref_dict) for job in group],
                        n_timesteps=TURBO_MEANFLOW_STEPS,
                        meanflow=True,
                        max_rows=self._max_rows,
                    )
                    return [self._whole(job, waveform) for job, waveform in zip(group, waveforms, strict=True)]
                waveforms = vocode_pieces(
                    self._s3gen,
                    [(VocoderInput(job.tokens, job.ref_dict), job.stream, job.final) for job in group if job.stream],
                    n_timesteps=TURBO_MEANFLOW_STEPS,
                    meanflow=True,
                    max_rows=self._max_rows,
                )
                return [
                    piece
                    for job, waveform in zip(group, waveforms, strict=True)
                    for piece in self._piece(job, waveform)
                ]
        except Exception as error:
            logger.exception("S3Gen failed on %d rows", len(group))
            return [RequestFailed(job.request_id, error) for job in group]

    def _whole(self, job: VoiceJob, waveform: torch.Tensor) -> AudioPiece:
        # Perth's network, run with autograd on, grows host memory (devnen #164): the caller's inference_mode.
        samples = waveform.detach().cpu().numpy()
        watermarked = self._watermark.apply_watermark(samples, sample_rate=self._sample_rate)
        return AudioPiece(job.request_id, watermarked.astype("float32", copy=False), final=True)

    def _piece(self, job: VoiceJob, waveform: torch.Tensor) -> list[AudioPiece]:
        assert job.marker is not None
        samples = job.marker.push(waveform.detach().cpu().numpy(), final=job.final)
        if samples.size == 0 and not job.final:
            return []
        return [AudioPiece(job.request_id, samples, final=job.final)]


def _lower_this_threads_priority() -> None:
    """Linux schedules threads one by one: a thread's niceness is set through its own id."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CPU_VOICER_NICENESS)
    except OSError as error:
        logger.warning("could not lower S3Gen's thread priority (%s); T3's steps may wait for it", error)
