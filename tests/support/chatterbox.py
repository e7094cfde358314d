"""Loading a ChatterBox engine on a random-weight checkpoint in the test process (one module's model at a time)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import torch

from core.settings import ChatterboxVariant, Settings
from tests.conftest import Checkpoints
from workers.engines.chatterbox import ChatterboxEngine


def loaded_engine(checkpoints: Checkpoints, variant: ChatterboxVariant, **settings: Any) -> Iterator[ChatterboxEngine]:
    """A loaded engine for a module-scoped fixture; unloaded when the module is done, before the next loads."""
    torch.set_num_threads(2)
    engine = ChatterboxEngine(
        Settings.model_construct(
            tts_engine="chatterbox",
            chatterbox_variant=variant,
            chatterbox_checkpoint_dir=checkpoints(variant),
            chatterbox_device="cpu",
            **settings,
        )
    )
    engine.load()
    yield engine
    engine.unload()
    gc.collect()
