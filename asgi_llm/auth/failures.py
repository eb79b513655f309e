"""Failed authentications per client address: a guessing client is slowed, lookups bounded.

A fixed window per address, in this process (THREATS K8). Past `auth.failure_limit` failures
in `auth.failure_window_s`, the address is refused with 429 until the window ends, and only
credentials that can be checked locally (config keys, JWTs against cached JWKS) are still
tried: the Redis key store and the introspection endpoint are not asked on its behalf.
Behind a load balancer, list it in `limits.trusted_proxies`, or every client shares its address.
"""

from __future__ import annotations

from collections import OrderedDict


class FailureGate:
    def __init__(self, max_addresses: int = 10_000) -> None:
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address -> (start, n)
        self._max = max_addresses

    def blocked_for(self, address: str, limit: int, window_s: float, now: float) -> float | None:
        """Seconds until the address may try again, or None when it may try now."""
        if limit <= 0:
            return None
        seen = self._windows.get(address)
        if seen is None or now - seen[0] >= window_s or seen[1] < limit:
            return None
        return seen[0] + window_s - now

    def failed(self, address: str, window_s: float, now: float) -> None:
        start, count = self._windows.pop(address, (now, 0))
        if now - start >= window_s:
            start, count = now, 0
        self._windows[address] = (start, count + 1)
        while len(self._windows) > self._max:  # bounded: the oldest failing address goes
            self._windows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._windows)
