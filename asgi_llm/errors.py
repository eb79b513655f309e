"""Every error asgi-llm raises, and how it looks on the wire.

    ConfigError                      invalid configuration (not an HTTP error)
    ProxyError                       base of everything answered to a client
    ├── InvalidRequest               400 invalid_request_error
    │   ├── BodyTooLarge             413
    │   └── UnsupportedMediaType     415
    ├── AuthenticationFailed         401 authentication_error
    ├── PermissionDenied             403 permission_error
    ├── ModelNotFound                404 invalid_request_error / model_not_found
    ├── RateLimited                  429 rate_limit_error (retry_after)
    ├── ServiceUnavailable           503 service_unavailable (retry_after)
    ├── InternalError                500 server_error (request id only)
    └── UpstreamError                502 upstream_error; carries deployment, retryable, retry_after
        ├── UpstreamTimeout          504 timeout
        └── UpstreamStatus           the upstream's own 4xx/5xx, passed on in our shape
                                     (its 401/403: 502 upstream_auth_failed, see there)

An error is an exception with its HTTP facts attached, so each layer raises and exactly one
place (the request exchange) renders it, whatever order the layers are stacked in.
"""

from __future__ import annotations

import math

import orjson

from asgi_llm.types import Headers


class ConfigError(ValueError):
    """Configuration that cannot be loaded: names the file and the field path."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.reason = message
        parts = [p for p in (source, field) if p]
        super().__init__(f"{': '.join(parts)}: {message}" if parts else message)


def error_object(
    message: str, error_type: str, code: str | None, param: str | None = None
) -> dict[str, str | None]:
    """The contract's error object, the one place its fields are named: every error answer,
    stream error event and admin report carries one under `"error"`."""
    return {"message": message, "type": error_type, "param": param, "code": code}


def error_body(message: str, error_type: str, code: str | None, param: str | None = None) -> bytes:
    """`{"error": {...}}` as JSON bytes."""
    return orjson.dumps({"error": error_object(message, error_type, code, param)})


class ProxyError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.param = param
        self.headers: Headers = headers or []

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)


class InvalidRequest(ProxyError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class BodyTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class AuthenticationFailed(ProxyError):
    """Every 401 has `code: invalid_api_key`: the contract, and what OpenAI's SDKs match on.
    `reason` keeps the finer cause (`missing_api_key`, `invalid_token`, `token_expired`, ...)
    for the audit log; the message says it in words."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"

    def __init__(self, message: str, *, reason: str = "invalid_api_key", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.reason = reason


class PermissionDenied(ProxyError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class ModelNotFound(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        # The name is the client's own input: quote it, truncated, never echo it raw.
        shown = model if len(model) <= 64 else model[:61] + "..."
        super().__init__(f"The model {shown!r} does not exist or is not served here.", param="model")


def retry_after_header(seconds: float) -> tuple[bytes, bytes]:
    """`retry-after` in whole seconds, rounded up, at least 1 (what clients and SDKs parse)."""
    return b"retry-after", str(max(1, math.ceil(seconds))).encode()


class _RetryAfter(ProxyError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.append(retry_after_header(retry_after))


class RateLimited(_RetryAfter):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ServiceUnavailable(_RetryAfter):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"


class InternalError(ProxyError):
    """Anything unexpected: the client sees the request id only, the log has the rest."""


class UpstreamError(ProxyError):
    status = 502
    type = "upstream_error"
    code = "upstream_connection_error"

    def __init__(
        self,
        message: str,
        *,
        deployment: str | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.deployment = deployment
        self.retryable = retryable
        self.retry_after = retry_after


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"


class UpstreamStatus(UpstreamError):
    """The upstream answered with an error status; 4xx other than 401/403/408/429 is final.

    A 401 or 403 refuses the credentials the proxy holds for the deployment (a key revoked, an
    AWS signature or a Vertex token refused, a model the account may not use), not the
    client's: it is the deployment's failure, retried on the next one, and never shown as a
    401 or 403 (which would tell the client its own key is wrong). It is a 502
    `upstream_error` with code `upstream_auth_failed` and the provider's message.
    """

    type = "upstream_error"
    code = "upstream_error"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        deployment: str | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
    ) -> None:
        retryable = status >= 500 or status in (401, 403, 408, 429)
        refused = status in (401, 403)
        if refused:
            said = f"HTTP {status}" + (f" {error_code}" if error_code else "")
            message = f"The upstream refused the proxy's credentials for this deployment ({said}): {message}"
        super().__init__(
            message,
            deployment=deployment,
            retryable=retryable,
            retry_after=retry_after,
            status=502 if refused else status,
        )
        if refused:
            self.code = "upstream_auth_failed"
        elif status == 429:
            self.type, self.code = "rate_limit_error", error_code or "rate_limit_exceeded"
            if retry_after is not None:
                self.headers.append(retry_after_header(retry_after))
        elif 400 <= status < 500:
            self.type = error_type or "invalid_request_error"
            self.code = error_code or self.code


__all__ = [
    "AuthenticationFailed",
    "BodyTooLarge",
    "ConfigError",
    "InternalError",
    "InvalidRequest",
    "ModelNotFound",
    "PermissionDenied",
    "ProxyError",
    "RateLimited",
    "ServiceUnavailable",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamStatus",
    "UpstreamTimeout",
    "error_body",
    "error_object",
    "retry_after_header",
]
