"""The prices a deployment is charged (asgi_llm/config/prices.py): its own `cost:`, else the
packaged model table's; any `cost:` section is the deployment's own."""

from __future__ import annotations

import pytest

from asgi_llm import Config
from asgi_llm.accounting import deployment_cost
from asgi_llm.config.prices import has_price, packaged_cost, prices_for
from asgi_llm.context import Usage


def deployment(provider: str, model: str, **extra: object):
    fields: dict[str, object] = {"id": "d", "provider": provider, "model": model, **extra}
    if provider == "vertex":
        fields.update(project="p", location="us-east5", api_key="ya29.token")
    elif provider == "bedrock":
        fields.update(region="us-east-1")
    else:
        fields.update(base_url="https://up.test/v1", api_key="k")
    config = Config.from_dict({"models": [{"name": "m", "deployments": [fields]}]})
    return config.catalog.deployments["d"]


def test_a_well_known_model_without_a_cost_of_its_own_is_priced_from_the_table():
    sonnet = prices_for(deployment("anthropic", "claude-sonnet-4-5"))
    assert sonnet.per_kind() == (3.0, 0.3, 3.75, 6.0, 15.0, 15.0)
    usage = Usage(1_000_000, 1_000_000, 0, 0, 0, 0)
    assert deployment_cost(usage, deployment("openai", "gpt-4o-mini")) == pytest.approx(0.75)


@pytest.mark.parametrize(
    "provider,model,input_price,output_price",
    [
        ("openai", "gpt-4o-2024-08-06", 2.5, 10.0),
        ("anthropic", "claude-sonnet-4-5-20250929", 3.0, 15.0),
        ("gemini", "gemini-2.5-flash", 0.3, 2.5),
        ("gemini", "models/gemini-2.5-pro", 1.25, 10.0),
        ("gemini", "gemini-2.0-flash-001", 0.1, 0.4),
        ("vertex", "gemini-2.0-flash-001", 0.15, 0.6),  # Vertex AI's own price
        ("vertex", "gemini-2.5-flash-lite", 0.1, 0.4),  # the Gemini API's
        ("vertex", "claude-sonnet-4-5@20250929", 3.0, 15.0),  # Anthropic's
        ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 3.0, 15.0),
        ("bedrock", "amazon.nova-pro-v1:0", 0.8, 3.2),
        ("bedrock", "meta.llama3-1-70b-instruct-v1:0", 0.72, 0.72),
        ("bedrock", "mistral.mistral-large-2407-v1:0", 2.0, 6.0),
        ("bedrock", "amazon.titan-embed-text-v2:0", 0.02, 0.0),
        ("bedrock", "cohere.embed-english-v3", 0.1, 0.0),
        ("groq", "llama-3.3-70b-versatile", 0.59, 0.79),
        ("mistral", "mistral-small-latest", 0.1, 0.3),
        ("deepseek", "deepseek-chat", 0.28, 0.42),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", 0.88, 0.88),
        ("fireworks", "accounts/fireworks/models/llama-v3p3-70b-instruct", 0.9, 0.9),
        ("xai", "grok-4", 3.0, 15.0),
        ("cerebras", "llama-3.3-70b", 0.85, 1.2),
    ],
)
def test_every_providers_common_models_are_in_the_table(provider, model, input_price, output_price):
    cost = prices_for(deployment(provider, model))
    assert (cost.input_per_mtok, cost.output_per_mtok) == (input_price, output_price)


def test_a_name_that_may_mean_anything_gets_no_price():
    assert packaged_cost("anthropic", "claude-opus-4-7") is None  # an unknown model: no guess
    assert packaged_cost("openai-compatible", "gpt-4o") is None
    assert packaged_cost("azure", "gpt-4o") is None  # an Azure deployment's name is the user's
    assert packaged_cost("openrouter", "openai/gpt-4o") is None
    assert packaged_cost("bedrock", "arn:aws:bedrock:us-east-1:123:provisioned-model/abc") is None


def test_any_cost_section_is_the_deployments_own():
    own = deployment("anthropic", "claude-sonnet-4-5", cost={"input_per_mtok": 1.0})
    assert prices_for(own).per_kind() == (1.0, 1.0, 1.0, 1.0, 0.0, 0.0)
    assert has_price(own)
    unknown = deployment("anthropic", "claude-fake-1")
    assert prices_for(unknown).per_kind() == (0.0,) * 6
    assert not has_price(unknown)
    assert has_price(deployment("bedrock", "amazon.nova-lite-v1:0"))


def test_deepseeks_cache_hits_are_priced_as_cache_reads():
    usage = Usage(1_000_000, 1_000_000, 400_000, 0, 0, 0)  # 600k misses, 400k hits
    cost = deployment_cost(usage, deployment("deepseek", "deepseek-reasoner"))
    assert cost == pytest.approx(0.6 * 0.28 + 0.4 * 0.028 + 0.42)


async def test_the_tables_price_is_what_the_cost_metric_and_the_budget_charge(asgi_client):
    """A Gemini deployment with no `cost:`: the cost metric and the key's budget spend are its
    usage at the table's prices (accounting.py, the one cost function), through the stack."""
    import re

    from asgi_llm.auth.keys import hash_key
    from tests.fakes.gemini import FakeGemini, Reply

    with FakeGemini() as gemini:
        gemini.models.append("gemini-2.5-flash")
        gemini.default = Reply(
            prompt_tokens=1000, candidates_tokens=200, thoughts_tokens=300, cached_tokens=400
        )
        flash = {
            "id": "flash",
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "api_key": gemini.api_key,
            "base_url": gemini.root_url,
        }
        keys = [
            {"id": "user", "key_sha256": hash_key("sk-user-1"), "roles": ["user"]},
            {"id": "root", "key_sha256": hash_key("sk-admin-1"), "roles": ["admin"]},
        ]
        client = asgi_client(
            {
                "models": [{"name": "flash", "deployments": [flash]}],
                "auth": {
                    "api_keys": keys,
                    "roles": {
                        "user": {"models": ["*"], "endpoints": ["chat"]},
                        "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
                    },
                },
                "limits": {"budgets": [{"per": "key", "usd": 10, "period": "month"}]},
                "metrics": {"prometheus": {"path": "/metrics"}},
            }
        )
        user, admin = {"authorization": "Bearer sk-user-1"}, {"authorization": "Bearer sk-admin-1"}
        body = {"model": "flash", "messages": [{"role": "user", "content": "hi"}]}
        assert (await client.post("/v1/chat/completions", json=body, headers=user)).status_code == 200
    # 600 fresh input at 0.30, 400 cached at 0.03, 500 output (thoughts included) at 2.50 per Mtok
    expected = (600 * 0.30 + 400 * 0.03 + 500 * 2.50) / 1e6
    metrics = (await client.get("/metrics", headers=admin)).text
    [cost] = re.findall(r'^asgi_llm_cost_usd_total\{[^}]*deployment="flash"[^}]*\} (\S+)$', metrics, re.M)
    assert float(cost) == pytest.approx(expected)
    usage = (await client.get("/admin/usage", headers=admin)).json()
    (budget,) = usage["budgets"]
    (spent,) = [u["spent_usd"] for u in budget["usage"] if u["id"] == "user"]
    assert spent == pytest.approx(expected, abs=1e-6)  # budgets charge whole micro-dollars
