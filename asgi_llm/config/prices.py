"""The packaged price table: what a deployment with no `cost:` section of its own is charged.

Prices of well-known models, in USD per million tokens, as their vendors published them on
`AS_OF`; they change, so a deployment's own `cost:` always wins (any `cost:` section, even a
partial one, is the deployment's: the table is then not used). Only `openai` and `anthropic`
deployments use the table, where a model name means the vendor's model; a dated snapshot
(`claude-sonnet-4-5-20250929`, `gpt-4o-2024-08-06`) takes its model's prices. Anthropic's
long-context prices (above 200k input tokens) and batch discounts are not modelled.
"""

from __future__ import annotations

import functools
import re

from asgi_llm.config.schema import Cost, Deployment

AS_OF = "2025-11-01"

_ANTHROPIC = {  # input, output, cache read, 5-minute write (1.25x), 1-hour write (2x)
    "claude-opus-4-5": (5.0, 25.0, 0.5, 6.25, 10.0),
    "claude-opus-4-1": (15.0, 75.0, 1.5, 18.75, 30.0),
    "claude-opus-4": (15.0, 75.0, 1.5, 18.75, 30.0),
    "claude-sonnet-4-5": (3.0, 15.0, 0.3, 3.75, 6.0),
    "claude-sonnet-4": (3.0, 15.0, 0.3, 3.75, 6.0),
    "claude-3-7-sonnet": (3.0, 15.0, 0.3, 3.75, 6.0),
    "claude-haiku-4-5": (1.0, 5.0, 0.1, 1.25, 2.0),
    "claude-3-5-haiku": (0.8, 4.0, 0.08, 1.0, 1.6),
}
_OPENAI = {  # input, output, cached input (OpenAI's cache writes cost the input price)
    "gpt-5": (1.25, 10.0, 0.125),
    "gpt-5-mini": (0.25, 2.0, 0.025),
    "gpt-5-nano": (0.05, 0.4, 0.005),
    "gpt-4.1": (2.0, 8.0, 0.5),
    "gpt-4.1-mini": (0.4, 1.6, 0.1),
    "gpt-4.1-nano": (0.1, 0.4, 0.025),
    "gpt-4o": (2.5, 10.0, 1.25),
    "gpt-4o-mini": (0.15, 0.6, 0.075),
    "o3": (2.0, 8.0, 0.5),
    "o4-mini": (1.1, 4.4, 0.275),
}
PACKAGED: dict[str, dict[str, Cost]] = {
    "anthropic": {
        name: Cost(
            input_per_mtok=i,
            output_per_mtok=o,
            cache_read_per_mtok=r,
            cache_write_per_mtok=w,
            cache_write_1h_per_mtok=h,
        )
        for name, (i, o, r, w, h) in _ANTHROPIC.items()
    },
    "openai": {
        name: Cost(input_per_mtok=i, output_per_mtok=o, cache_read_per_mtok=r)
        for name, (i, o, r) in _OPENAI.items()
    },
}
_SNAPSHOT = re.compile(r"(?P<model>.+?)-(\d{8}|\d{4}-\d{2}-\d{2})")


@functools.cache
def packaged_cost(provider: str, model: str) -> Cost | None:
    """The table's prices for a provider's model (or its dated snapshot), if it has them."""
    table = PACKAGED.get(provider)
    if table is None:
        return None
    known = table.get(model)
    if known is None:
        snapshot = _SNAPSHOT.fullmatch(model)
        known = table.get(snapshot["model"]) if snapshot is not None else None
    return known


def prices_for(deployment: Deployment) -> Cost:
    """The deployment's own `cost:`, or the table's prices when it has none."""
    if "cost" in deployment.model_fields_set:
        return deployment.cost
    return packaged_cost(deployment.provider, deployment.model) or deployment.cost


__all__ = ["AS_OF", "PACKAGED", "packaged_cost", "prices_for"]
