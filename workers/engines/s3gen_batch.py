"""S3Gen (the flow and the HiFT vocoder) over several rows at once: whole chunks as ChatterBox Turbo's generate
would voice each alone, or, for streaming, the next piece of each chunk while its tokens are still being decoded.

S3Gen's flow already takes a batch (its `inference` pads with `token_len` and repeats single prompts), but it puts
each row's voice prompt in front of its tokens and cuts the prompt off by one length for the whole batch, so rows
run together only when their voice prompts are of equal length: rows of one voice always are, and so are voices
from clips of ten seconds or more (S3Gen keeps the first ten).

Streaming follows CosyVoice 2's token2wav, whose flow and HiFT S3Gen are: each piece runs the flow again over all
the chunk's tokens so far with the same noise where it ran before (so the frames already sent hardly change),
keeps only the frames that no later token can change (the flow's pre-lookahead: the last three tokens' six frames
wait), and vocodes them with HiFT starting from the previous piece's last eight mel frames and excitation source,
crossfading the overlap with a Hamming window; the overlap's last samples wait for the next piece. The final piece
sends everything, so a chunk streamed has exactly the length it has voiced whole.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

SAMPLES_PER_MEL_FRAME = 480
"""HiFT's output hop at 24 kHz: a mel frame is 20 ms (two frames per speech token)."""
PRE_LOOKAHEAD_FRAMES = 6
"""The flow's lookahead (3 tokens, `pre_lookahead_len`) in mel frames: a piece's last frames that may still change."""
OVERLAP_FRAMES = 8
"""Mel frames each streamed piece re-reads before its new ones (CosyVoice 2's mel_cache_len)."""
OVERLAP_SAMPLES = OVERLAP_FRAMES * SAMPLES_PER_MEL_FRAME
MEL_CHANNELS = 80


@dataclass(frozen=True)
class VocoderInput:
    tokens: torch.Tensor
    """(tokens,) speech tokens; for a whole chunk or a final piece, silence appended as generate does."""
    ref_dict: dict[str, Any]
    """The voice's S3Gen conditionals (`Conditionals.gen`)."""


@dataclass
class VoiceStream:
    """One streamed chunk's S3Gen state from piece to piece."""

    noise: torch.Tensor
    """(1, 80, frames): the flow's starting noise for every frame the chunk can have, drawn once."""
    frames_sent: int = 0
    mel_tail: torch.Tensor | None = None
    source_tail: torch.Tensor | None = None
    speech_tail: torch.Tensor | None = None

    @classmethod
    def for_tokens(cls, s3gen: Any, ref_dict: dict[str, Any], max_tokens: int) -> VoiceStream:
        prompt_tokens, _ = _prompt_shape(ref_dict)
        frames = 2 * (prompt_tokens + max_tokens)
        return cls(torch.randn(1, MEL_CHANNELS, frames, dtype=s3gen.dtype, device=s3gen.device))


def vocode(
    s3gen: Any, rows: list[VocoderInput], *, n_timesteps: int, meanflow: bool, max_rows: int
) -> list[torch.Tensor]:
    """Each row's whole waveform (1-D, on the model's device), in the order given, voiced `max_rows` at most at a
    time."""

    def voice_group(group: list[VocoderInput]) -> list[torch.Tensor]:
        longest = max(len(row.tokens) for row in group)
        noise = None
        if meanflow:  # what S3Token2Wav.flow_inference draws for one row
            noise = torch.randn(len(group), MEL_CHANNELS, 2 * longest, dtype=s3gen.dtype, device=s3gen.device)
        mels = _flow(s3gen, group, n_timesteps, meanflow, noise)
        padded = torch.zeros(len(group), MEL_CHANNELS, max(mel.shape[1] for mel in mels), device=s3gen.device)
        for index, mel in enumerate(mels):
            padded[index, :, : mel.shape[1]] = mel
        waveforms, _ = s3gen.hift_inference(padded.to(dtype=s3gen.dtype), None)
        return [
            _faded_in(s3gen, waveforms[i, : mel.shape[1] * SAMPLES_PER_MEL_FRAME].clone()) for i, mel in enumerate(mels)
        ]

    return by_prompt_shape(rows, voice_group, max_rows)


def vocode_pieces(
    s3gen: Any,
    rows: list[tuple[VocoderInput, VoiceStream, bool]],
    *,
    n_timesteps: int,
    meanflow: bool,
    max_rows: int,
) -> list[torch.Tensor]:
    """The next piece of each streamed row: (its tokens so far, its stream, whether they are all of them).

    A piece may be empty (no new frame is settled yet). The rows' flow runs batched; HiFT runs per row, whose
    pieces differ in length and start from the row's own caches.
    """
    streams = {id(row): (stream, final) for row, stream, final in rows}

    def voice_group(group: list[VocoderInput]) -> list[torch.Tensor]:
        longest = max(len(row.tokens) for row in group)
        prompt_tokens, _ = _prompt_shape(group[0].ref_dict)
        frames = 2 * (prompt_tokens + longest)  # the flow's input length: the voice prompt, then the tokens
        noise = torch.stack([streams[id(row)][0].noise[0, :, :frames] for row in group])
        mels = _flow(s3gen, group, n_timesteps, meanflow, noise)
        return [_next_piece(s3gen, mel, *streams[id(row)]) for row, mel in zip(group, mels, strict=True)]

    return by_prompt_shape([row for row, _, _ in rows], voice_group, max_rows)


def _next_piece(s3gen: Any, mel: torch.Tensor, stream: VoiceStream, final: bool) -> torch.Tensor:
    settled = mel.shape[1] if final else mel.shape[1] - PRE_LOOKAHEAD_FRAMES
    new = mel[:, stream.frames_sent : settled]
    if not final and new.shape[1] <= OVERLAP_FRAMES:
        return torch.zeros(0, dtype=s3gen.dtype, device=s3gen.device)
    first = stream.mel_tail is None
    mels = new if stream.mel_tail is None else torch.cat([stream.mel_tail, new], dim=1)
    source = stream.source_tail if stream.source_tail is not None else torch.zeros(1, 1, 0, device=s3gen.device)
    output, excitation = s3gen.hift_inference(mels[None].to(dtype=s3gen.dtype), source)
    speech: torch.Tensor = output[0]
    if first:
        speech = _faded_in(s3gen, speech)
    else:
        assert stream.speech_tail is not None
        window = torch.hamming_window(2 * OVERLAP_SAMPLES, periodic=False, device=speech.device, dtype=speech.dtype)
        speech[:OVERLAP_SAMPLES] = speech[:OVERLAP_SAMPLES] * window[:OVERLAP_SAMPLES] + (
            stream.speech_tail * window[OVERLAP_SAMPLES:]
        )
    stream.frames_sent = settled
    if final:
        return speech
    stream.mel_tail = mels[:, -OVERLAP_FRAMES:]
    stream.source_tail = excitation[:, :, -OVERLAP_SAMPLES:]
    stream.speech_tail = speech[-OVERLAP_SAMPLES:].clone()
    return speech[:-OVERLAP_SAMPLES]


def _flow(
    s3gen: Any, rows: list[VocoderInput], n_timesteps: int, meanflow: bool, noise: torch.Tensor | None
) -> list[torch.Tensor]:
    """The flow over rows of one prompt shape: each row's mel frames (80, frames), as it would have them alone."""
    device = s3gen.device
    lengths = torch.tensor([len(row.tokens) for row in rows], device=device)
    tokens = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long, device=device)
    for index, row in enumerate(rows):
        tokens[index, : len(row.tokens)] = row.tokens
    refs = [row.ref_dict for row in rows]
    prompt_tokens, prompt_frames = _prompt_shape(refs[0])
    mels, _ = s3gen.flow.inference(
        token=tokens,
        token_len=lengths,
        prompt_token=torch.cat([ref["prompt_token"] for ref in refs]),
        prompt_token_len=torch.cat([ref["prompt_token_len"].reshape(1) for ref in refs]).to(device),
        prompt_feat=torch.cat([ref["prompt_feat"] for ref in refs]),
        prompt_feat_len=None,
        embedding=torch.cat([ref["embedding"].reshape(1, -1) for ref in refs]),
        finalize=True,
        n_timesteps=n_timesteps,
        noised_mels=noise,
        meanflow=meanflow,
    )
    # The frames a row would have had alone: its prompt and tokens, two frames a token, less the prompt's own.
    return [
        mels[index, :, : 2 * (prompt_tokens + length) - prompt_frames] for index, length in enumerate(lengths.tolist())
    ]


def _faded_in(s3gen: Any, waveform: torch.Tensor) -> torch.Tensor:
    """S3Token2Wav.inference's fade-in of a chunk's first 40 ms ("spillover" from the reference clip)."""
    fade = s3gen.trim_fade
    waveform[: len(fade)] *= fade[: len(waveform)]
    return waveform


def by_prompt_shape(rows: list[VocoderInput], voice: Any, max_rows: int) -> list[torch.Tensor]:
    """`voice` called on groups of rows of one prompt shape, `max_rows` at most; the results in the rows' order."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[_prompt_shape(row.ref_dict)].append(index)
    out: list[torch.Tensor | None] = [None] * len(rows)
    for members in groups.values():
        for start in range(0, len(members), max_rows):
            group = members[start : start + max_rows]
            for index, waveform in zip(group, voice([rows[i] for i in group]), strict=True):
                out[index] = waveform
    return [waveform for waveform in out if waveform is not None]


def _prompt_shape(ref_dict: dict[str, Any]) -> tuple[int, int]:
    return int(ref_dict["prompt_token"].shape[-1]), int(ref_dict["prompt_feat"].shape[1])
