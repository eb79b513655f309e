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


# Credentials a prompt may quote (pasted keys, tokens, a private key): provider and client API
# keys, Bearer values, JWTs, AWS and Google keys, PEM private keys, key digests.
_CREDENTIALS = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}"
    r"|\bBearer\s+[A-Za-z0-9_\-.~+/=]+"
    r"|\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"
    r"|\bAIza[0-9A-Za-z_\-]{20,}"
    r"|\bya29\.[\w\-.]{6,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
    r"|\bsha256:[0-9a-f]{16,}"
)


def redact_credentials(text: str) -> str:
    """Every credential `_CREDENTIALS` knows, and URL passwords, replaced by `***` (for text a
    client wrote, e.g. a prompt kept in the ledger)."""
    return _CREDENTIALS.sub("***", redact_url_passwords(text))


__all__ = ["redact_credentials", "redact_url_passwords"]
