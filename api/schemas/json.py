"""Field types whose validation means what their JSON Schema says (the request models are strict)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator


def _integral_float_to_int(value: object) -> object:
    # JSON Schema's "integer" is any number without a fraction, 2089.0 included; strict pydantic wants an int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral_float_to_int)]
"""An integer as JSON Schema has it: 5 or 5.0, never "5" or true."""
