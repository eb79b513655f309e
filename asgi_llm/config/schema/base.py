"""Section: the base of every config model, and FieldError, a refusal at a field path."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FieldError(ValueError):
    """A check across fields, raised by a section's validator about a field below it:
    `loc` (`("aliases", 1)`) is appended to the section's path in the error message."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
