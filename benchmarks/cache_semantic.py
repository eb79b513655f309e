"""Semantic tier: quality on the shared evaluation data, near-misses, lookup latency.

    python -m benchmarks.cache_semantic [--data ../shared/data] [--qqp-limit N] [--skip-latency]

Quality (the data is read in place, never copied: see ../shared/data/README.md):
- QQP (`qqp_dev.jsonl.gz`, 20k labelled pairs with hard negatives): store `a`, ask `b`;
  a hit is cosine >= threshold (and, guarded, no veto). Precision over hits, hit rate over
  true duplicates. Raw MiniLM vs MiniLM + guards at several thresholds.
- `paraphrase_pairs.json`: every origin in one index (one context), each paraphrase asked
  through the tier's own lookup (top candidates, guards): hit rate and wrong hits.
- NEAR_MISSES below: pairs that must never hit (numbers, negation, antonyms, argument
  order, years, entities, long shared prefixes).
Latency: SemanticTier.lookup (embedding of an unseen question included, ONNX, 1 thread, after
warm-up) against 10k and 100k entries in one context (the worst case), exact and HNSW.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from asgi_llm.cache.embedder import DEFAULT_MODEL, BatchingEmbedder, load_embedder
from asgi_llm.cache.guards import features, veto
from asgi_llm.cache.index import ExactIndex, HNSWIndex, IndexItem
from asgi_llm.cache.keys import cache_key
from asgi_llm.cache.semantic import SemanticTier, context_hash, limit_blas_threads, semantic_parts
from asgi_llm.config import Config

ROOT = Path(__file__).resolve().parent.parent
DOC = (
    "Section 4.2 of the attached contract says the supplier must deliver the goods within the "
    "agreed period, keep them insured until delivery, and notify the buyer of any delay at once. "
)
NEAR_MISSES: list[tuple[str, str, str]] = [
    ("negation", "Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?"),
    ("negation", "Should I use a VPN on public wifi?", "Should I never use a VPN on public wifi?"),
    ("negation", "Why does my code compile?", "Why doesn't my code compile?"),
    ("negation", "Can I take ibuprofen with coffee?", "Can I take ibuprofen without coffee?"),
    ("numbers", "Convert 5 miles to kilometers", "Convert 50 miles to kilometers"),
    ("numbers", "What is 15% of 80?", "What is 25% of 80?"),
    ("numbers", "Give me three ideas for a birthday party", "Give me ten ideas for a birthday party"),
    (
        "numbers",
        "How do I sort a list of 10 million integers?",
        "How do I sort a list of 10 thousand integers?",
    ),
    ("years", "What was Apple's revenue in 2022?", "What was Apple's revenue in 2023?"),
    ("years", "Who won the World Cup in 2014?", "Who won the World Cup in 2018?"),
    ("years", "Summarize the events of 1989 in Germany", "Summarize the events of 1990 in Germany"),
    ("order", "flights from New York to London", "flights from London to New York"),
    ("order", "Is a cat bigger than a dog?", "Is a dog bigger than a cat?"),
    ("order", "Convert Celsius to Fahrenheit", "Convert Fahrenheit to Celsius"),
    (
        "order",
        "Translate this sentence from English to Spanish",
        "Translate this sentence from Spanish to English",
    ),
    ("order", "How do I migrate from MySQL to Postgres?", "How do I migrate from Postgres to MySQL?"),
    ("antonyms", "What are the advantages of remote work?", "What are the disadvantages of remote work?"),
    ("antonyms", "How do I increase my credit score?", "How do I decrease my credit score?"),
    ("antonyms", "Is it a good time to buy a house?", "Is it a good time to sell a house?"),
    ("antonyms", "How do I encrypt a file with openssl?", "How do I decrypt a file with openssl?"),
    ("antonyms", "What is the maximum heart rate for my age?", "What is the minimum heart rate for my age?"),
    ("antonyms", "How do I enable dark mode in Chrome?", "How do I disable dark mode in Chrome?"),
    ("antonyms", "Show me the best hotels in Rome", "Show me the worst hotels in Rome"),
    ("entities", "What is the capital of Australia?", "What is the capital of Austria?"),
    ("entities", "How do I learn Python quickly?", "How do I learn Java quickly?"),
    ("entities", "Who is the CEO of Microsoft?", "Who is the CEO of Google?"),
    ("entities", "What is the population of Paris?", "What is the population of Berlin?"),
    ("entities", "Write a poem about Shakespeare", "Write a poem about Marlowe"),
    ("entities", "How do I install Docker on Ubuntu?", "How do I install Docker on Fedora?"),
    (
        "prefix",
        DOC + "Summarize the clause above in 3 bullet points.",
        DOC + "Summarize the clause above in 5 bullet points.",
    ),
    (
        "prefix",
        DOC + "Translate the clause above into French.",
        DOC + "Translate the clause above into German.",
    ),
    ("prefix", DOC + "Rewrite the clause above as a haiku.", DOC + "Rewrite the clause above as a limerick."),
    ("prefix", DOC + "Is the supplier liable for the delay?", DOC + "Is the buyer liable for the delay?"),
    ("prefix", DOC + "List the obligations of the supplier.", DOC + "List the obligations of the buyer."),
]


def embedder_for(args: argparse.Namespace) -> Any:
    return load_embedder(args.model, args.model_path, args.backend, args.threads, args.onnx_dir)


def embed_all(model: Any, texts: list[str]) -> dict[str, np.ndarray]:
    ordered = sorted(set(texts), key=len)
    out: dict[str, np.ndarray] = {}
    for i in range(0, len(ordered), 64):
        batch = ordered[i : i + 64]
        for text, vector in zip(batch, model.embed(batch), strict=True):
            out[text] = vector
    return out


def qqp(model: Any, data: Path, limit: int | None) -> dict[str, Any]:
    with gzip.open(data / "qqp_dev.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    rows = rows[:limit] if limit else rows
    vectors = embed_all(model, [r["a"] for r in rows] + [r["b"] for r in rows])
    sims = np.array([float(vectors[r["a"]] @ vectors[r["b"]]) for r in rows])
    labels = np.array([r["label"] for r in rows])
    vetoed = np.array(
        [
            s >= 0.8 and veto(features(r["b"]), features(r["a"])) is not None
            for r, s in zip(rows, sims, strict=True)
        ]
    )
    positives = int((labels == 1).sum())
    table = []
    for threshold in (0.85, 0.88, 0.9, 0.92, 0.95):
        for guarded in (False, True):
            hit = (sims >= threshold) & (~vetoed if guarded else True)
            tp = int((hit & (labels == 1)).sum())
            fp = int((hit & (labels == 0)).sum())
            table.append(
                {
                    "threshold": threshold,
                    "guards": guarded,
                    "precision": round(tp / max(1, tp + fp), 3),
                    "hit_rate": round(tp / positives, 3),
                    "false_hits": fp,
                }
            )
    return {"pairs": len(rows), "duplicates": positives, "table": table}


async def paraphrases(model: Any, data: Path, threshold: float) -> dict[str, Any]:
    pairs = json.loads((data / "paraphrase_pairs.json").read_text())
    tier, key = tier_with(model, ExactIndex(model.dim, 10_000), threshold)
    vectors = embed_all(model, [p["origin"] for p in pairs])
    for i, pair in enumerate(pairs):
        add(tier, key, f"o{i}", pair["origin"], vectors[pair["origin"]])
    hits = wrong = 0
    for pair in pairs:
        found = await lookup(tier, key, pair["similar"])
        if found is not None:  # the set repeats some origins: the same text is the right one
            right = pairs[int(found[1:])]["origin"] == pair["origin"]
            hits += right
            wrong += not right
    await tier.embedder.aclose()
    return {
        "pairs": len(pairs),
        "threshold": threshold,
        "hit_rate": round(hits / len(pairs), 3),
        "wrong_hits": wrong,
        "vetoes": tier.vetoes,
    }


async def near_misses(model: Any, threshold: float) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for kind, stored, asked in NEAR_MISSES:
        tier, key = tier_with(model, ExactIndex(model.dim, 10), threshold)
        vectors = model.embed([stored, asked])
        add(tier, key, "stored", stored, vectors[0])
        found = await lookup(tier, key, asked)
        out.append(
            {
                "kind": kind,
                "cosine": round(float(vectors[0] @ vectors[1]), 3),
                "hit": found is not None,
                "veto": veto(features(asked), features(stored)),
            }
        )
        await tier.embedder.aclose()
    return {
        "pairs": len(out),
        "hits": sum(r["hit"] for r in out),
        "above_threshold": sum(r["cosine"] >= threshold for r in out),
        "detail": out,
    }


def tier_with(model: Any, index: Any, threshold: float) -> tuple[SemanticTier, Any]:
    config = Config.from_dict({"cache": {"semantic": {"threshold": threshold}}})
    assert config.cache is not None
    front = BatchingEmbedder(model, window_s=0, max_batch=32, cache_entries=0)
    return SemanticTier(config.cache, front, index), cache_key("global", "m", "chat", {})


def request(text: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def add(tier: SemanticTier, key: Any, ident: str, text: str, vector: np.ndarray) -> None:
    _, rest = semantic_parts("chat", request(text))  # type: ignore[misc]
    tier.index.add(
        IndexItem(
            id=ident,
            digest=ident,
            group=context_hash(key, rest),
            namespace="n",
            model="m",
            endpoint="chat",
            text=text,
            features=features(text),
            expires=time.time() + 3600,
        ),
        vector,
    )


async def lookup(tier: SemanticTier, key: Any, text: str) -> str | None:
    ctx = SimpleNamespace(payload=request(text), requested=None, principal=None)
    found = await tier.lookup(ctx, key, None)  # type: ignore[arg-type]
    return found.where if found is not None and found.hit else None


async def latency(model: Any, data: Path, sizes: tuple[int, ...]) -> dict[str, Any]:
    with gzip.open(data / "qqp_dev.jsonl.gz", "rt") as handle:
        texts = list(dict.fromkeys(json.loads(line)["a"] for line in handle))
    queries = texts[:600]
    base = embed_all(model, texts[600:2600])
    base_vectors = np.stack(list(base.values()))
    base_texts = list(base)
    rng = np.random.default_rng(7)
    results: dict[str, Any] = {}
    for size in sizes:
        for kind in ("exact", "hnsw"):
            index = ExactIndex(model.dim, size) if kind == "exact" else HNSWIndex(model.dim, size)
            tier, key = tier_with(model, index, 0.9)
            tracemalloc.start()
            started = time.perf_counter()
            for i in range(size):  # real vectors, jittered so that every entry is distinct
                vector = base_vectors[i % len(base_vectors)] + rng.normal(0, 0.02, model.dim)
                vector = (vector / np.linalg.norm(vector)).astype(np.float32)
                add(tier, key, f"e{i}", base_texts[i % len(base_texts)], vector)
            build_s = time.perf_counter() - started
            memory = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            for text in queries[:100]:  # warm-up (and the embedding cache is off)
                await lookup(tier, key, text + " warm")
            timings = []
            for text in queries[100:]:
                started = time.perf_counter()
                await lookup(tier, key, text)
                timings.append(time.perf_counter() - started)
            timings.sort()
            results[f"{kind}@{size}"] = {
                "p50_ms": round(statistics.median(timings) * 1e3, 2),
                "p99_ms": round(timings[int(len(timings) * 0.99)] * 1e3, 2),
                "build_s": round(build_s, 1),
                "memory_mb": round(memory / 2**20, 1),
            }
            await tier.embedder.aclose()
    embed_only = []
    for text in queries[:300]:
        started = time.perf_counter()
        model.embed([text + " x"])
        embed_only.append(time.perf_counter() - started)
    embed_only.sort()
    results["embedding_only"] = {
        "p50_ms": round(statistics.median(embed_only) * 1e3, 2),
        "p99_ms": round(embed_only[int(len(embed_only) * 0.99)] * 1e3, 2),
    }
    return results


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    model = embedder_for(args)
    limit_blas_threads(args.threads)  # as the semantic tier does when it starts
    data = Path(args.data)
    report: dict[str, Any] = {
        "model": args.model_path or args.model,
        "backend": args.backend,
        "threads": args.threads,
    }
    if not args.latency_only:
        report["near_misses"] = await near_misses(model, args.threshold)
        report["paraphrases"] = await paraphrases(model, data, args.threshold)
        report["qqp"] = qqp(model, data, args.qqp_limit)
    if not args.skip_latency:
        report["latency"] = await latency(model, data, tuple(args.sizes))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a packaged model (cache/models.py)")
    parser.add_argument("--model-path", default=None, help="or a local sentence-transformers directory")
    parser.add_argument("--backend", default="onnx", choices=("onnx", "torch"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--onnx-dir", default=None)
    parser.add_argument("--qqp-limit", type=int, default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--latency-only", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = asyncio.run(main_async(args))
    if "near_misses" in report:
        for row in report["near_misses"]["detail"]:
            print(f"  near-miss {row['kind']:9} cos={row['cosine']:.3f} hit={row['hit']} veto={row['veto']}")
        del report["near_misses"]["detail"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
