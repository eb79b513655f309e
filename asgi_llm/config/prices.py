"""What a deployment is charged per token: its own `cost:`, else the packaged table's prices.

The table (models.json, read by model_facts.py) holds prices of well-known models of every
provider as published on its `as_of` date; they change, so a deployment's own `cost:` always
wins (any `cost:` section, even a partial one, is the deployment's: the table is then not
used). A model the table does not know, or a provider it has no table for, costs nothing
unless its deployment says: `check-config` warns about such deployments (config/checks.py).
"""

from __future__ import annotations

import functools

from asgi_llm.config.model_facts import facts_for
from asgi_llm.config.schema import Cost, Deployment

_COST_FIELDS = {
    "input": "input_per_mtok",
    "output": "output_per_mtok",
    "cache_read": "cache_read_per_mtok",
    "cache_write": "cache_write_per_mtok",
    "cache_write_1h": "cache_write_1h_per_mtok",
    "reasoning": "reasoning_per_mtok",
}


@functools.lru_cache(maxsize=4096)
def packaged_cost(provider: str, model: str) -> Cost | None:
    """The table's prices for a provider's model (or its dated snapshot), if it has them."""
    facts = facts_for(provider, model)
    if facts is None or not facts.prices:
        return None
    return Cost(**{_COST_FIELDS[kind]: price for kind, price in facts.prices.items()})


def prices_for(deployment: Deployment) -> Cost:
    """The deployment's own `cost:`, or the table's prices when it has none."""
    if "cost" in deployment.model_fields_set:
        return deployment.cost
    return packaged_cost(deployment.provider, deployment.model) or deployment.cost


def has_price(deployment: Deployment) -> bool:
    """Whether the deployment's requests are priced at all: its own `cost:` or the table's."""
    return (
        "cost" in deployment.model_fields_set
        or packaged_cost(deployment.provider, deployment.model) is not None
    )


__all__ = ["has_price", "packaged_cost", "prices_for"]
