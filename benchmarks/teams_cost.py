"""What runtime teams and keys cost per request, in process (docs/teams.md): the full stack of
`benchmarks.stack_cost` with a key store in Redis, its caller a key of a tenant
- `no-store`: no key store (the config key alone, as before teams existed);
- `store`: a key store, no team for the tenant;
- `team`: the tenant is a team with a budget, rpm, tpm and an allow-list (one more window,
  one more budget hold, one more allow-list to match).
Also counted: the key store's Redis commands per request (a lookup's answer is cached for
`cache_ttl_s`, the team table is checked once a second in the background).

    python -m benchmarks.teams_cost
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
import uuid
from typing import Any

from asgi_llm import Config, build_app
from asgi_llm.auth.keys import RedisKeyStore
from asgi_llm.auth.quotas import Settings
from asgi_llm.auth.teams import Team
from asgi_llm.server import RequestGuard
from asgi_llm.server.workers import freeze_startup_objects
from benchmarks.stack_cost import MODELS, SECTIONS, InstantTransport, one
from benchmarks.upstream import MODEL, REQUEST_BODY

VARIANTS = ("no-store", "store", "team")


def config_for(variant: str, redis_url: str, prefix: str) -> dict[str, Any]:
    auth = {
        **SECTIONS["auth"],
        "api_keys": [{**SECTIONS["auth"]["api_keys"][0], "tenant": f"team-{variant}"}],
    }
    if variant != "no-store":
        auth["key_store"] = {"url": redis_url, "prefix": prefix, "cache_ttl_s": 5}
    return {"models": MODELS, **SECTIONS, "auth": auth}


async def measure(
    redis_url: str, rounds: int, per_round: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    prefix = f"bench-teams-{uuid.uuid4().hex[:8]}"
    calls = {name: 0 for name in VARIANTS}
    apps = {}
    stacks = []
    for name in VARIANTS:
        stack = build_app(
            Config.from_dict(config_for(name, redis_url, prefix)),
            transport_factory=lambda d: InstantTransport(),
        )
        stacks.append(stack)
        apps[name] = RequestGuard(stack, access_log=False)
        store = stack.services.key_stores.for_config(stack.configs.current)
        if store is not None:
            _count(store, calls, name)
            if name == "team":
                team = Team(
                    "team-team", Settings(budget_usd=1e6, rpm=10**8, tpm=10**11, models=(MODEL, "gpt-*"))
                )
                await store.teams.create(team)
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    counter = 0

    def body() -> bytes:
        nonlocal counter
        counter += 1  # every body differs: the cache misses
        return REQUEST_BODY.replace("Say hello", f"Say hello {counter}").encode()

    for name in VARIANTS:
        for _ in range(200):
            assert await one(apps[name], body()) == 200, name
    freeze_startup_objects()
    for name in VARIANTS:
        calls[name] = 0
    started = time.monotonic()
    for _ in range(rounds):
        for name in VARIANTS:
            bodies = [body() for _ in range(per_round)]
            start = time.process_time()
            for each in bodies:
                await one(apps[name], each)
                await asyncio.sleep(0)  # as a server's loop would turn: background tasks run
            samples[name].append((time.process_time() - start) / per_round * 1e6)
    elapsed = time.monotonic() - started
    per_request = {name: calls[name] / (rounds * per_round) for name in VARIANTS}
    per_request.update({f"{name}-total": float(calls[name]) for name in VARIANTS})
    per_request["seconds"] = elapsed
    for stack in stacks:
        store = stack.services.key_stores.for_config(stack.configs.current)
        if store is not None:
            await store.client.delete(f"{prefix}:teams", f"{prefix}:teams_rev")
        await stack.services.shutdown()
    return samples, per_request


def _count(store: RedisKeyStore, calls: dict[str, int], name: str) -> None:
    call = store.call

    async def counted(command: Any) -> Any:
        calls[name] += 1
        return await call(command)

    store.call = counted  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args(argv)
    logging.getLogger("asgi_llm").setLevel(logging.ERROR)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        samples, calls = runner.run(measure(args.redis, args.rounds, args.per_round))
    base = statistics.median(samples["no-store"])
    print("| variant | µs CPU per request (median) | vs no-store | key-store Redis calls per request |")
    print("|---|---:|---:|---:|")
    for name in VARIANTS:
        median = statistics.median(samples[name])
        print(f"| {name} | {median:.1f} | {median - base:+.1f} | {calls[name]:.4f} |")
    totals = ", ".join(f"{name} {calls[name + '-total']:.0f}" for name in VARIANTS)
    print(f"({calls['seconds']:.1f} s measured; key-store calls in all: {totals})")


if __name__ == "__main__":
    main()
