import random
from collections import Counter

from asgi_llm import Config
from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext
from asgi_llm.routing.latency import LatencyTracker
from asgi_llm.routing.strategies import RoutingState, cheapest, fastest, weighted


def deployment(name, **kw):
    return Deployment(id=name, provider="mock", model="m", **kw)


def ctx(prompt_tokens=1000, max_tokens=None):
    c = LLMContext(request_id="r", config=Config.from_dict({}), endpoint="chat")
    c.prompt_tokens_estimate = prompt_tokens
    c.payload = {"max_tokens": max_tokens} if max_tokens else {}
    return c


def state(latency=None, seed=1, explore=0.0):
    return RoutingState(latency or LatencyTracker(), random.Random(seed), explore, 1024)


def test_weighted_follows_the_weights():
    a, b = deployment("a", weight=3), deployment("b", weight=1)
    s = state()
    firsts = Counter(weighted([a, b], ctx(), s)[0].id for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_cost_orders_by_expected_cost_of_this_request():
    cheap_in = deployment("cheap-in", cost={"input_per_mtok": 0.1, "output_per_mtok": 10})
    cheap_out = deployment("cheap-out", cost={"input_per_mtok": 1, "output_per_mtok": 1})
    # long prompt, short answer: input price dominates
    assert cheapest([cheap_out, cheap_in], ctx(100_000, 10), state())[0].id == "cheap-in"
    # short prompt, long answer: output price dominates
    assert cheapest([cheap_in, cheap_out], ctx(10, 4000), state())[0].id == "cheap-out"


def test_latency_prefers_the_faster_and_explores_the_unknown():
    clock = [0.0]
    tracker = LatencyTracker(decay_s=10, clock=lambda: clock[0])
    slow, fast, new = deployment("slow"), deployment("fast"), deployment("new")
    for _ in range(5):
        tracker.started("slow")
        tracker.finished("slow", 0.5)
        tracker.started("fast")
        tracker.finished("fast", 0.05)
        clock[0] += 0.1
    assert fastest([slow, fast], ctx(), state(tracker))[0].id == "fast"
    # a deployment never measured scores 0: it is tried
    assert fastest([slow, fast, new], ctx(), state(tracker))[-1].id == "slow"
    # in-flight load counts
    for _ in range(20):
        tracker.started("fast")
    assert fastest([slow, fast], ctx(), state(tracker))[0].id == "slow"
