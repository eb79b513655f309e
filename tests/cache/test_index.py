"""Both vector indexes behind one protocol: groups, bounds, expiry, removal."""

from __future__ import annotations

import time

import numpy as np
import pytest

from asgi_llm.cache.guards import features
from asgi_llm.cache.index import ExactIndex, HNSWIndex, IndexItem

DIM = 16


def item(n: int, group: str = "g", *, ns: str = "n", model: str = "m", ttl: float = 60) -> IndexItem:
    return IndexItem(
        id=f"id{n}",
        digest=f"d{n}",
        group=group,
        namespace=ns,
        model=model,
        endpoint="chat",
        text=f"text {n}",
        features=features(f"text {n}"),
        expires=time.time() + ttl,
    )


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(params=["exact", "hnsw"])
def make(request):
    if request.param == "hnsw":
        pytest.importorskip("faiss")
        return lambda size: HNSWIndex(DIM, size)
    return lambda size: ExactIndex(DIM, size)


def test_search_finds_the_nearest_within_the_group_only(make):
    index = make(100)
    for n in range(20):
        index.add(item(n, "g" if n % 2 else "other"), vector(n))
    found = index.search("g", vector(3), 3)
    assert found[0][0].id == "id3" and found[0][1] == pytest.approx(1.0, abs=1e-5)
    assert all(hit.group == "g" for hit, _ in found)
    assert index.search("nobody", vector(3), 3) == []


def test_bounded_oldest_out_first(make):
    index = make(5)
    for n in range(8):
        index.add(item(n), vector(n))
    assert len(index) == 5
    assert index.search("g", vector(0), 1)[0][0].id != "id0"
    assert index.search("g", vector(7), 1)[0][0].id == "id7"


def test_expired_entries_are_not_found(make):
    index = make(10)
    index.add(item(1, ttl=-1), vector(1))
    index.add(item(2), vector(2))
    assert [hit.id for hit, _ in index.search("g", vector(1), 2)] == ["id2"]


def test_remove_by_namespace_or_model(make):
    index = make(10)
    index.add(item(1, ns="a", model="x"), vector(1))
    index.add(item(2, ns="a", model="y"), vector(2))
    index.add(item(3, ns="b", model="x"), vector(3))
    assert index.remove("a", "x") == 1
    assert index.remove(None, "x") == 1
    assert index.remove(None, None) == 1
    assert len(index) == 0 and index.search("g", vector(2), 3) == []


def test_readding_an_id_replaces_it(make):
    index = make(10)
    index.add(item(1), vector(1))
    index.add(item(1), vector(9))
    assert len(index) == 1
    assert index.search("g", vector(9), 1)[0][1] == pytest.approx(1.0, abs=1e-5)


def test_hnsw_rebuilds_when_tombstones_pile_up():
    pytest.importorskip("faiss")
    index = HNSWIndex(DIM, 600)
    for n in range(2000):
        index.add(item(n), vector(n))
    assert len(index) == 600 and len(index._items) < 2 * 600 + 1100
    assert index.search("g", vector(1999), 1)[0][0].id == "id1999"
