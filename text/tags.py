"""Bracketed tags such as ChatterBox Turbo's `[laugh]`, `[sigh]` or `[clear throat]`: instructions to the model,
not text, so the normaliser leaves them untouched and the chunker never cuts inside one."""

import re

BRACKET_TAG = re.compile(r"\[[^\[\]\n]*\]")
