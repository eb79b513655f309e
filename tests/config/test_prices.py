"""The packaged price table (asgi_llm/config/prices.py): a deployment without a `cost:` of its
own is priced from it; any `cost:` section is the deployment's own."""

from __future__ import annotations

import pytest

from asgi_llm import Config
from asgi_llm.accounting import deployment_cost
from asgi_llm.config.prices import AS_OF, PACKAGED, packaged_cost, prices_for
from asgi_llm.context import Usage


def deployment(provider: str, model: str, **extra: object):
    config = Config.from_dict(
        {
            "models": [
                {
                    "name": "m",
                    "deployments": [
                        {
                            "id": "d",
                            "provider": provider,
                            "model": model,
                            "base_url": "https://up.test/v1",
                            **extra,
                        }
                    ],
                }
            ]
        }
    )
    return config.catalog.deployments["d"]


def test_a_well_known_model_without_a_cost_of_its_own_is_priced_from_the_table():
    sonnet = prices_for(deployment("anthropic", "claude-sonnet-4-5"))
    assert sonnet.per_kind() == (3.0, 0.3, 3.75, 6.0, 15.0, 15.0)
    usage = Usage(1_000_000, 1_000_000, 0, 0, 0, 0)
    assert deployment_cost(usage, deployment("openai", "gpt-4o-mini")) == pytest.approx(0.75)


def test_a_dated_snapshot_takes_its_models_prices_and_nothing_else_does():
    assert (
        packaged_cost("anthropic", "claude-sonnet-4-5-20250929") is PACKAGED["anthropic"]["claude-sonnet-4-5"]
    )
    assert packaged_cost("openai", "gpt-4o-2024-08-06") is PACKAGED["openai"]["gpt-4o"]
    assert packaged_cost("openai", "gpt-4o-mini-2024-07-18") is PACKAGED["openai"]["gpt-4o-mini"]
    assert packaged_cost("anthropic", "claude-opus-4-7") is None  # an unknown model: no guess
    assert packaged_cost("openai-compatible", "gpt-4o") is None  # a name that may mean anything


def test_any_cost_section_is_the_deployments_own():
    own = deployment("anthropic", "claude-sonnet-4-5", cost={"input_per_mtok": 1.0})
    assert prices_for(own).per_kind() == (1.0, 1.0, 1.0, 1.0, 0.0, 0.0)
    unknown = deployment("anthropic", "claude-fake-1")
    assert prices_for(unknown).per_kind() == (0.0,) * 6


def test_the_table_is_dated_and_sane():
    assert AS_OF[:2] == "20"
    for provider, table in PACKAGED.items():
        for model, cost in table.items():
            input_price, read, write, hour, output, _ = cost.per_kind()
            assert read < input_price <= write <= hour and output > input_price, (provider, model)
