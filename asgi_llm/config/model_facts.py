"""The packaged model table (models.json): what is known of well-known models, by provider.

Per model: prices in USD per million tokens of each kind, its context window and longest
answer in tokens, and what it can take (`vision`, `tools`) or does (`reasoning`). A
deployment's own `cost:`, `capabilities` and `context_window` always win; the table fills
what a deployment does not say (prices.py for prices, the catalog for the router's filters).

A deployment's provider picks the tables its model name is looked up in: a vendor's own
(`openai`, `anthropic`, a preset's), `bedrock` for Bedrock model ids, Vertex AI's
differences before the Gemini API's for `vertex` (and Anthropic's table for its Claude
models). `openai-compatible` and `azure` have none: their model names may mean anything.
A name is tried as written, then without what varies between releases of one model: a
Bedrock cross-region prefix (`us.`), a version (`-v1:0`), a date (`-20250929`,
`-2024-08-06`, `@20250929`, `-0125`), a Gemini revision (`-001`). Nothing else is guessed.

The file is read once, on first use (never at import), with the package's own data.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

DATA_FILE = "models.json"
PRICE_KINDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")
# What the table says of capabilities; a request's other needs (json_mode) it is silent on.
FACT_CAPABILITIES = frozenset({"vision", "tools", "reasoning"})
# Our own servers (no per-token price to expect) and the offline mock.
UNPRICED_PROVIDERS = frozenset({"mock", "ollama", "vllm", "lmstudio"})

_OWN_TABLE: tuple[str, ...] = ("openai", "anthropic", "gemini", "bedrock", "groq", "mistral", "deepseek")
_OWN_TABLE += ("together", "fireworks", "xai", "cerebras")
_TABLES: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in _OWN_TABLE},
    "vertex": ("vertex", "gemini"),
}
_STRIP = (
    re.compile(r"^models/"),  # Gemini's resource name
    re.compile(r"^(?:us|eu|apac|global|jp|au|ca|us-gov)\."),  # Bedrock inference profiles
    re.compile(r":\d+$"),  # Bedrock's model version
    re.compile(r"-v\d+$"),
    # A dated snapshot: -20250929, -2024-08-06, @20250929 (Vertex AI), -0125 (month and day).
    re.compile(r"(?:-\d{8}|-\d{4}-\d{2}-\d{2}|@\d{8}|@latest|-(?:0[1-9]|1[0-2])[0-3]\d)$"),
    re.compile(r"-\d{3}$"),  # Gemini's revisions (gemini-2.0-flash-001)
)


@dataclass(frozen=True, slots=True)
class ModelFacts:
    table: str  # which table said it (`anthropic`, `bedrock`, ...)
    name: str  # the model's name in that table
    prices: dict[str, float]  # kind (PRICE_KINDS) -> USD per million tokens; absent kinds unsaid
    context_window: int | None
    max_output: int | None
    capabilities: frozenset[str]


@dataclass(frozen=True, slots=True)
class ModelTable:
    as_of: str
    verify: str
    sources: dict[str, str]  # table -> where its figures were published
    tables: dict[str, dict[str, ModelFacts]]


def _facts(table: str, name: str, raw: dict[str, Any]) -> ModelFacts:
    prices = {kind: float(raw[kind]) for kind in PRICE_KINDS if kind in raw}
    capabilities = frozenset(raw.get("capabilities", ()))
    unknown = (set(raw) - set(PRICE_KINDS) - {"context_window", "max_output", "capabilities"}) | (
        capabilities - FACT_CAPABILITIES
    )
    if unknown or any(price < 0 for price in prices.values()):
        raise ValueError(f"{DATA_FILE}: {table}.{name}: unknown or negative {sorted(unknown) or 'price'}")
    return ModelFacts(table, name, prices, raw.get("context_window"), raw.get("max_output"), capabilities)


def parse_table(data: bytes) -> ModelTable:
    document = orjson.loads(data)
    tables = {
        table: {name: _facts(table, name, raw) for name, raw in section["models"].items()}
        for table, section in document["tables"].items()
    }
    sources = {table: section["source"] for table, section in document["tables"].items()}
    return ModelTable(document["as_of"], document["verify"], sources, tables)


@functools.cache
def model_table() -> ModelTable:
    """The packaged table, read on first use."""
    return parse_table(resources.files(__package__).joinpath(DATA_FILE).read_bytes())


def tables_for(provider: str, model: str) -> tuple[str, ...]:
    """The tables a deployment's model name is looked up in (none: the table is not used)."""
    if provider == "vertex" and model.startswith("claude-"):
        return ("anthropic",)  # Anthropic's models on Vertex AI, at Anthropic's prices
    return _TABLES.get(provider, ())


def spellings(model: str) -> list[str]:
    """The name as written, then each shorter form (see the module's docstring)."""
    found = [model]
    for pattern in _STRIP:
        shorter = pattern.sub("", found[-1])
        if shorter and shorter != found[-1]:
            found.append(shorter)
    return found


@functools.lru_cache(maxsize=4096)
def facts_for(provider: str, model: str) -> ModelFacts | None:
    """What the table knows of a provider's model, if anything."""
    names = tables_for(provider, model)
    if not names:
        return None
    tables = model_table().tables
    for spelling in spellings(model):
        for name in names:
            found = tables[name].get(spelling)
            if found is not None:
                return found
    return None


__all__ = [
    "DATA_FILE",
    "FACT_CAPABILITIES",
    "PRICE_KINDS",
    "UNPRICED_PROVIDERS",
    "ModelFacts",
    "ModelTable",
    "facts_for",
    "model_table",
    "parse_table",
    "spellings",
    "tables_for",
]
