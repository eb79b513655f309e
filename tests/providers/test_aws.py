"""providers/aws.py: SigV4 signing (checked by the fake's own verifier, not botocore's), the
event-stream decoder on frames split anywhere and on broken ones, and credential lookup."""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from asgi_llm.config.schema import Deployment
from asgi_llm.providers.aws import (
    MAX_MESSAGE_BYTES,
    AwsConfigError,
    AwsCredentials,
    EventStreamDecoder,
    EventStreamError,
    credentials_for,
    region_for,
    scrub_credentials,
    sign,
)
from asgi_llm.providers.transport import UpstreamRequest
from tests.fakes.bedrock import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    Credentials,
    SignatureRefused,
    encode_message,
    event_frame,
    exception_frame,
    verify_sigv4,
)
from tests.fakes.upstream import RecordedRequest

KEYS = {ACCESS_KEY_ID: Credentials()}
CREDENTIALS = AwsCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
URL = "http://127.0.0.1:9/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"


def deployment(**fields: object) -> Deployment:
    return Deployment.model_validate({"id": "b", "provider": "bedrock", "model": "m", **fields})


def received(request: UpstreamRequest, *, body: bytes | None = None) -> tuple[RecordedRequest, bytes]:
    """The request as the fake would record it (and its raw path)."""
    path = request.url.split("127.0.0.1:9", 1)[1]
    headers = {k.lower(): v for k, v in request.headers.items()} | {"host": "127.0.0.1:9"}
    return RecordedRequest(
        "POST", path, "", headers, body if body is not None else request.body
    ), path.encode()


def signed(
    body: bytes = b'{"messages":[]}', url: str = URL, credentials: AwsCredentials = CREDENTIALS
) -> UpstreamRequest:
    request = UpstreamRequest(
        "POST", url, {"content-type": "application/json", "accept": "application/json"}, body
    )
    return sign(request, credentials, "us-east-1")


# -- signing ----------------------------------------------------------------------------------
def test_a_signed_request_verifies_with_an_independent_implementation():
    request = signed()
    assert request.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    assert "x-amz-date" in request.headers
    rec, raw_path = received(request)
    assert verify_sigv4(rec, raw_path, KEYS, region="us-east-1", now=time.time()) == Credentials()


def test_a_modified_body_another_region_or_a_skewed_clock_is_refused():
    request = signed()
    rec, raw_path = received(request, body=b'{"messages":[1]}')
    with pytest.raises(SignatureRefused, match="does not match"):
        verify_sigv4(rec, raw_path, KEYS, region="us-east-1", now=time.time())
    rec, raw_path = received(request)
    with pytest.raises(SignatureRefused, match="valid region"):
        verify_sigv4(rec, raw_path, KEYS, region="eu-west-1", now=time.time())
    with pytest.raises(SignatureRefused, match="Signature expired"):
        verify_sigv4(rec, raw_path, KEYS, region="us-east-1", now=time.time() + 301)
    verify_sigv4(rec, raw_path, KEYS, region="us-east-1", now=time.time() - 299)


def test_an_arn_model_id_is_signed_as_it_is_sent():
    arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.anthropic.claude"
    request = signed(url=f"http://127.0.0.1:9/model/{arn}/converse")
    rec, raw_path = received(request)
    verify_sigv4(rec, raw_path, KEYS, region="us-east-1", now=time.time())


def test_a_session_token_is_sent_and_signed():
    session = Credentials("ASIAFAKEBEDROCK00002", "other-secret", "token-1")
    request = signed(credentials=AwsCredentials(session.access_key_id, session.secret_access_key, "token-1"))
    assert request.headers["x-amz-security-token"] == "token-1"
    rec, raw_path = received(request)
    verify_sigv4(rec, raw_path, {session.access_key_id: session}, region="us-east-1", now=time.time())


# -- credentials ------------------------------------------------------------------------------
def test_credentials_come_from_the_deployment_then_the_environment():
    mine = deployment(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key="s", region="eu-west-3")
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001",
        "AWS_SECRET_ACCESS_KEY": "e",
        "AWS_SESSION_TOKEN": "t",
    }
    assert credentials_for(mine, env) == AwsCredentials(ACCESS_KEY_ID, "s")
    assert credentials_for(deployment(), env) == AwsCredentials("AKIAENVIRONMENT00001", "e", "t")
    assert region_for(mine, {"AWS_REGION": "us-west-2"}) == "eu-west-3"
    assert region_for(deployment(), {"AWS_DEFAULT_REGION": "us-west-2"}) == "us-west-2"


def test_missing_credentials_or_region_say_what_to_set():
    with pytest.raises(AwsConfigError, match="aws_access_key_id.*AWS_ACCESS_KEY_ID"):
        credentials_for(deployment(), {})
    with pytest.raises(AwsConfigError, match="AWS_REGION"):
        region_for(deployment(), {})


def test_credentials_are_masked_in_upstream_text():
    session = AwsCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, "tok-123")
    text = f"bad {ACCESS_KEY_ID} {SECRET_ACCESS_KEY} tok-123 ASIAOTHERKEY00000009"
    assert scrub_credentials(text, session) == "bad *** *** *** ***"
    assert repr(session).count(SECRET_ACCESS_KEY) == 0


# -- the event stream -------------------------------------------------------------------------
FRAMES = [
    event_frame("messageStart", {"role": "assistant"}),
    event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
    exception_frame("throttlingException", "slow down"),
]
STREAM = b"".join(FRAMES)


def decoded(messages: list) -> list[tuple[str, str, bytes]]:
    return [(m.message_type, m.event_type, m.payload) for m in messages]


def test_messages_split_at_every_byte_come_out_whole():
    whole = decoded(EventStreamDecoder().feed(STREAM))
    assert [(kind, event) for kind, event, _ in whole] == [
        ("event", "messageStart"),
        ("event", "contentBlockDelta"),
        ("exception", "throttlingException"),
    ]
    for cut in range(1, len(STREAM)):
        decoder = EventStreamDecoder()
        assert decoded(decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])) == whole
        assert decoder.pending == 0
    decoder = EventStreamDecoder()
    assert decoded([m for i in range(len(STREAM)) for m in decoder.feed(STREAM[i : i + 1])]) == whole


def test_a_wrong_message_crc_is_refused():
    with pytest.raises(EventStreamError, match="ChecksumMismatch"):
        EventStreamDecoder().feed(FRAMES[0] + event_frame("contentBlockStop", {}, bad_crc=True))


def test_a_wrong_prelude_crc_is_refused_before_the_message_is_in():
    frame = bytearray(FRAMES[1])
    frame[8] ^= 0xFF  # the prelude's CRC
    with pytest.raises(EventStreamError, match="ChecksumMismatch"):
        EventStreamDecoder().feed(bytes(frame[:16]))


def test_an_unknown_header_type_is_refused():
    header = b"\x05:oops" + b"\x63" + b"\x00\x01x"  # type 99 does not exist
    prelude = struct.pack(">II", 12 + len(header) + 4, len(header))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + header
    with pytest.raises(EventStreamError, match="header"):
        EventStreamDecoder().feed(message + struct.pack(">I", zlib.crc32(message)))


def test_a_message_over_the_size_limit_is_refused_while_it_arrives():
    big = encode_message({":message-type": "event"}, b"x" * (MAX_MESSAGE_BYTES + 10))
    decoder = EventStreamDecoder()
    decoder.feed(big[: MAX_MESSAGE_BYTES // 2])
    with pytest.raises(EventStreamError, match="size limit"):
        decoder.feed(big[MAX_MESSAGE_BYTES // 2 :])
