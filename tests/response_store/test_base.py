"""The record's JSON form and the id rule: what every store relies on."""

from __future__ import annotations

import orjson
import pytest

from asgi_llm.errors import ServiceUnavailable
from asgi_llm.response_store import RECORD_VERSION, ResponseStoreUnavailable, StoredResponse, valid_id
from tests.response_store.conftest import RecordFactory, make_record


def test_json_round_trip_keeps_every_field(record: RecordFactory) -> None:
    original = record(deployment=None, upstream_id="resp_upstream1")
    raw = original.to_json()
    assert orjson.loads(raw)["v"] == RECORD_VERSION
    assert StoredResponse.from_json(raw) == original


def _tampered(**changes: object) -> bytes:
    data = orjson.loads(make_record().to_json())
    data.update(changes)
    return orjson.dumps({k: v for k, v in data.items() if v is not ...})


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x80\x04pickle", id="not-json"),
        pytest.param(b"[1, 2]", id="not-an-object"),
        pytest.param(_tampered(v=RECORD_VERSION + 1), id="another-version"),
        pytest.param(_tampered(v=...), id="no-version"),
        pytest.param(_tampered(namespace=...), id="no-namespace"),
        pytest.param(_tampered(namespace=""), id="empty-namespace"),
        pytest.param(_tampered(id="../etc"), id="invalid-id"),
        pytest.param(_tampered(created_at=True), id="bool-created-at"),
        pytest.param(_tampered(created_at="1750000000"), id="string-created-at"),
        pytest.param(_tampered(response=[]), id="response-not-an-object"),
        pytest.param(_tampered(input_items=["hello"]), id="input-item-not-an-object"),
        pytest.param(_tampered(output_items={}), id="output-items-not-a-list"),
        pytest.param(_tampered(deployment=7), id="deployment-not-a-string"),
        pytest.param(_tampered(upstream_id=["x"]), id="upstream-id-not-a-string"),
    ],
)
def test_anything_but_a_record_of_this_version_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        StoredResponse.from_json(raw)


@pytest.mark.parametrize(
    "response_id",
    ["resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "a", "A-b_9", "r" * 128],
)
def test_valid_ids(response_id: str) -> None:
    assert valid_id(response_id)


@pytest.mark.parametrize(
    "response_id",
    ["", "r" * 129, "resp_1\n", "resp:1", "resp_*", "{tag}", "resp 1", "résp", "../x", None, 12],
)
def test_invalid_ids(response_id: object) -> None:
    assert not valid_id(response_id)


def test_unavailable_is_a_retryable_503_that_keeps_its_reason_for_the_log() -> None:
    exc = ResponseStoreUnavailable("ConnectionError: Error 111 connecting to 10.0.0.5:6379")
    assert isinstance(exc, ServiceUnavailable)
    assert (exc.status, exc.code) == (503, "dependency_unavailable")
    assert (b"retry-after", b"1") in exc.headers
    assert "10.0.0.5" not in exc.message and "10.0.0.5" in exc.reason
