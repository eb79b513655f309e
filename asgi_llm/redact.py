"""Secrets out of text that may reach a log, an error or a client: passwords in URLs.

A module of its own so that anything may use it (config, lifespan, errors) without importing
the config package.
"""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?<=://)([^/@:\s]*):[^/@\s]*@")


def redact_url_passwords(text: str) -> str:
    """`redis://user:secret@host` -> `redis://user:***@host`, wherever it appears in `text`."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


__all__ = ["redact_url_passwords"]
