"""Language tags as requests and voices.json write them: `en`, `fr`, `pt-BR`, `en_GB`."""

from typing import Annotated

from pydantic import Field

LANGUAGE_TAG_PATTERN = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$"
LANGUAGE_TAG_MAX_LENGTH = 35

LanguageTag = Annotated[
    str,
    Field(
        pattern=LANGUAGE_TAG_PATTERN,
        max_length=LANGUAGE_TAG_MAX_LENGTH,
        description="A language tag such as en, fr or pt-BR.",
        examples=["fr"],
    ),
]


def subtags(language: str) -> list[str]:
    """`pt_BR` is ["pt", "br"]: lowercase, with either separator."""
    return language.replace("_", "-").lower().split("-")
