"""`ledger.url` is checked when the config loads: a bad one fails `check-config` at its field
path with what is wrong, and never repeats a password."""

from __future__ import annotations

import pytest

from asgi_llm import Config, ConfigError
from asgi_llm.ledger.urls import parse_ledger_url


@pytest.mark.parametrize(
    ("url", "kind", "path"),
    [
        ("sqlite:///asgi-llm.db", "sqlite", "asgi-llm.db"),
        ("sqlite:////var/lib/asgi/ledger.db", "sqlite", "/var/lib/asgi/ledger.db"),
        (
            "postgresql://app:pw@db.internal:5432/asgi",
            "postgresql",
            "postgresql://app:pw@db.internal:5432/asgi",
        ),
        ("postgres://db/asgi", "postgresql", "postgres://db/asgi"),
    ],
)
def test_good_urls_name_their_backend(url, kind, path):
    assert tuple(parse_ledger_url(url)) == (kind, path)
    assert Config.from_dict({"ledger": {"url": url}}).ledger is not None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://app:s3cret-pw@db/asgi", "must be sqlite:///"),
        ("ledger.db", "must be sqlite:///"),
        ("sqlite://", "names a file"),
        ("sqlite:///dir/", "not a directory"),
        ("postgresql://app:s3cret-pw@/asgi", "needs a host"),
        ("postgresql://app:s3cret-pw@db:99999/asgi", "host and port"),
        ("postgresql://app:s3cret-pw@db:5432", "needs a database"),
        ("postgresql://app:s3cret-pw@bad host/asgi", "invalid host"),
    ],
)
def test_a_bad_url_is_refused_at_its_field_without_the_password(url, says):
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"ledger": {"url": url}})
    message = str(info.value)
    assert "ledger.url" in message and says in message, message
    assert "s3cret" not in message
