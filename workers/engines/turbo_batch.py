"""Continuous batching of ChatterBox Turbo: T3 decodes every active chunk at each step, S3Gen voices them batched.

`ChatterboxTurboTTS.generate` speaks one chunk: T3 (a GPT-2) decodes speech tokens one at a time, then S3Gen
turns them into a waveform. A decode step of one sequence is bound by reading the weights, so it costs about what
a step of many does. Here each chunk is a row with a slot in one KV cache (kv_slots.py): a row joins by running its
prompt through T3 into a free slot (prefill), every step decodes one token for all rows together with each row's
own sampling parameters (sampling.py), and a row leaves when it samples the stop token or reaches the token limit,
freeing its slot for the next waiting chunk. S3Gen voices finished rows, and the next pieces of streamed ones, in
a thread beside the decoding (voicing.py), so the batch never stops for it. A row's prompt starts with its voice's
conditioning, the same few hundred positions for every chunk of that voice: their keys and values are computed once
per voice and copied into each new row's slot (kv_slots.py), so a row's prefill runs only its text.

Every row follows `T3.inference_turbo` exactly: the same prompt (voice conditioning, text, start token), absolute
positions counted per row, the same processors in the same order, the first token never taken as a stop (the
library does not check it), at most 1 + `max_new_tokens` tokens, the stop token dropped; then generate's own
post-processing (tokens below 6561, three silence tokens) and S3Gen with two meanflow steps. With greedy sampling
(top_k=1) a row's tokens are those of the library's single-sequence path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from workers.engines.base import ChunkRequest, EngineError, EngineOutput, RequestFailed
from workers.engines.kv_slots import CachedPrefix, PrefixStore, SlotCache
from workers.engines.packed_projections import batched_decoder, packs_projections
from workers.engines.piece_watermark import PieceWatermarker
from workers.engines.prefix_attention import SharedPrefix, use_shared_prefix_attention
from workers.engines.s3gen_batch import VoiceStream
from workers.engines.sampling import BatchSampler, RowSampling
from workers.engines.voicing import ThreadShare, VoiceJob, Voicer
from workers.engines.waiting import WaitingRequests

logger = logging.getLogger(__name__)

START_SPEECH = 6561
STOP_SPEECH = 6562
SILENCE = 4299  # chatterbox.models.s3gen.const.S3GEN_SIL, appended three times by generate
VOICER_WAIT_S = 0.05
VOICE_PREFIXES = 8
"""Voices whose conditioning keys and values are kept (a few tens of MB each for Turbo's GPT-2 medium)."""
LONGEST_PIECE_FACTOR = 8
"""A streamed chunk's pieces double in length, from STREAM_TOKENS up to this many times it: the first audio comes
soon, and a long chunk is not voiced over and over (each piece runs the flow over all its tokens so far)."""


@dataclass
class TurboRow:
    """One chunk on its way through T3 and S3Gen."""

    request: ChunkRequest
    text_tokens: torch.Tensor
    """(1, tokens) text token ids, as generate tokenizes them."""
    t3_cond: Any
    ref_dict: dict[str, Any]
    sampling: RowSampling
    prefix: CachedPrefix | None = None
    """The keys and values of its voice's conditioning, the first positions of its slot (set by the prefill)."""
    tokens: list[int] = field(default_factory=list)
    length: int = 0
    """Positions of this row held in its KV slot."""
    slot: int = -1
    finished: bool = False
    stream: VoiceStream | None = None
    """Set for a request that streams: S3Gen's state from piece to piece."""
    marker: PieceWatermarker | None = None
    next_piece_at: int = 0
    """Speech tokens after which the next piece is voiced."""
    piece_tokens: int = 0

    @property
    def speech_tokens(self) -> list[int]:
        """The tokens S3Gen can voice (generate drops start, stop and anything past them)."""
        return [token for token in self.tokens if token < START_SPEECH]


class TurboStepFailed(Exception):
    def __init__(self, rows: list[TurboRow], error: Exception) -> None:
        super().__init__(str(error))
        self.rows = rows
        self.error = error


@dataclass(frozen=True)
class TurboLimits:
    max_batch: int
    max_new_tokens: int
    max_text_tokens: int
    """Room in each slot for a chunk's text tokens."""
    kv_cache_bytes: int
    stream_tokens: int = 25
    """Speech tokens in the first piece of a streamed request (25: a second of speech)."""
    vocoder_batch: int = 16
    """Rows S3Gen voices in one call."""
    vocoder_threads: int = 1
    """Threads voicing at once (one per core on a CPU, see voicing.py)."""


class TurboBatch:
    """The rows of one Turbo model: those waiting for a slot and those decoding."""

    def __init__(self, model: Any, limits: TurboLimits, watermark: Any) -> None:
        self._model = model
        self._t3 = model.t3
        self._watermark = watermark
        self._max_new_tokens = limits.max_new_tokens
        self._stream_tokens = limits.stream_tokens
        config = self._t3.tfmr.config
        self._max_text_tokens = limits.max_text_tokens
        # Conditioning, text, the start token, then every speech token (1 + max_new_tokens): a row never outgrows it.
        capacity = self._t3.hp.speech_cond_prompt_len + limits.max_text_tokens + limits.max_new_tokens + 3
        slot_bytes = (
            capacity * config.n_layer * 2 * config.n_embd * torch.finfo(self._t3.speech_head.weight.dtype).bits // 8
        )
        self.slots = max(1, min(limits.max_batch, limits.kv_cache_bytes // slot_bytes))
        if self.slots < limits.max_batch:
            logger.warning(
                "the KV cache budget of %d MB holds %d rows of %d positions, not ENGINE_MAX_BATCH=%d",
                limits.kv_cache_bytes >> 20,
                self.slots,
                capacity,
                limits.max_batch,
            )
        self._cache = SlotCache(config.n_layer, self.slots, capacity)
        # Several rows' decode steps go through oneDNN on a CPU (packed_projections.py), reading each voice's
        # conditioning once (prefix_attention.py); one row's through T3 itself.
        self._batched_tfmr: Any = None
        if self.slots > 1 and packs_projections(self._device):
            self._batched_tfmr = batched_decoder(self._t3.tfmr, self.slots)
            use_shared_prefix_attention(self._batched_tfmr)
        self._prefixes: PrefixStore[Any] = PrefixStore(VOICE_PREFIXES)
        self._sampler = BatchSampler(self.slots, self._t3.hp.speech_tokens_dict_size, self._device)
        self._waiting: WaitingRequests[TurboRow] = WaitingRequests()
        self._active: list[TurboRow] = []
        self._threads = ThreadShare(torch.get_num_threads())
        self._voicer = Voicer(
            model, watermark, max_rows=limits.vocoder_batch, workers=limits.vocoder_threads, threads=self._threads
        )
        logger.info("turbo batch: %d rows of up to %d positions (%d MB of KV cache)", self.slots, capacity,
                    self.slots * slot_bytes >> 20)  # fmt: skip

    @property
    def _device(self) -> torch.device:
        device: torch.device = self._t3.speech_head.weight.device
        return device

    @property
    def busy(self) -> bool:
        return bool(self._active) or len(self._waiting) > 0 or self._voicer.busy

    @property
    def decoding(self) -> list[str]:
        """Ids of the requests holding a slot now."""
        return [row.request.id for row in self._active]

    def add(self, row: TurboRow) -> None:
        tokens = row.text_tokens.shape[1]
        if tokens > self._max_text_tokens:
            raise EngineError(f"this chunk is {tokens} text tokens, over the {self._max_text_tokens} a chunk may have")
        self._waiting.push(row.request.id, row.request.priority, row)

    def cancel(self, request_id: str) -> None:
        if not self._waiting.cancel(request_id):
            self._drop(request_id)
        self._voicer.cancel(request_id)

    def _drop(self, request_id: str) -> None:
        """The row of this request leaves its slot, if it holds one."""
        for row in self._active:
            if row.request.id == request_id:
                self._leave(row)
                return

    def step(self) -> list[EngineOutput]:
        """Admit waiting rows into free slots, decode one token for every active row, hand the finished ones and
        the streamed ones due for their next piece to S3Gen; what S3Gen has voiced since the last step."""
        failed: list[EngineOutput] = []
        if self._active or len(self._waiting) > 0:
            with self._threads.working():
                try:
                    finished = self.decode_step()
                except TurboStepFailed as failure:
                    failed = [RequestFailed(row.request.id, failure.error) for row in failure.rows]
                    finished = []
            for row in finished:
                self._voicer.submit(self._voice_job(row, final=True))
            for row in self._active:
                if row.stream is not None and len(row.speech_tokens) >= row.next_piece_at:
                    self._voicer.submit(self._voice_job(row, final=False))
        # With no row decoding, the loop would only spin: wait a little for S3Gen instead.
        made = self._voicer.collect(wait_s=0.0 if self._active else VOICER_WAIT_S)
        for output in made:
            if isinstance(output, RequestFailed):
                self._drop(output.request_id)
        return failed + made

    def close(self) -> None:
        """Stop S3Gen's thread (after the job it is voicing)."""
        self._voicer.close()

    def decode_step(self) -> list[TurboRow]:
        """The T3 half of a step: admit, decode one token for every active row; the rows that finished, which
        have left their slots. Raises TurboStepFailed (all active rows gone) when a forward pass fails."""
        done: list[TurboRow] = []
        with torch.inference_mode():
            try:
                self._admit()
                done += self._take_finished()
                self._decode()
                done += self._take_finished()
            except Exception as error:
                # A failed forward pass leaves the whole batch's state unknown: fail its rows, keep the engine.
                logger.exception("turbo batch step failed; failing its %d rows", len(self._active) + len(done))
                failed = done + list(self._active)
                for row in self._active[:]:
                    self._leave(row)
                raise TurboStepFailed(failed, error) from error
        return done

    def _admit(self) -> None:
        while len(self._active) < self.slots:
            row = self._waiting.pop()
            if row is None:
                return
            row.slot = len(self._active)
            self._active.append(row)
            self._prefill(row)

    def _prefill(self, row: TurboRow) -> None:
        t3 = self._t3
        start = torch.tensor([[START_SPEECH]], device=self._device)
        embeds, cond_length = t3.prepare_input_embeds(
            t3_cond=row.t3_cond, text_tokens=row.text_tokens, speech_tokens=start, cfg_weight=0.0
        )
        # A voice's conditioning is the first few hundred positions of every prompt it speaks: run once, restored.
        prefix = self._prefixes.get(row.t3_cond)
        if prefix is None:
            self._run_prompt(row.slot, embeds[:, :cond_length], 0)
            prefix = self._cache.prefix(row.slot, cond_length)
            self._prefixes.put(row.t3_cond, prefix)
        else:
            self._cache.restore(row.slot, prefix)
        row.prefix = prefix
        hidden = self._run_prompt(row.slot, embeds[:, cond_length:], cond_length)
        length = embeds.shape[1]
        logits = t3.speech_head(hidden[:, -1])
        # The first token is sampled with the start token as the "generated" ones (inference_turbo's input_ids).
        self._sampler.assign(row.slot, row.sampling, seen=[START_SPEECH])
        token = self._sampler.sample(row.slot, logits)
        self._sampler.forget_seen(row.slot)
        self._sampler.record(row.slot, token)
        row.length = length
        if row.request.stream:
            row.stream = VoiceStream.for_tokens(self._model.s3gen, row.ref_dict, self._max_new_tokens + 4)
            row.marker = PieceWatermarker(self._watermark, self._model.sr)
            row.piece_tokens = row.next_piece_at = self._stream_tokens
        self._append(row, int(token[0]), first=True)

    def _run_prompt(self, slot: int, embeds: torch.Tensor, start: int) -> torch.Tensor:
        """Prompt positions `start ..` of `slot` through T3; the hidden states."""
        length = embeds.shape[1]
        mask = self._cache.plan_prefill(slot, length, self._device, start)
        hidden: torch.Tensor = self._t3.tfmr(
            inputs_embeds=embeds,
            past_key_values=self._cache,
            attention_mask=mask,
            position_ids=torch.arange(start, start + length, device=self._device)[None],
            use_cache=True,
        )[0]
        return hidden

    def _decode(self) -> None:
        # Finished rows have left (see _leave), so the decoding rows hold slots 0 .. len(rows) - 1.
        rows = self._active
        if not rows:
            return
        lengths = torch.tensor([row.length for row in rows], device=self._device)
        current = torch.tensor([[row.tokens[-1]] for row in rows], device=self._device)
        mask = self._cache.plan_decode(lengths)
        inputs = {
            "inputs_embeds": self._t3.speech_emb(current),
            "past_key_values": self._cache,
            "attention_mask": mask,
            "position_ids": lengths[:, None],
            "use_cache": True,
        }
        if len(rows) > 1 and self._batched_tfmr is not None:
            hidden = self._batched_tfmr(**inputs, shared_prefixes=_shared_prefixes(rows, self._device))[0]
        else:
            hidden = self._t3.tfmr(**inputs)[0]
        tokens = self._sampler.sample(0, self._t3.speech_head(hidden[:, -1]))
        self._sampler.record(0, tokens)
        for row, token in zip(rows, tokens.tolist(), strict=True):
            row.length += 1
            self._append(row, token, first=False)

    def _append(self, row: TurboRow, token: int, *, first: bool) -> None:
        if token < 0:  # every logit filtered out: inference_turbo stops without a token
            row.finished = True
            return
        row.tokens.append(token)
        if (token == STOP_SPEECH and not first) or len(row.tokens) > self._max_new_tokens:
            row.finished = True

    def _take_finished(self) -> list[TurboRow]:
        finished = [row for row in self._active if row.finished]
        for row in finished:
            self._leave(row)
        return finished

    def _voice_job(self, row: TurboRow, *, final: bool) -> VoiceJob:
        if not final:
            # Piece lengths double, so a long chunk is not voiced over and over (each piece runs the flow over all
            # its tokens so far).
            row.piece_tokens = min(2 * row.piece_tokens, LONGEST_PIECE_FACTOR * self._stream_tokens)
            row.next_piece_at = len(row.speech_tokens) + row.piece_tokens
        silence = [SILENCE] * 3 if final else []
        tokens = torch.tensor(row.speech_tokens + silence, device=self._device)
        return VoiceJob(row.request.id, tokens, row.ref_dict, final, row.stream, row.marker)

    def _leave(self, row: TurboRow) -> None:
        """Free the row's slot, moving the last active row into it so active rows stay in the first slots."""
        index = self._active.index(row)
        last = self._active[-1]
        if last is not row:
            self._cache.move(last.slot, row.slot, last.length)
            self._sampler.move(last.slot, row.slot)
            last.slot = row.slot
            self._active[index] = last
        self._active.pop()
        row.slot = -1


def _shared_prefixes(rows: list[TurboRow], device: torch.device) -> list[SharedPrefix]:
    """The decoding rows grouped by the voice prefix they start with (rows hold slots 0 .. len(rows) - 1)."""
    groups: dict[int, tuple[CachedPrefix, list[int]]] = {}
    for index, row in enumerate(rows):
        assert row.prefix is not None, "a decoding row has been through its prefill"
        groups.setdefault(id(row.prefix), (row.prefix, []))[1].append(index)
    shared = []
    for prefix, members in groups.values():
        consecutive = members == list(range(members[0], members[-1] + 1))
        places = slice(members[0], members[-1] + 1) if consecutive else torch.tensor(members, device=device)
        shared.append(SharedPrefix(places, prefix))
    return shared


def turbo_row(model: Any, request: ChunkRequest, conds: Any) -> TurboRow:
    """A request as generate would start it: its text normalised and tokenized, its voice's conditionals."""
    from chatterbox.tts_turbo import punc_norm

    params = request.params
    encoded = model.tokenizer(punc_norm(request.text), return_tensors="pt", padding=True, truncation=True)
    return TurboRow(
        request=request,
        text_tokens=encoded.input_ids.to(model.t3.speech_head.weight.device),
        t3_cond=conds.t3,
        ref_dict=conds.gen,
        sampling=RowSampling(params.temperature, params.top_k, params.top_p, params.repetition_penalty),
    )
