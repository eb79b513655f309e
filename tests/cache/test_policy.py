"""What a request asks of the cache: the headers' bounds, as the error tells them."""

from __future__ import annotations

import pytest

from asgi_llm.cache.policy import read_directives
from asgi_llm.config.schema import Cache
from asgi_llm.errors import InvalidRequest


def scope(**headers: str) -> dict:
    return {
        "type": "http",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


@pytest.mark.parametrize(
    ("headers", "bounds"),
    [
        ({"x_cache_ttl": "-1"}, "from 0 to 315360000."),
        ({"x_cache_ttl": "1e12"}, "from 0 to 315360000."),
        ({"x_cache_threshold": "0.1"}, "from 0.5 to 1."),
    ],
)
def test_an_out_of_range_header_states_its_bounds_as_plain_numbers(headers, bounds):
    with pytest.raises(InvalidRequest) as info:
        read_directives(scope(**headers), Cache())
    assert info.value.message.endswith(bounds), info.value.message
    assert "e+" not in info.value.message


def test_a_ttl_within_bounds_is_capped_by_the_config():
    directives = read_directives(scope(x_cache_ttl="300000000"), Cache(max_ttl_s=60))
    assert directives.ttl_s == 60 and directives.store
