"""Rate limits, token limits, concurrency and USD budgets that hold across replicas.

middleware.py   RateLimitMiddleware: admission before the call, settlement after it
rules.py        the `limits:` section compiled per snapshot; a request's checks
identity.py     who is counted: principal, tenant, client address (trusted proxies)
budgets.py      calendar periods, micro-dollars, the cost of a request
limiter.py      shared store vs. local fallback (degraded mode, strict, fail-closed budgets)
store.py        the counter-store interface and what passes through it
memory.py       MemoryStore (one process, and the degraded fallback)
redis_store.py  RedisStore (fleets); scripts.py: its two Lua scripts
"""

from asgi_llm.ratelimit.middleware import RateLimitMiddleware

__all__ = ["RateLimitMiddleware"]
