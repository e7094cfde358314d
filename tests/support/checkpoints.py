"""Random-weight ChatterBox checkpoints for the tests, built once per test run by bench.checkpoint.

Each is built in its own process, so the builder's memory peak (about 6 GB) is gone before a test loads the model.
Set TEST_CHECKPOINT_DIR to keep them between runs (a directory is reused when its manifest matches).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import REPO_ROOT

SEED = 0
MEAN_TOKENS = 40


def checkpoint(variant: str, base: Path) -> Path:
    out = base / variant
    manifest = out / "checkpoint.json"
    if manifest.is_file():
        built = json.loads(manifest.read_text())
        if (built["variant"], built["seed"], built["mean_tokens"]) == (variant, SEED, MEAN_TOKENS):
            return out
    command = [
        sys.executable, "-m", "bench.checkpoint", "--variant", variant, "--out", str(out),
        "--seed", str(SEED), "--mean-tokens", str(MEAN_TOKENS),
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO_ROOT, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    return out
