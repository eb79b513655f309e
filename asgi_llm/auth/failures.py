"""Failed authentications: bounding what they cost the remote verifiers, never at the expense
of someone else's valid credential (THREATS K8).

A client address is a poor identity (an office NAT, an ingress without `trusted_proxies`), so
nothing here refuses a credential that can be verified without a remote call: config keys,
JWTs (the key set is cached; `jwt.py` rate-limits refetches globally) and store keys or
tokens whose answer is cached. What is bounded is the remote checks:

- `FailedCredentials` remembers, for `auth.failure_window_s`, the digest of every credential
  that failed: the same bad credential repeated (a mistyped key in a retry loop) is answered
  401 from memory and never reaches the key store or the introspection endpoint again.
- `RemoteCheckBudget` allows each address `auth.failure_limit` remote checks per window that
  did not succeed (each is charged before the call, a success gives its charge back). Past it,
  a credential only a remote check could vouch for gets 429 `too_many_auth_failures` without
  the call. Per process; `limits.trusted_proxies` decides what the address is.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from asgi_llm.errors import AuthenticationFailed, RateLimited

T = TypeVar("T")
_MAX_ENTRIES = 10_000  # per structure: memory stays bounded whatever clients send


class FailedCredentials:
    """Digests of credentials that failed, with why, until they expire (oldest dropped first)."""

    def __init__(self, size: int = _MAX_ENTRIES) -> None:
        # digest -> (until, message, reason)
        self._items: OrderedDict[str, tuple[float, str, str]] = OrderedDict()
        self._size = size

    def get(self, digest: str, now: float) -> tuple[str, str] | None:
        """(message, reason) of the failure, or None when the digest is not known to be bad."""
        item = self._items.get(digest)
        if item is None or item[0] <= now:
            return None
        return item[1], item[2]

    def add(self, digest: str, message: str, reason: str, until: float) -> None:
        self._items[digest] = (until, message, reason)
        self._items.move_to_end(digest)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class RemoteCheckBudget:
    """Per address, a fixed window of remote checks that did not succeed."""

    def __init__(self, max_addresses: int = _MAX_ENTRIES) -> None:
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address -> (start, used)
        self._max = max_addresses

    def charge(self, address: str, limit: int, window_s: float, now: float) -> float | None:
        """Take one check for the address: None when taken, else seconds until the window ends."""
        start, used = self._windows.pop(address, (now, 0))
        if now - start >= window_s:
            start, used = now, 0
        self._windows[address] = (start, used if used >= limit else used + 1)
        while len(self._windows) > self._max:  # bounded: the least recently charged address goes
            self._windows.popitem(last=False)
        return start + window_s - now if used >= limit else None

    def refund(self, address: str) -> None:
        """The check succeeded: it costs the address nothing."""
        seen = self._windows.get(address)
        if seen is not None and seen[1] > 0:
            self._windows[address] = (seen[0], seen[1] - 1)

    def __len__(self) -> int:
        return len(self._windows)


class RemoteCheckGuard:
    """Both of the above around one remote check."""

    def __init__(self) -> None:
        self.failed = FailedCredentials()
        self.budget = RemoteCheckBudget()

    async def check(
        self,
        ask: Callable[[], Awaitable[T]],
        *,
        digest: str,
        address: Callable[[], str],
        limit: int,
        window_s: float,
        now: float,
    ) -> T:
        """`ask()` unless the credential is known bad (401 again) or the address has no
        budget left (429, without the call)."""
        known = self.failed.get(digest, now)
        if known is not None:
            raise AuthenticationFailed(known[0], reason=known[1])
        client = address()
        wait = self.budget.charge(client, limit, window_s, now)
        if wait is not None:
            raise RateLimited(
                "Too many failed authentications from this address; this credential cannot be "
                "checked now. Try again later.",
                code="too_many_auth_failures",
                retry_after=wait,
            )
        try:
            answer = await ask()
        except AuthenticationFailed as exc:
            self.failed.add(digest, exc.message, exc.reason, now + window_s)
            raise
        except BaseException:
            self.budget.refund(client)  # a 503 or a cancelled request: no fault of the credential
            raise
        self.budget.refund(client)
        return answer
