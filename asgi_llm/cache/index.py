"""Vector indexes for the semantic tier, behind one small protocol.

Entries are grouped by *context hash* (namespace, model, endpoint, parameters and every turn
but the last one): a search only ever looks inside the query's own group, so a similar
question from another tenant, model or conversation cannot be a candidate at all.

- `ExactIndex` (default): a NumPy matrix per group, exact cosine (vectors are normalized,
  so a dot product). Bounded (oldest out first) and TTL-aware.
- `HNSWIndex`: faiss HNSW over all entries, for large caches; the group is checked on the
  candidates, with tombstones for removals and a rebuild when they pile up.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from asgi_llm.cache.guards import Features


@dataclass(frozen=True, slots=True)
class IndexItem:
    """One indexed question: where its answer is stored and what the guards need."""

    id: str  # the exact entry's storage key
    digest: str
    group: str  # context hash
    namespace: str  # short digests, for purges
    model: str
    endpoint: str
    text: str
    features: Features
    expires: float  # wall clock (replicas compare it across machines)


class VectorIndex(Protocol):
    def add(self, item: IndexItem, vector: np.ndarray) -> None: ...

    def search(self, group: str, vector: np.ndarray, k: int) -> list[tuple[IndexItem, float]]:
        """Up to k live items of the group, best first, with their cosine similarity."""
        ...

    def remove(self, namespace: str | None, model: str | None) -> int: ...

    def __len__(self) -> int: ...


class _Group:
    __slots__ = ("items", "matrix", "rows")

    def __init__(self, dim: int) -> None:
        self.matrix = np.empty((4, dim), dtype=np.float32)
        self.items: list[IndexItem] = []
        self.rows: dict[str, int] = {}

    def put(self, item: IndexItem, vector: np.ndarray) -> None:
        row = self.rows.get(item.id)
        if row is None:
            row = len(self.items)
            if row == len(self.matrix):
                grown = np.empty((row * 2, self.matrix.shape[1]), dtype=np.float32)
                grown[:row] = self.matrix
                self.matrix = grown
            self.items.append(item)
            self.rows[item.id] = row
        else:
            self.items[row] = item
        self.matrix[row] = vector

    def drop(self, item_id: str) -> None:
        row = self.rows.pop(item_id, None)
        if row is None:
            return
        last = len(self.items) - 1
        if row != last:  # move the last row into the hole: O(1), order does not matter
            moved = self.items[last]
            self.items[row] = moved
            self.matrix[row] = self.matrix[last]
            self.rows[moved.id] = row
        self.items.pop()


class ExactIndex:
    def __init__(self, dim: int, max_entries: int) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self._groups: dict[str, _Group] = {}
        self._order: OrderedDict[str, str] = OrderedDict()  # item id -> group, oldest first

    def __len__(self) -> int:
        return len(self._order)

    def add(self, item: IndexItem, vector: np.ndarray) -> None:
        previous = self._order.pop(item.id, None)
        if previous is not None and previous != item.group:
            self._drop(item.id, previous)
        group = self._groups.get(item.group)
        if group is None:
            group = self._groups[item.group] = _Group(self.dim)
        group.put(item, vector)
        self._order[item.id] = item.group
        while len(self._order) > self.max_entries:
            oldest, where = self._order.popitem(last=False)
            self._drop(oldest, where)

    def _drop(self, item_id: str, group_name: str) -> None:
        group = self._groups.get(group_name)
        if group is None:
            return
        group.drop(item_id)
        if not group.items:
            del self._groups[group_name]

    def search(self, group: str, vector: np.ndarray, k: int) -> list[tuple[IndexItem, float]]:
        found = self._groups.get(group)
        if found is None:
            return []
        count = len(found.items)
        scores = found.matrix[:count] @ vector
        if count > k:
            top = np.argpartition(-scores, k)[:k]
            top = top[np.argsort(-scores[top])]
        else:
            top = np.argsort(-scores)
        now = time.time()
        out, expired = [], []
        for row in top.tolist():
            item = found.items[row]
            if item.expires <= now:
                expired.append(item.id)
                continue
            out.append((item, float(scores[row])))
        for item_id in expired:  # lazily: expired entries leave when a search meets them
            self._order.pop(item_id, None)
            self._drop(item_id, group)
        return out

    def remove(self, namespace: str | None, model: str | None) -> int:
        doomed = [
            (item.id, item.group)
            for group in list(self._groups.values())
            for item in group.items
            if (namespace is None or item.namespace == namespace) and (model is None or item.model == model)
        ]
        for item_id, group_name in doomed:
            self._order.pop(item_id, None)
            self._drop(item_id, group_name)
        return len(doomed)

    def sweep(self) -> int:
        """Drop every expired entry (run now and then, so idle groups give memory back)."""
        now = time.time()
        doomed = [
            (item.id, item.group)
            for group in list(self._groups.values())
            for item in group.items
            if item.expires <= now
        ]
        for item_id, group_name in doomed:
            self._order.pop(item_id, None)
            self._drop(item_id, group_name)
        return len(doomed)


class HNSWIndex:
    """faiss HNSW (inner product) for caches of 100k entries and more.

    HNSW cannot delete: removed rows become tombstones, skipped on search; once they
    outnumber the live rows the graph is rebuilt from the live vectors.
    """

    def __init__(
        self, dim: int, max_entries: int, *, m: int = 32, ef_search: int = 64, ef_construction: int = 80
    ) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self._m, self._ef_search, self._ef_construction = m, ef_search, ef_construction
        self._index = self._new_index()
        self._items: list[IndexItem | None] = []
        self._rows: dict[str, int] = {}
        self._order: OrderedDict[str, int] = OrderedDict()

    def _new_index(self) -> Any:
        import faiss

        index = faiss.IndexHNSWFlat(self.dim, self._m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = self._ef_search
        index.hnsw.efConstruction = self._ef_construction
        return index

    def __len__(self) -> int:
        return len(self._order)

    def add(self, item: IndexItem, vector: np.ndarray) -> None:
        self._tombstone(item.id)
        row = len(self._items)
        self._index.add(np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32))
        self._items.append(item)
        self._rows[item.id] = row
        self._order[item.id] = row
        while len(self._order) > self.max_entries:
            oldest, _ = self._order.popitem(last=False)
            self._tombstone(oldest)
        if len(self._items) > 1024 and len(self._items) > 2 * len(self._order):
            self.rebuild()

    def _tombstone(self, item_id: str) -> None:
        row = self._rows.pop(item_id, None)
        if row is not None:
            self._items[row] = None
            self._order.pop(item_id, None)

    def rebuild(self) -> None:
        # The vectors live only in faiss (no second copy): read the live ones back from it.
        stored = self._index.reconstruct_n(0, self._index.ntotal) if self._items else None
        live = [(item, row) for row, item in enumerate(self._items) if item is not None]
        self._index = self._new_index()
        self._items, self._rows, self._order = [], {}, OrderedDict()
        if live and stored is not None:
            self._index.add(np.ascontiguousarray(stored[[row for _, row in live]]))
            for row, (item, _) in enumerate(live):
                self._items.append(item)
                self._rows[item.id] = row
                self._order[item.id] = row

    def search(self, group: str, vector: np.ndarray, k: int) -> list[tuple[IndexItem, float]]:
        if not self._items:
            return []
        wide = min(len(self._items), max(k * 8, 32))
        scores, rows = self._index.search(vector.reshape(1, -1).astype(np.float32), wide)
        now = time.time()
        out = []
        for score, row in zip(scores[0].tolist(), rows[0].tolist(), strict=True):
            if row < 0:
                continue
            item = self._items[row]
            if item is None or item.group != group:
                continue
            if item.expires <= now:
                self._tombstone(item.id)
                continue
            out.append((item, float(score)))
            if len(out) == k:
                break
        return out

    def remove(self, namespace: str | None, model: str | None) -> int:
        doomed = [
            item.id
            for item in self._items
            if item is not None
            and (namespace is None or item.namespace == namespace)
            and (model is None or item.model == model)
        ]
        for item_id in doomed:
            self._tombstone(item_id)
        return len(doomed)

    def sweep(self) -> int:
        now = time.time()
        doomed = [item.id for item in self._items if item is not None and item.expires <= now]
        for item_id in doomed:
            self._tombstone(item_id)
        return len(doomed)


def make_index(kind: str, dim: int, max_entries: int) -> VectorIndex:
    if kind == "hnsw":
        return HNSWIndex(dim, max_entries)
    return ExactIndex(dim, max_entries)


__all__ = ["ExactIndex", "HNSWIndex", "IndexItem", "VectorIndex", "make_index"]
