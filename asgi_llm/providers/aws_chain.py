"""A Bedrock deployment's credentials, and the transport that signs each request with them.

In order, per request: the deployment's own keys; else `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) from the environment, read each time so
rotated session keys are picked up; else the rest of AWS's default chain, by botocore's own
resolver: the shared credentials and config files (`AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`,
`AWS_CONFIG_FILE`), assumed roles and SSO profiles, web identity, container credentials (ECS,
EKS Pod Identity) and the instance's role (IMDS).

botocore resolves and refreshes with blocking I/O (files, STS, SSO, IMDS), so it never runs on
the event loop: the first resolution runs in a worker thread (the first requests wait for that
one resolution, single flight); refreshable credentials are refreshed in a worker thread in
the background from botocore's advisory window (15 minutes before they expire) while requests
go on signing with the current ones, and requests wait only inside the last minute.

Signing happens here, in the deployment's transport, just before the request is sent: the
signature covers the body and the time (aws.py's `sign`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from asgi_llm.config.schema import Deployment
from asgi_llm.errors import UpstreamError
from asgi_llm.providers.aws import AwsConfigError, AwsCredentials, region_for, sign, static_credentials
from asgi_llm.providers.transport import UpstreamRequest, UpstreamResponse, UpstreamTransport

log = logging.getLogger("asgi_llm.providers")

RETRY_AFTER_FAILURE_S = 5.0  # a chain that found nothing is asked again after this long
MUST_REFRESH_S = 60  # inside this of their expiry, requests wait for new credentials


def _botocore_chain() -> Any:
    """botocore's default credential chain (None when it finds nothing); blocking."""
    import botocore.session

    return botocore.session.get_session().get_credentials()


class DefaultChain:
    """The credentials AWS's default chain gives, kept fresh off the request path.
    `resolve` is botocore's resolver (tests give their own); `clock` is monotonic."""

    def __init__(
        self, resolve: Callable[[], Any] = _botocore_chain, clock: Callable[[], float] = time.monotonic
    ):
        self._resolve = resolve
        self._clock = clock
        self._source: Any = None  # botocore's Credentials (or RefreshableCredentials)
        self._frozen: AwsCredentials | None = None
        self._task: asyncio.Task[AwsCredentials | None] | None = None
        self._retry_at = 0.0
        self._failure: str | None = None  # why the last resolution failed, said until the next

    async def get(self) -> AwsCredentials | None:
        """Credentials to sign with now; None when the chain has none."""
        frozen, source = self._frozen, self._source
        if frozen is not None and not _needs_refresh(source, MUST_REFRESH_S):
            if _needs_refresh(source, None) and self._clock() >= self._retry_at:
                self._start()  # advisory: in the background, this request signs with these
            return frozen
        if frozen is None and source is None and self._clock() < self._retry_at:
            # Found nothing a moment ago: not asked again on every request.
            if self._failure is not None:
                raise AwsConfigError(self._failure)
            return None
        try:
            # shield: a request whose client left does not cancel what every waiter needs.
            return await asyncio.shield(self._start())
        except Exception as exc:  # noqa: BLE001 - botocore's (ProfileNotFound, SSO, STS ...)
            # The class only: botocore's words may name files and profiles, never keys, but
            # the client hears this; the log has the rest.
            self._failure = f"AWS's credential chain failed ({exc.__class__.__name__})"
            raise AwsConfigError(self._failure) from None

    def _start(self) -> asyncio.Task[AwsCredentials | None]:
        task = self._task
        if task is None or task.done():
            task = self._task = asyncio.get_running_loop().create_task(self._refresh())
            task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[AwsCredentials | None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None or task.result() is None:
            self._retry_at = self._clock() + RETRY_AFTER_FAILURE_S
        if error is None:
            self._failure = None
        if error is not None:  # seen once here, so it is never "never retrieved"
            log.warning("bedrock: the AWS credential chain failed: %s: %s", error.__class__.__name__, error)

    async def _refresh(self) -> AwsCredentials | None:
        self._frozen = await asyncio.to_thread(self._freeze)
        return self._frozen

    def _freeze(self) -> AwsCredentials | None:
        # In a worker thread: botocore reads files and calls STS, SSO or IMDS here.
        source = self._source if self._source is not None else self._resolve()
        if source is None:
            return None
        frozen = source.get_frozen_credentials()  # refreshes refreshable credentials if due
        self._source = source
        if not frozen.access_key or not frozen.secret_key:
            return None
        return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token or None)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _needs_refresh(source: Any, within: int | None) -> bool:
    """Whether botocore's credentials are due for a refresh (static ones never are)."""
    check = getattr(source, "refresh_needed", None)
    return bool(check(within)) if callable(check) else False


class BedrockTransport:
    """The deployment's pool, with every request SigV4-signed just before it goes out."""

    def __init__(
        self,
        deployment: Deployment,
        inner: UpstreamTransport,
        *,
        environ: Mapping[str, str] | None = None,
        chain: DefaultChain | None = None,
    ) -> None:
        self.deployment = deployment
        self.inner = inner
        self._environ = environ
        self._chain = chain

    async def credentials(self) -> AwsCredentials:
        environ = os.environ if self._environ is None else self._environ
        found = static_credentials(self.deployment, environ)
        if found is None:
            if self._chain is None:
                self._chain = DefaultChain()
            try:
                found = await self._chain.get()
            except AwsConfigError as exc:
                raise UpstreamError(
                    f"deployment {self.deployment.id!r}: {exc}",
                    deployment=self.deployment.id,
                    code="upstream_misconfigured",
                ) from None
        if found is None:
            raise UpstreamError(
                f"deployment {self.deployment.id!r} has no AWS credentials: set aws_access_key_id and "
                "aws_secret_access_key, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile, "
                "SSO, container or instance role in AWS's default chain",
                deployment=self.deployment.id,
                code="upstream_misconfigured",
            )
        return found

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        environ = os.environ if self._environ is None else self._environ
        credentials = await self.credentials()
        try:
            region = region_for(self.deployment, environ)
        except AwsConfigError as exc:
            raise UpstreamError(
                str(exc), deployment=self.deployment.id, code="upstream_misconfigured"
            ) from None
        return await self.inner.send(sign(request, credentials, region))

    async def aclose(self) -> None:
        if self._chain is not None:
            await self._chain.aclose()
        await self.inner.aclose()


def bedrock_transport(deployment: Deployment, inner: UpstreamTransport) -> UpstreamTransport:
    """The registry's wrapper for `bedrock` deployments."""
    return BedrockTransport(deployment, inner)


__all__ = ["BedrockTransport", "DefaultChain", "bedrock_transport"]
