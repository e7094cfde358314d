"""S3Gen (the flow and the HiFT vocoder) over several finished rows at once, as ChatterBox Turbo's generate would
run it over each alone.

S3Gen's flow already takes a batch (its `inference` pads with `token_len` and repeats single prompts), but it puts
each row's voice prompt in front of its tokens and cuts the prompt off by one length for the whole batch, so rows
run together only when their voice prompts are of equal length: rows of one voice always are, and so are voices
from clips of ten seconds or more (S3Gen keeps the first ten). Each group makes one flow call and one vocoder call;
each row's waveform is then cut to its own length and faded in as `S3Token2Wav.inference` does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

SAMPLES_PER_MEL_FRAME = 480
"""HiFT's output hop at 24 kHz: a mel frame is 20 ms (two frames per speech token)."""


@dataclass(frozen=True)
class VocoderInput:
    tokens: torch.Tensor
    """(tokens,) speech tokens, silence appended as generate does."""
    ref_dict: dict[str, Any]
    """The voice's S3Gen conditionals (`Conditionals.gen`)."""


def vocode(s3gen: Any, rows: list[VocoderInput], *, n_timesteps: int, meanflow: bool) -> list[torch.Tensor]:
    """Each row's waveform (1-D, on the model's device), in the order given."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[_prompt_shape(row.ref_dict)].append(index)
    waveforms: list[torch.Tensor | None] = [None] * len(rows)
    for members in groups.values():
        group = _vocode_group(s3gen, [rows[i] for i in members], n_timesteps, meanflow)
        for index, waveform in zip(members, group, strict=True):
            waveforms[index] = waveform
    return [waveform for waveform in waveforms if waveform is not None]


def _prompt_shape(ref_dict: dict[str, Any]) -> tuple[int, int]:
    return int(ref_dict["prompt_token"].shape[-1]), int(ref_dict["prompt_feat"].shape[1])


def _vocode_group(s3gen: Any, rows: list[VocoderInput], n_timesteps: int, meanflow: bool) -> list[torch.Tensor]:
    device = s3gen.device
    lengths = torch.tensor([len(row.tokens) for row in rows], device=device)
    tokens = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long, device=device)
    for index, row in enumerate(rows):
        tokens[index, : len(row.tokens)] = row.tokens
    refs = [row.ref_dict for row in rows]
    prompt_tokens, prompt_frames = _prompt_shape(refs[0])
    noise = None
    if meanflow:  # S3Token2Wav.flow_inference draws the same for one row
        noise = torch.randn(len(rows), 80, tokens.shape[1] * 2, dtype=s3gen.dtype, device=device)
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
    waveforms, _ = s3gen.hift_inference(mels.to(dtype=s3gen.dtype), None)
    fade = s3gen.trim_fade
    out = []
    for index, length in enumerate(lengths.tolist()):
        # The frames this row would have had alone: its prompt and tokens, two frames a token, less the prompt's.
        frames = 2 * (prompt_tokens + length) - prompt_frames
        waveform = waveforms[index, : frames * SAMPLES_PER_MEL_FRAME].clone()
        waveform[: len(fade)] *= fade[: len(waveform)]
        out.append(waveform)
    return out
