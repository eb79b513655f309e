"""The semantic tier: a near-duplicate question may get a stored answer, under strict terms.

What is embedded is the last user turn only. Everything else that must match (namespace,
model, endpoint, parameters, system prompt, earlier turns, tools) goes into an exact
*context hash*, and a search only looks among entries of the same context hash. A candidate
above the threshold must also pass the guards (numbers, negation, entities, argument order,
antonyms, swapped subject words). Texts past the model's window skip the tier. The answer
itself is the exact tier's entry: the index only points at it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from asgi_llm.cache.embedder import BatchingEmbedder, Embedder, load_embedder
from asgi_llm.cache.guards import features, veto
from asgi_llm.cache.index import IndexItem, VectorIndex, make_index
from asgi_llm.cache.keys import CacheKey, digest_of, request_params, short_digest
from asgi_llm.config.catalog import normalize_model_name
from asgi_llm.context import LLMContext
from asgi_llm.redis_client import is_redis_url

if TYPE_CHECKING:
    from asgi_llm.cache.judge import Judge
    from asgi_llm.cache.store import CacheStore
    from asgi_llm.cache.sync import FleetSync
    from asgi_llm.config.schema import Cache, Semantic

log = logging.getLogger("asgi_llm.cache")
CANDIDATES = 4
SWEEP_S = 60.0


def semantic_parts(endpoint: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(the text to embed, the rest of the request) or None when the tier does not apply:
    embeddings, a last turn that is not the user's, non-text content."""
    if endpoint == "chat":
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
            return None
        last = messages[-1]
        if last.get("role") != "user":
            return None
        content = last.get("content")
        if isinstance(content, list):
            if not all(
                isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                for p in content
            ):
                return None
            content = "\n".join(p["text"] for p in content)
        if not isinstance(content, str) or not content.strip():
            return None
        rest = {**payload, "messages": [*messages[:-1], {**last, "content": None}]}
        return content, rest
    if endpoint == "completions":
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return None
        return prompt, {k: v for k, v in payload.items() if k != "prompt"}
    return None


def context_hash(key: CacheKey, rest: dict[str, Any]) -> str:
    return digest_of("semantic/v1", key.namespace, key.model, key.endpoint, request_params(rest))


# The stage that decided (x-cache-stage, and a metric label: a fixed set).
COSINE = "cosine"  # a hit: close enough, and no guard objected
JUDGE = "judge"  # under the threshold but in the gray zone: the judge said yes (a hit) or not
BELOW = "threshold"  # a miss: nothing of the context close enough
GUARD = "guard"  # a miss: close enough, but a guard vetoed every such candidate
STAGES = (COSINE, JUDGE, BELOW, GUARD)


@dataclass(frozen=True, slots=True)
class Decision:
    stage: str
    similarity: float | None  # of the best candidate of the context (None: none at all)
    threshold: float  # the one in force for this request
    key: CacheKey | None = None  # a hit: the stored question's key and storage key
    where: str = ""
    cost_usd: float = 0.0  # of the judge's call, when one was made

    @property
    def hit(self) -> bool:
        return self.key is not None


def threshold_for(settings: Semantic, ctx: LLMContext, asked: float | None) -> float:
    """The request's x-cache-threshold or the default, but never under the floor configured
    for its model (name or alias) or its tenant (`semantic.thresholds`)."""
    limit = asked if asked is not None else settings.threshold
    floors = settings.thresholds
    entry = ctx.requested
    if floors.models and entry is not None:
        names = {normalize_model_name(n) for n in (entry.name, *entry.aliases)}
        for name, floor in floors.models.items():
            if normalize_model_name(name) in names:
                limit = max(limit, floor)
    tenant = ctx.principal.tenant if ctx.principal is not None else None
    if tenant is not None and tenant in floors.tenants:
        limit = max(limit, floors.tenants[tenant])
    return limit


class SemanticTier:
    def __init__(
        self, settings: Cache, embedder: BatchingEmbedder, index: VectorIndex, sync: FleetSync | None = None
    ) -> None:
        self.settings = settings.semantic
        self.embedder = embedder
        self.index = index
        self.sync = sync
        self.vetoes: dict[str, int] = {}
        self.embed_failures = 0
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.sync is not None:
            await self.sync.start(self.index)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self.sync is not None:
            await self.sync.stop()
        await self.embedder.aclose()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            sweep = getattr(self.index, "sweep", None)
            if sweep is not None:
                sweep()

    async def _vector(self, text: str) -> np.ndarray | None:
        if not self.embedder.fits(text):
            return None
        try:
            return await self.embedder.embed(text)
        except Exception as exc:  # noqa: BLE001 - the embedder failing is a bypass (C7)
            self.embed_failures += 1
            log.warning("embedding failed (%s): semantic tier bypassed", exc.__class__.__name__)
            return None

    async def lookup(
        self, ctx: LLMContext, key: CacheKey, threshold: float | None, judge: Judge | None = None
    ) -> Decision | None:
        """What the tier decided about this request: a hit on the best stored question of the
        same context that is close enough and that the guards allow (or, in the gray zone
        under the threshold, that the configured judge calls the same), or a miss and the
        stage that made it one. None when the tier does not apply (nothing to embed)."""
        parts = semantic_parts(key.endpoint, ctx.payload)
        if parts is None:
            return None
        text, rest = parts
        vector = await self._vector(text)
        if vector is None:
            return None
        limit = threshold_for(self.settings, ctx, threshold)
        gray = self.settings.judge if judge is not None else None
        low = min(limit, gray.low) if gray is not None else limit
        asked = features(text)
        best: float | None = None
        stage = BELOW
        for item, score in self.index.search(context_hash(key, rest), vector, CANDIDATES):
            best = score if best is None else best
            if score < low:
                break
            if self.settings.guards:
                reason = veto(asked, item.features)
                if reason is not None:
                    self.vetoes[reason] = self.vetoes.get(reason, 0) + 1
                    stage = GUARD
                    continue
            found = CacheKey(key.namespace, key.model, item.endpoint, item.digest)
            if score >= limit:
                return Decision(COSINE, score, limit, found, item.id)
            if judge is None or gray is None:  # pragma: no cover - low == limit without a judge
                break
            # The gray zone: one question to the judge, about the best candidate left.
            verdict = await judge(ctx, gray, item.text, text)
            if verdict.same:
                return Decision(JUDGE, score, limit, found, item.id, verdict.cost_usd)
            return Decision(JUDGE, best, limit, cost_usd=verdict.cost_usd)
        return Decision(stage, best, limit)

    async def add(self, ctx: LLMContext, key: CacheKey, where: str, ttl_s: float) -> None:
        parts = semantic_parts(key.endpoint, ctx.payload)
        if parts is None:
            return
        text, rest = parts
        vector = await self._vector(text)
        if vector is None:
            return
        item = IndexItem(
            id=where,
            digest=key.digest,
            group=context_hash(key, rest),
            namespace=short_digest(key.namespace),
            model=short_digest(key.model),
            endpoint=key.endpoint,
            text=text,
            features=features(text),
            expires=time.time() + ttl_s,
        )
        self.index.add(item, vector)
        if self.sync is not None:
            await self.sync.publish(item, vector)

    async def purge(self, namespace: str | None, model: str | None) -> int:
        ns = short_digest(namespace) if namespace is not None else None
        name = short_digest(model) if model is not None else None
        removed = self.index.remove(ns, name)
        if self.sync is not None:
            await self.sync.publish_purge(ns, name)
        return removed


def limit_blas_threads(threads: int) -> None:
    """One index search is a single matrix-vector product: OpenBLAS spreading it over every
    core costs more in wake-ups than it saves (measured p99: 13 ms with 2 threads, 1.4 ms with
    1, at 10k entries on 2 cores). A process-wide setting, like torch's thread count, so it
    is made once, when the semantic tier starts."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the semantic extra
        return
    threadpool_limits(threads, user_api="blas")


async def build_semantic_tier(
    settings: Cache, store: CacheStore, embedder: Embedder | None = None
) -> SemanticTier:
    """Load the model (in a thread: seconds, never on the event loop), the index, and the
    fleet sync when the exact tier is in Redis."""
    semantic = settings.semantic
    if embedder is None:
        embedder = await asyncio.to_thread(
            load_embedder,
            semantic.model,
            semantic.model_path,
            semantic.backend,
            semantic.threads,
            semantic.onnx_cache_dir,
        )
    limit_blas_threads(semantic.threads)
    front = BatchingEmbedder(
        embedder,
        window_s=semantic.batch_window_ms / 1000,
        max_batch=semantic.max_batch,
        cache_entries=semantic.embedding_cache_entries,
    )
    index = make_index(semantic.index, embedder.dim, semantic.max_entries)
    sync = None
    if is_redis_url(settings.backend):
        from asgi_llm.cache.sync import FleetSync

        sync = FleetSync(settings.backend, f"{settings.key_prefix}:sem", semantic.max_entries)
    return SemanticTier(settings, front, index, sync)


__all__ = [
    "STAGES",
    "Decision",
    "SemanticTier",
    "build_semantic_tier",
    "context_hash",
    "semantic_parts",
    "threshold_for",
]
