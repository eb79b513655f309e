"""Embedders for the semantic tier, and the async front that batches and caches them.

The model is loaded once, offline (HF_HUB_OFFLINE=1), in a thread at startup; it never runs
on the event loop: one worker thread embeds whole batches gathered from concurrent requests.
Two backends compute the same vectors (max difference ~1e-7): ONNX Runtime on a graph
exported once from the sentence-transformers model (~5-8 ms a question on this 2-core
box, see docs/caching.md), or sentence-transformers on torch (~20 ms).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from asgi_llm.cache.models import DEFAULT_MODEL, model_dir, pooling

log = logging.getLogger("asgi_llm.cache")


class Embedder(Protocol):
    """Blocking: called from the embedding thread only. Rows come back L2-normalized."""

    dim: int

    def fits(self, text: str) -> bool:
        """Whether the text is within the model's window (longer ones are cut, so two texts
        that differ past the cut would embed the same: they skip the semantic tier)."""
        ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def default_model_path(name: str) -> str:
    """The packaged model's directory (cache/models.py knows which package has it)."""
    return model_dir(name, None)


class _WindowCheck:
    """The model's own tokenizer, untruncated, to tell texts past the window."""

    def __init__(self, model_dir: str, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.max_tokens = max_tokens

    def fits(self, text: str) -> bool:
        if len(text) <= self.max_tokens:  # fewer characters than pieces: cannot overflow
            return True
        if len(text) > self.max_tokens * 12:
            return False
        return len(self.tokenizer.encode(text).ids) <= self.max_tokens


class TorchEmbedder:
    """sentence-transformers on torch, CPU, with a fixed thread count (torch's default of
    one thread per core made p99 jump to ~0.5 s on a 2-core box)."""

    def __init__(self, model_dir: str, *, threads: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
        size: Any = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )  # the name before sentence-transformers 6
        self.dim = int(size() or 384)
        self._window = _WindowCheck(model_dir, int(self.model.max_seq_length or 256))

    def fits(self, text: str) -> bool:
        return self._window.fits(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEmbedder:
    """The same model through ONNX Runtime: the transformer's graph, the model's own pooling
    (mean, or the CLS token for models such as bge), L2 normalization."""

    def __init__(self, model_dir: str, onnx_path: str, *, threads: int, max_tokens: int = 256) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding()
        self._window = _WindowCheck(model_dir, max_tokens)
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 384)
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._cls = pooling(model_dir) == "cls"

    def fits(self, text: str) -> bool:
        return self._window.fits(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        if self._cls:
            vectors = hidden[:, 0]
        else:
            summed = (hidden * mask[..., None]).sum(axis=1)
            vectors = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def export_onnx(model_dir: str, cache_dir: str) -> str:
    """Export the model's transformer to ONNX once (needs torch); later starts reuse it."""
    weights = Path(model_dir) / "model.safetensors"
    tag = hashlib.sha256(
        f"{model_dir}:{weights.stat().st_size if weights.exists() else 0}".encode()
    ).hexdigest()[:16]
    target = Path(cache_dir) / f"model-{tag}.onnx"
    if target.exists():
        return str(target)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    # BERT-like models take token types; others (MPNet, RoBERTa-likes) have no such input.
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(model.forward).parameters:
        names.append("token_type_ids")

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(names, tensors, strict=True))).last_hidden_state

    example = torch.ones((1, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    # The TorchScript exporter warns that it (and helpers it calls) are legacy, and tracing
    # warns on every shape check it freezes (the axes stay dynamic, so they are harmless);
    # the new exporter needs onnxscript, which this extra does not pull in. Warnings are
    # silenced for this one call only, run once per model.
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(model),
            (example, example, torch.zeros_like(example))[: len(names)],
            str(partial),
            input_names=names,
            output_names=["last_hidden_state"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={**dict.fromkeys(names, axes), "last_hidden_state": axes},
        )
    os.replace(partial, target)  # atomic: a concurrent worker never loads half a file
    return str(target)


def load_embedder(
    model: str, model_path: str | None, backend: str, threads: int, cache_dir: str | None
) -> Embedder:
    """Blocking (seconds): call it in a thread at startup."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    directory = model_dir(model, model_path)
    if backend == "onnx":
        where = cache_dir or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "asgi-llm"
        )
        return OnnxEmbedder(directory, export_onnx(directory, where), threads=threads)
    return TorchEmbedder(directory, threads=threads)


class BatchingEmbedder:
    """The async face of an Embedder: an LRU of recent embeddings (the seed's embedding
    cache), and one worker thread that embeds whatever arrived within a short window."""

    def __init__(self, embedder: Embedder, *, window_s: float, max_batch: int, cache_entries: int) -> None:
        self.embedder = embedder
        self.dim = embedder.dim
        self._window = window_s
        self._max_batch = max_batch
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_entries = cache_entries
        self._pending: dict[str, asyncio.Future[np.ndarray]] = {}
        self._queue: list[str] = []
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="asgi-llm-embed")
        self.batches = 0

    def fits(self, text: str) -> bool:
        return self.embedder.fits(text)

    async def embed(self, text: str) -> np.ndarray:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        future = self._pending.get(text)
        if future is None:
            future = self._pending[text] = asyncio.get_running_loop().create_future()
            self._queue.append(text)
            self._ensure_worker().set()
        return await asyncio.shield(future)

    def _ensure_worker(self) -> asyncio.Event:
        if self._wake is None or self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run(self._wake))
        return self._wake

    async def _run(self, wake: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await wake.wait()
            wake.clear()
            if self._window and len(self._queue) < self._max_batch:
                await asyncio.sleep(self._window)  # let concurrent requests join the batch
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                try:
                    vectors = await loop.run_in_executor(self._executor, self.embedder.embed, batch)
                except Exception as exc:  # noqa: BLE001 - every waiter hears of it
                    for text in batch:
                        future = self._pending.pop(text, None)
                        if future is not None and not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                for text, vector in zip(batch, vectors, strict=True):
                    future = self._pending.pop(text, None)
                    self._remember(text, vector)
                    if future is not None and not future.done():
                        future.set_result(vector)

    def _remember(self, text: str, vector: np.ndarray) -> None:
        if self._cache_entries <= 0:
            return
        self._cache[text] = vector
        if len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = [
    "DEFAULT_MODEL",
    "BatchingEmbedder",
    "Embedder",
    "OnnxEmbedder",
    "TorchEmbedder",
    "default_model_path",
    "export_onnx",
    "load_embedder",
]
