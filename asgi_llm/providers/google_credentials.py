"""What a Google credentials file holds, and the OAuth2 grant it makes for an access token.

- `service_account` (`gcloud iam service-accounts keys create`): RFC 7523's JWT bearer grant,
  a JWT signed RS256 with the account's key (joserfc), sent to the file's `token_uri`;
- `authorized_user` (`gcloud auth application-default login`): RFC 6749's refresh-token grant
  with the file's client id, client secret and refresh token (to its `token_uri`, else
  Google's), and its `quota_project_id` named on every call (`x-goog-user-project`), as
  Google wants for a user's credentials.

The file is read when a deployment's transport is made (its first request), never at import
or config load; its secrets stay in memory and never reach a log, an error or a metric.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jwt
from joserfc.jwk import RSAKey

from asgi_llm.config.urls import check_http_url

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
ASSERTION_LIFETIME_S = 3600  # the longest Google accepts


class CredentialsError(Exception):
    """The key file cannot be used, or the token endpoint refused the grant. The message
    never holds key material: it is safe to log."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    email: str
    token_uri: str
    key_id: str | None
    key: RSAKey = dataclasses.field(repr=False)
    quota_project: None = None  # a service account's calls are billed to its own project

    @property
    def label(self) -> str:  # who the logs name
        return self.email

    def form(self, now: float) -> dict[str, str]:
        """The token request's form: the JWT bearer grant."""
        return {"grant_type": GRANT_TYPE, "assertion": assertion(self, now)}


@dataclass(frozen=True, slots=True)
class AuthorizedUser:
    client_id: str
    token_uri: str
    client_secret: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    quota_project: str | None = None

    @property
    def label(self) -> str:
        return f"user credentials of client {self.client_id[:24]}"

    def form(self, now: float) -> dict[str, str]:
        """The token request's form: the refresh-token grant."""
        return {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }


GoogleCredentials = ServiceAccount | AuthorizedUser


def _read(path: str) -> Any:
    try:
        with open(path, "rb") as file:
            return orjson.loads(file.read(1 << 20))
    except OSError as exc:
        raise CredentialsError(f"cannot read the credentials file ({exc.__class__.__name__})") from None
    except orjson.JSONDecodeError:
        raise CredentialsError("the credentials file is not JSON") from None


def _token_uri(data: dict[str, Any]) -> str:
    token_uri = data.get("token_uri") or DEFAULT_TOKEN_URI
    try:
        check_http_url(token_uri)
    except ValueError:
        raise CredentialsError("the credentials file's token_uri is not an http(s) URL") from None
    return str(token_uri)


def load_credentials(path: str) -> GoogleCredentials:
    """A service-account key file or a user's application-default credentials."""
    data = _read(path)
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "authorized_user":
        fields = [data.get(k) for k in ("client_id", "client_secret", "refresh_token")]
        if not all(isinstance(v, str) and v for v in fields):
            raise CredentialsError("the credentials file lacks client_id, client_secret or refresh_token")
        quota = data.get("quota_project_id")
        client_id, secret, refresh = fields
        return AuthorizedUser(
            client_id, _token_uri(data), secret, refresh, quota if isinstance(quota, str) else None
        )
    return _service_account(data)


def load_service_account(path: str) -> ServiceAccount:
    """A service-account key file (`gcloud iam service-accounts keys create`)."""
    return _service_account(_read(path))


def _service_account(data: Any) -> ServiceAccount:
    if not isinstance(data, dict) or data.get("type") != "service_account":
        kind = data.get("type") if isinstance(data, dict) else None
        raise CredentialsError(
            "the credentials file is not a service-account key or authorized_user credentials "
            f"(type {str(kind)[:40]!r})"
        )
    email, pem = data.get("client_email"), data.get("private_key")
    if not isinstance(email, str) or not isinstance(pem, str):
        raise CredentialsError("the credentials file lacks client_email or private_key")
    token_uri = _token_uri(data)
    try:
        key = RSAKey.import_key(pem)
    except Exception:  # noqa: BLE001 - whatever the reason, its text may quote the key
        raise CredentialsError("the credentials file's private_key is not an RSA private key") from None
    if not key.is_private:
        raise CredentialsError("the credentials file's private_key is not an RSA private key")
    key_id = data.get("private_key_id")
    return ServiceAccount(email, token_uri, key_id if isinstance(key_id, str) else None, key)


def assertion(account: ServiceAccount, now: float) -> str:
    """The signed JWT the grant presents: this account asks its token endpoint for a
    cloud-platform token."""
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if account.key_id:
        header["kid"] = account.key_id
    issued = int(now)
    claims = {
        "iss": account.email,
        "scope": SCOPE,
        "aud": account.token_uri,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_S,
    }
    return jwt.encode(header, claims, account.key, algorithms=["RS256"])


__all__ = [
    "AuthorizedUser",
    "CredentialsError",
    "GoogleCredentials",
    "ServiceAccount",
    "assertion",
    "load_credentials",
    "load_service_account",
]
