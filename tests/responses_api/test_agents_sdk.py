"""The `openai-agents` SDK running one agent with a function tool through `asgi-llm serve`:
natively to an OpenAI fake and translated to a chat-completions-only upstream."""

from __future__ import annotations

import agents  # openai-agents, from the `test` extra
import pytest
from openai import AsyncOpenAI

from tests.fakes.upstream import FakeUpstream
from tests.harness import ProxyServer

calls: list[str] = []


@agents.function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    calls.append(city)
    return f"Sunny and 21 C in {city}."


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    with FakeUpstream("native") as native, FakeUpstream("chat") as chat:
        config = {
            "models": [
                {
                    "name": "agent-native",
                    "deployments": [
                        {
                            "id": "n",
                            "provider": "openai",
                            "model": "gpt-4o-mini",
                            "base_url": native.base_url,
                            "api_key": "sk-up-n",
                        }
                    ],
                },
                {
                    "name": "agent-chat",
                    "deployments": [
                        {
                            "id": "c",
                            "provider": "openai-compatible",
                            "model": "m",
                            "base_url": chat.base_url,
                            "api_key": "sk-up-c",
                        }
                    ],
                },
            ]
        }
        with ProxyServer(config, tmp_path_factory.mktemp("agents")) as server:
            yield server, native, chat


@pytest.mark.parametrize("model", ["agent-native", "agent-chat"])
async def test_an_agent_calls_its_tool_and_answers(proxy, model):
    server, native, chat = proxy
    agents.set_tracing_disabled(True)  # the SDK would export traces to OpenAI
    async with AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client:
        model_ = agents.OpenAIResponsesModel(model=model, openai_client=client)
        agent = agents.Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model=model_)
        calls.clear()
        result = await agents.Runner.run(agent, "What is the weather in Paris?")
    assert len(calls) == 1 and result.final_output  # the fake names its own city
    upstream = native if model == "agent-native" else chat
    assert len(upstream.requests) >= 2  # the tool call, then the answer with the tool's output
