#!/usr/bin/env bash
# Wheels for bench/gpu.py on the GPU machine (Python 3.12, CUDA torch 2.11 already there): ChatterBox and what it
# imports at the versions requirements/chatterbox.txt pins where they differ from the machine's, and what the
# service's engine code imports. --no-deps: each is named here.
set -euo pipefail
cd "$(dirname "$0")/../.."
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d .whl \
  chatterbox-tts==0.1.7 transformers==5.2.0 diffusers==0.29.0 librosa==0.11.0 conformer==0.3.2 \
  resemble-perth==1.0.1 pyloudnorm==0.2.0 omegaconf==2.4.0 antlr4-python3-runtime==4.13.2 s3tokenizer==0.3.0 \
  soundfile soxr audioread pooch platformdirs decorator \
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection pydantic-settings python-dotenv \
  "setuptools<81"
# The built-in voice's clip, spoken by espeak here (espeak's and PyAV's wheels would not fit the 64 MiB carried).
.venv/bin/python -c "from pathlib import Path; from bench.checkpoint import write_espeak_reference as w; w(Path('.whl/reference.wav'))"
ls -la .whl
