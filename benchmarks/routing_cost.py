"""Routing decision cost: µs to filter and order the candidates of one request.

python -m benchmarks.routing_cost
"""

from __future__ import annotations

import statistics
import time

from asgi_llm import Config, RouterMiddleware
from asgi_llm.context import LLMContext

N = 5_000


def config(deployments: int, strategy: str) -> Config:
    return Config.from_dict(
        {
            "models": [
                {
                    "name": "m",
                    "strategy": strategy,
                    "deployments": [
                        {
                            "id": f"d{i}",
                            "provider": "mock",
                            "model": "m",
                            "weight": 1 + i % 3,
                            "capabilities": ["tools", "vision"],
                            "context_window": 128_000,
                            "cost": {
                                "input_per_mtok": 0.1 * (i % 7 + 1),
                                "output_per_mtok": 0.3 * (i % 5 + 1),
                            },
                        }
                        for i in range(deployments)
                    ],
                }
            ]
        }
    )


def main() -> None:
    print("| deployments | strategy | median µs | p99 µs |\n|---|---|---|---|")
    for count in (10, 100):
        for strategy in ("ordered", "weighted", "cost", "latency"):
            cfg = config(count, strategy)
            router = RouterMiddleware(lambda *a: None, config=cfg)  # type: ignore[arg-type]
            entry = cfg.catalog.resolve("m")
            for i in range(count):  # give the latency tracker some history
                router.latency.started(f"d{i}")
                router.latency.finished(f"d{i}", 0.01 * (i % 10 + 1))
            samples = []
            for _ in range(N):
                ctx = LLMContext(request_id="r", config=cfg, endpoint="chat")
                ctx.payload = {"max_tokens": 100}
                ctx.prompt_tokens_estimate = 500
                ctx.needs = frozenset({"tools"})
                start = time.perf_counter()
                router._plan(ctx, entry)
                samples.append((time.perf_counter() - start) * 1e6)
            samples.sort()
            print(
                f"| {count} | {strategy} | {statistics.median(samples):.1f} | "
                f"{samples[int(len(samples) * 0.99)]:.1f} |"
            )


if __name__ == "__main__":
    main()
