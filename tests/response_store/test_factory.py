"""The store a URL names, and the `responses` config section it comes from."""

from __future__ import annotations

import pytest

from asgi_llm import Config, ConfigError
from asgi_llm.response_store import MemoryResponseStore, RedisResponseStore, open_store
from tests.response_store.conftest import RecordFactory


async def test_memory_store_takes_its_bounds(record: RecordFactory) -> None:
    store = open_store("memory://", max_entries=1, max_bytes=1_000_000)
    assert isinstance(store, MemoryResponseStore)
    await store.put(record(response_id="resp_1"), ttl_s=60)
    await store.put(record(response_id="resp_2"), ttl_s=60)
    assert len(store) == 1


async def test_redis_urls_make_a_redis_store_without_connecting() -> None:
    for url in ("redis://127.0.0.1:1/3", "rediss://h:6380/0", "unix:///tmp/nothing.sock"):
        store = open_store(url, prefix="p:q", timeout_s=0.2)
        assert isinstance(store, RedisResponseStore) and store.prefix == "p:q"
        await store.aclose()


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown response store scheme"):
        open_store("postgresql://db/x")


def test_absent_section_means_memory_with_openai_retention() -> None:
    section = Config.from_dict({}).responses
    assert (section.store, section.ttl_s, section.key_prefix) == (
        "memory://",
        2_592_000.0,
        "asgi_llm:responses",
    )
    assert (section.max_entries, section.max_bytes, section.timeout_s) == (10_000, 104_857_600, 0.5)
    store = open_store(section.store, max_entries=section.max_entries, max_bytes=section.max_bytes)
    assert isinstance(store, MemoryResponseStore)


def test_the_section_loads_a_redis_store() -> None:
    section = Config.from_dict({"responses": {"store": "redis://:pw@cache:6379/3", "ttl_s": 3600}}).responses
    assert (section.store, section.ttl_s) == ("redis://:pw@cache:6379/3", 3600.0)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"store": "redis://cache:abc/3"}, "responses.store: invalid port 'abc'"),
        ({"store": "redis://cache:6379/three"}, "responses.store: invalid database number"),
        ({"store": "http://cache"}, "responses.store: must be a memory:// or Redis URL"),
        ({"key_prefix": "{tag}"}, "responses.key_prefix"),
        ({"ttl_s": 0}, "responses.ttl_s"),
        ({"timeout_s": 60}, "responses.timeout_s"),
        ({"bogus": 1}, "responses.bogus"),
    ],
)
def test_bad_settings_name_their_field_never_the_password(section: dict, problem: str) -> None:
    if "store" in section:
        section = {"store": section["store"].replace("://", "://:s3cret@")}
    with pytest.raises(ConfigError) as caught:
        Config.from_dict({"responses": section})
    assert problem in str(caught.value)
    assert "s3cret" not in str(caught.value)
