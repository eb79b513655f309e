"""AWS's side of `provider: bedrock`: static credentials, SigV4 signing and event-stream
framing (aws_chain.py: the rest of AWS's credential chain, and the transport that signs).

The one module that imports botocore (extra `bedrock`), and only inside functions, when a
Bedrock deployment is first used: a stack without one never loads it. botocore is AWS's own
implementation of both the signature (`SigV4Auth`: canonical request, credential scope,
session tokens) and the binary `application/vnd.amazon.eventstream` framing (prelude and
message CRCs, typed headers); `Config` checks at load time that it is installed.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asgi_llm.providers.transport import UpstreamRequest
from asgi_llm.sse import SSEError

if TYPE_CHECKING:
    from asgi_llm.config.schema import Deployment

SERVICE = "bedrock"
# Access key ids (AKIA long-term, ASIA temporary) wherever they appear in upstream text.
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b")
MAX_MESSAGE_BYTES = 1 << 20  # one event-stream message held between reads at most


class AwsConfigError(Exception):
    """A deployment that cannot be signed (no region, no credentials): says which is missing."""


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def static_credentials(deployment: Deployment, environ: Mapping[str, str]) -> AwsCredentials | None:
    """The deployment's own keys, else the standard environment variables (read per request,
    so rotated session credentials are picked up); None when neither has them (then
    aws_chain.py asks the rest of AWS's default chain)."""
    if deployment.aws_access_key_id and deployment.aws_secret_access_key:
        return AwsCredentials(
            deployment.aws_access_key_id, deployment.aws_secret_access_key, deployment.aws_session_token
        )
    key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        return AwsCredentials(key_id, secret, environ.get("AWS_SESSION_TOKEN") or None)
    return None


def credentials_for(deployment: Deployment, environ: Mapping[str, str]) -> AwsCredentials:
    """`static_credentials`, or an error saying what to set."""
    found = static_credentials(deployment, environ)
    if found is not None:
        return found
    raise AwsConfigError(
        f"deployment {deployment.id!r} has no AWS credentials: set aws_access_key_id and "
        "aws_secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )


def region_for(deployment: Deployment, environ: Mapping[str, str]) -> str:
    region = deployment.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise AwsConfigError(f"deployment {deployment.id!r} has no AWS region: set region, or AWS_REGION")
    return region


def sign(request: UpstreamRequest, credentials: AwsCredentials, region: str) -> UpstreamRequest:
    """The request with SigV4 headers added (x-amz-date, x-amz-security-token, authorization).

    The body's hash and the time are part of the signature: sign once per attempt, just
    before it is sent. The URL must be sent as signed: `bedrock.py` writes model ids so that
    no HTTP client re-encodes them.
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    aws = AWSRequest(method=request.method, url=request.url, data=request.body, headers=dict(request.headers))
    signer = SigV4Auth(
        Credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
        SERVICE,
        region,
    )
    signer.add_auth(aws)
    headers = {name.lower(): value for name, value in aws.headers.items()}
    return UpstreamRequest(request.method, request.url, headers, request.body)


def scrub_credentials(text: str, credentials: AwsCredentials | None) -> str:
    """An upstream message without the deployment's keys or anything shaped like a key id."""
    if credentials is not None:
        for secret in (credentials.secret_access_key, credentials.session_token, credentials.access_key_id):
            if secret:
                text = text.replace(secret, "***")
    return _ACCESS_KEY_ID.sub("***", text)


class EventStreamError(SSEError):
    """The event stream is broken (a CRC that does not match, a malformed prelude or header,
    a message over the size limit): the stream failed, as a broken SSE stream does."""


@dataclass(frozen=True, slots=True)
class EventMessage:
    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str:
        return str(self.headers.get(":event-type") or self.headers.get(":exception-type") or "")


class EventStreamDecoder:
    """Whole event-stream messages out of arbitrary chunks (a message may span any number of
    reads), every prelude and message CRC checked by botocore's incremental parser."""

    __slots__ = ("_buffer", "_pending")

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._buffer = EventStreamBuffer()
        self._pending = 0  # bytes fed and not yet returned as messages

    def feed(self, chunk: bytes) -> list[EventMessage]:
        from botocore.eventstream import ParserError

        self._buffer.add_data(chunk)
        self._pending += len(chunk)
        messages = []
        try:
            for message in self._buffer:
                self._pending -= message.prelude.total_length
                if message.prelude.total_length > MAX_MESSAGE_BYTES:  # came whole in one read
                    raise EventStreamError("an event-stream message exceeds the size limit")
                messages.append(EventMessage(message.headers, message.payload))
        except EventStreamError:
            raise
        except ParserError as exc:
            raise EventStreamError(f"a broken event-stream message ({exc.__class__.__name__})") from None
        except (
            KeyError,
            IndexError,
            ValueError,
            struct.error,
        ) as exc:  # an unknown header type, a short header
            raise EventStreamError(f"a malformed event-stream header ({exc.__class__.__name__})") from None
        if self._pending > MAX_MESSAGE_BYTES:
            raise EventStreamError("an event-stream message exceeds the size limit")
        return messages

    @property
    def pending(self) -> int:
        return self._pending


__all__ = [
    "AwsConfigError",
    "AwsCredentials",
    "EventMessage",
    "EventStreamDecoder",
    "EventStreamError",
    "credentials_for",
    "region_for",
    "scrub_credentials",
    "sign",
    "static_credentials",
]
