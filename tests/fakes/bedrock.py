"""A scriptable fake AWS Bedrock Runtime: a real HTTP server on 127.0.0.1 that checks SigV4.

    with FakeBedrock() as aws:
        aws.script(Turn(status=429), Turn(tool_uses=[("get_weather", {"city": "Paris"})]))
        ...  # point a `bedrock` deployment at aws.base_url with aws.credentials()
        assert aws.requests[0].json["system"] == [{"text": "Be brief."}]

It speaks Converse (`POST /model/{id}/converse`), ConverseStream (`/converse-stream`, in
binary `application/vnd.amazon.eventstream` frames written by the encoder below) and
InvokeModel (`/invoke`) of Titan and Cohere embedding models. Before anything else it
verifies each request's SigV4 signature, independently of botocore (the code under test
signs with botocore): an unknown key, a credential scoped to another region or service, a
time more than 5 minutes off, or a signature that does not match the request (a modified
body) is a 403 in AWS's error shape, as AWS answers it. Then it validates the body as
Converse does (field names, alternating roles, tool blocks without toolConfig).

The server, thread, recording and scripting are FakeUpstream's (tests/fakes/upstream.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import hashlib
import hmac
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from tests.fakes.bedrock_checks import cache_point_problem, guardrail_problem, guardrail_trace
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Send, _dumps, _encode, _pause

ACCESS_KEY_ID = "AKIAFAKEBEDROCK00001"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/bedrock-fake-secret/EXAMPLEKEY"
REGION = "us-east-1"
SERVICE = "bedrock"
MAX_SKEW_S = 300
EVENT_STREAM = "application/vnd.amazon.eventstream"

_raw_path: contextvars.ContextVar[bytes] = contextvars.ContextVar("raw_path")

_CONVERSE_FIELDS = {
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
}
_BLOCK_KINDS = {
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
}
_INFERENCE_FIELDS = {"maxTokens", "temperature", "topP", "stopSequences"}
_ERROR_NAMES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


@dataclass
class Turn:
    """How the fake answers one Converse, ConverseStream or InvokeModel call."""

    status: int = 200
    error_name: str | None = None  # x-amzn-errortype; default by status (ThrottlingException for 429)
    error_message: str = "fake bedrock error"
    delay_s: float = 0.0
    text: str = "Hello from the fake Bedrock."
    chunks: int = 3  # text deltas the text is cut into
    tool_uses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    json_pieces: int = 2  # toolUse input deltas per tool
    stop_reason: str | None = None  # default: tool_use when tools were used, else end_turn
    input_tokens: int = 11
    output_tokens: int = 7
    cache_read: int = 0
    cache_write: int = 0
    chunk_delay_s: float = 0.0
    split_frames: bool = False  # each frame in two writes, a pause between: split across reads
    bad_crc_at: int | None = None  # this frame's message CRC is wrong
    exception_at: int | None = None  # a throttlingException frame instead of this frame
    cut_after: int | None = None  # drop the connection after this many frames
    body: bytes | None = None  # answer these bytes as they are (status 200, JSON)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    session_token: str | None = None


# -- the event-stream encoder ---------------------------------------------------------------
def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def encode_message(headers: dict[str, str], payload: bytes, *, bad_crc: bool = False) -> bytes:
    """One event-stream message: prelude (total and headers length, CRC), string headers,
    payload, and the CRC of all before it."""
    header_bytes = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(header_bytes) + len(payload) + 4, len(header_bytes))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + header_bytes + payload
    crc = zlib.crc32(message) ^ (0xFFFFFFFF if bad_crc else 0)
    return message + struct.pack(">I", crc)


def event_frame(event_type: str, payload: dict[str, Any], *, bad_crc: bool = False) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    # Bedrock pads every event with "p" so that sizes say nothing about the content.
    return encode_message(headers, _dumps({**payload, "p": "abcdefgh"}), bad_crc=bad_crc)


def exception_frame(name: str, message: str) -> bytes:
    headers = {":exception-type": name, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, _dumps({"message": message}))


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, count)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def converse_events(
    answer: dict[str, Any], *, chunks: int = 3, json_pieces: int = 2
) -> list[tuple[str, dict[str, Any]]]:
    """A whole Converse answer as ConverseStream's events, in order."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(answer["output"]["message"]["content"]):
        if "text" in block:
            for piece in _pieces(block["text"], chunks):
                events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}))
        else:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            for piece in _pieces(_dumps(use["input"]).decode(), json_pieces):
                events.append(
                    (
                        "contentBlockDelta",
                        {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}},
                    )
                )
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": answer["stopReason"]}))
    metadata = {"usage": answer["usage"], "metrics": {"latencyMs": 42}}
    if "trace" in answer:
        metadata["trace"] = answer["trace"]
    events.append(("metadata", metadata))
    return events


# -- SigV4, checked as AWS checks it ------------------------------------------------------------
def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    return _hmac(_hmac(_hmac(key, region), service), "aws4_request")


def canonical_request(
    method: str, raw_path: bytes, query: str, headers: dict[str, str], signed: list[str], body: bytes
) -> str:
    # Non-S3 services encode the path as received once more (the SigV4 spec's double encoding).
    path = quote(raw_path.decode("latin-1"), safe="/~")
    pairs = sorted(tuple(p.partition("=")[::2]) for p in query.split("&") if p) if query else []
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    lines = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    return "\n".join(
        [method, path, canonical_query, lines, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )


class SignatureRefused(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def verify_sigv4(
    rec: RecordedRequest,
    raw_path: bytes,
    keys: dict[str, Credentials],
    *,
    region: str,
    now: float,
) -> Credentials:
    """The credentials that signed the request, or SignatureRefused as AWS words it."""
    authorization = rec.headers.get("authorization", "")
    if not authorization:
        raise SignatureRefused("MissingAuthenticationTokenException", "Missing Authentication Token")
    algorithm, _, rest = authorization.partition(" ")
    parts = dict(p.strip().partition("=")[::2] for p in rest.split(","))
    if algorithm != "AWS4-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= set(parts):
        raise SignatureRefused(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature', 'SignedHeaders'.",
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureRefused("IncompleteSignatureException", "Credential is malformed.")
    key_id, date, scope_region, scope_service, _ = scope
    credentials = keys.get(key_id)
    if credentials is None:
        raise SignatureRefused(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    if scope_region != region:
        raise SignatureRefused("InvalidSignatureException", "Credential should be scoped to a valid region. ")
    if scope_service != SERVICE:
        raise SignatureRefused(
            "InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'. "
        )
    stamp = rec.headers.get("x-amz-date", "")
    try:
        signed_at = (
            datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC).timestamp()
        )
    except ValueError:
        raise SignatureRefused("IncompleteSignatureException", "X-Amz-Date is malformed.") from None
    if abs(now - signed_at) > MAX_SKEW_S:
        when = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        raise SignatureRefused(
            "InvalidSignatureException", f"Signature expired: {stamp} is now earlier than {when} - 5 min."
        )
    signed = parts["SignedHeaders"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        raise SignatureRefused(
            "InvalidSignatureException", "The request signature must sign host and x-amz-date."
        )
    if credentials.session_token is not None and (
        rec.headers.get("x-amz-security-token") != credentials.session_token
        or "x-amz-security-token" not in signed
    ):
        raise SignatureRefused(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    request = canonical_request(rec.method, raw_path, rec.query, rec.headers, signed, rec.body)
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            stamp,
            f"{date}/{region}/{SERVICE}/aws4_request",
            hashlib.sha256(request.encode()).hexdigest(),
        ]
    )
    key = signing_key(credentials.secret_access_key, date, region, SERVICE)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts["Signature"]):
        raise SignatureRefused(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your "
            "AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
    return credentials


# -- Converse validation --------------------------------------------------------------------
def converse_problem(payload: Any) -> str | None:
    """What Converse would refuse in this body (a ValidationException's message), or None."""
    if not isinstance(payload, dict):
        return "Malformed input request, please reformat your input and try again."
    unknown = set(payload) - _CONVERSE_FIELDS
    if unknown:
        return f"Malformed input request: extraneous key [{sorted(unknown)[0]}] is not permitted"
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return "The messages field is required and must not be empty."
    tool_blocks = False
    for i, message in enumerate(messages):
        if message.get("role") != ("user" if i % 2 == 0 else "assistant"):
            return "A conversation must alternate between user and assistant roles, starting with user."
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return f"messages.{i}.content must be a non-empty list."
        for block in content:
            if not isinstance(block, dict) or len(block) != 1 or not set(block) <= _BLOCK_KINDS:
                return f"messages.{i}.content holds an invalid content block: {sorted(block)}"
            if "text" in block and not block["text"].strip():
                return "The text field in the ContentBlock object is blank."
            tool_blocks = tool_blocks or "toolUse" in block or "toolResult" in block
    if tool_blocks and "toolConfig" not in payload:
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    tool_config = payload.get("toolConfig") or {}
    forced = ((tool_config.get("toolChoice") or {}).get("tool") or {}).get("name")
    names = [(t.get("toolSpec") or {}).get("name") for t in tool_config.get("tools") or ()]
    if forced is not None and forced not in names:
        return f"The tool {forced} in toolChoice is not one of the tools."
    config = payload.get("inferenceConfig", {})
    if not isinstance(config, dict) or not set(config) <= _INFERENCE_FIELDS:
        return "Malformed input request: inferenceConfig has an extraneous key."
    for block in payload.get("system", []):
        if set(block) - {"text", "guardContent", "cachePoint"}:
            return "Malformed input request: system holds an invalid block."
    return None


def _sample(schema: dict[str, Any]) -> Any:
    """A value that fits a JSON Schema object's properties (what a forced tool's input holds)."""
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: _sample(sub) for name, sub in (schema.get("properties") or {"answer": {}}).items()}
    if kind == "array":
        return [_sample(schema.get("items") or {})]
    return {"integer": 2, "number": 1.5, "boolean": True}.get(str(kind), "fake")


class FakeBedrock(FakeUpstream):
    """Bedrock Runtime on 127.0.0.1:<free port>; `base_url` is the endpoint's root."""

    default: Turn  # type: ignore[assignment]

    def __init__(self, name: str = "bedrock", *, region: str = REGION) -> None:
        super().__init__(name)
        self.default = Turn()
        self.region = region
        self.keys: dict[str, Credentials] = {ACCESS_KEY_ID: Credentials()}
        self.clock_offset_s = 0.0  # this server's clock runs this far ahead
        self.refused: list[str] = []  # error names of the signatures refused

    def start(self):  # type: ignore[no-untyped-def]
        started = super().start()
        self.base_url = self.root_url
        return started

    def script(self, *turns: Turn) -> None:  # type: ignore[override]
        super().script(*turns)  # type: ignore[arg-type]

    def reset(self) -> None:
        super().reset()
        self.refused.clear()

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            _raw_path.set(scope.get("raw_path") or scope["path"].encode())
        await super()._app(scope, receive, send)

    async def _aws_error(
        self, rec: RecordedRequest, send: Send, status: int, name: str, message: str
    ) -> None:
        headers = {
            "content-type": "application/json",
            "x-amzn-errortype": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-requestid": f"req-{self.name}",
        }
        await self._reply(rec, send, status, _dumps({"message": message}), headers)

    async def _respond(self, rec: RecordedRequest, send: Send, abort: asyncio.Event) -> None:
        try:
            verify_sigv4(
                rec, _raw_path.get(), self.keys, region=self.region, now=time.time() + self.clock_offset_s
            )
        except SignatureRefused as refused:
            self.refused.append(refused.name)
            return await self._aws_error(rec, send, 403, refused.name, str(refused))
        parts = rec.path.split("/")  # ['', 'model', '<id>', 'converse']
        if (
            rec.method != "POST"
            or len(parts) != 4
            or parts[1] != "model"
            or parts[3]
            not in (
                "converse",
                "converse-stream",
                "invoke",
            )
        ):
            return await self._aws_error(rec, send, 404, "UnknownOperationException", "Unknown operation")
        model, operation = unquote(parts[2]), parts[3]
        turn, n = self._next_behavior()
        assert isinstance(turn, Turn)
        if turn.delay_s > 0 and not await _pause(abort, turn.delay_s):
            return
        if turn.status != 200:
            name = turn.error_name or _ERROR_NAMES.get(turn.status, "InternalServerException")
            return await self._aws_error(rec, send, turn.status, name, turn.error_message)
        if turn.body is not None:
            return await self._reply(rec, send, 200, turn.body, {"content-type": "application/json"})
        if operation == "invoke":
            return await self._invoke(rec, send, model)
        problem = converse_problem(rec.json) or cache_point_problem(rec.json, model)
        problem = problem or guardrail_problem(
            rec.json.get("guardrailConfig"), stream=operation != "converse"
        )
        if problem is not None:
            return await self._aws_error(rec, send, 400, "ValidationException", problem)
        answer = self._answer(turn, n, rec.json)
        if operation == "converse":
            return await self._reply(rec, send, 200, _dumps(answer), {"content-type": "application/json"})
        await self._stream(rec, send, abort, turn, answer)

    def _answer(self, turn: Turn, n: int, payload: dict[str, Any]) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"text": turn.text}] if turn.text else []
        tool_uses = turn.tool_uses
        tool_config = payload.get("toolConfig") or {}
        forced = ((tool_config.get("toolChoice") or {}).get("tool") or {}).get("name")
        if forced is not None and not tool_uses:  # a forced tool: the model answers by calling it
            spec = next(t["toolSpec"] for t in tool_config["tools"] if t["toolSpec"]["name"] == forced)
            content, tool_uses = [], [(forced, _sample(spec["inputSchema"]["json"]))]
        for i, (name, arguments) in enumerate(tool_uses):
            content.append(
                {"toolUse": {"toolUseId": f"tooluse_{self.name}_{n}_{i}", "name": name, "input": arguments}}
            )
        usage = {
            "inputTokens": turn.input_tokens,
            "outputTokens": turn.output_tokens,
            "totalTokens": turn.input_tokens + turn.output_tokens + turn.cache_read + turn.cache_write,
        }
        if turn.cache_read or turn.cache_write:
            usage["cacheReadInputTokens"] = turn.cache_read
            usage["cacheWriteInputTokens"] = turn.cache_write
        answer = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": turn.stop_reason or ("tool_use" if tool_uses else "end_turn"),
            "usage": usage,
            "metrics": {"latencyMs": 42},
        }
        trace = guardrail_trace(payload.get("guardrailConfig"))
        if trace is not None:
            answer["trace"] = trace
        return answer

    async def _stream(
        self, rec: RecordedRequest, send: Send, abort: asyncio.Event, turn: Turn, answer: dict[str, Any]
    ) -> None:
        headers = {"content-type": EVENT_STREAM, "x-amzn-requestid": f"req-{self.name}"}
        await self._emit(
            rec, send, {"type": "http.response.start", "status": 200, "headers": _encode(headers)}
        )
        events = converse_events(answer, chunks=turn.chunks, json_pieces=turn.json_pieces)
        for i, (kind, payload) in enumerate(events):
            if i == turn.cut_after:
                rec.finished_at = time.monotonic()
                return  # hypercorn closes the connection mid-body
            if i and not await _pause(abort, turn.chunk_delay_s):
                return
            if i == turn.exception_at:
                frame = exception_frame(
                    "throttlingException", "Too many requests, please wait before trying again."
                )
                await self._emit(rec, send, {"type": "http.response.body", "body": frame, "more_body": True})
                break
            frame = event_frame(kind, payload, bad_crc=i == turn.bad_crc_at)
            if turn.split_frames:
                cut = len(frame) // 2
                await self._emit(
                    rec, send, {"type": "http.response.body", "body": frame[:cut], "more_body": True}
                )
                await asyncio.sleep(0.005)  # the halves leave in separate TCP writes
                frame = frame[cut:]
            await self._emit(rec, send, {"type": "http.response.body", "body": frame, "more_body": True})
        rec.finished_at = time.monotonic()
        await self._emit(rec, send, {"type": "http.response.body", "body": b""})

    async def _invoke(self, rec: RecordedRequest, send: Send, model: str) -> None:
        payload = rec.json if isinstance(rec.json, dict) else {}
        headers = {"content-type": "application/json"}
        if "titan-embed" in model:
            if set(payload) - {"inputText", "dimensions", "normalize", "embeddingTypes"} or not isinstance(
                payload.get("inputText"), str
            ):
                return await self._aws_error(rec, send, 400, "ValidationException", "Malformed input request")
            dimensions = payload.get("dimensions", 1024)
            body = {
                "embedding": _vector(payload["inputText"], dimensions),
                "inputTextTokenCount": len(payload["inputText"].split()),
            }
            return await self._reply(rec, send, 200, _dumps(body), headers)
        if "cohere.embed" in model:
            texts = payload.get("texts")
            if set(payload) - {"texts", "input_type", "truncate", "embedding_types"} or not isinstance(
                texts, list
            ):
                return await self._aws_error(rec, send, 400, "ValidationException", "Malformed input request")
            body = {
                "id": "emb-1",
                "embeddings": [_vector(t, 8) for t in texts],
                "texts": texts,
                "response_type": "embeddings_floats",
            }
            return await self._reply(rec, send, 200, _dumps(body), headers)
        return await self._aws_error(
            rec, send, 400, "ValidationException", f"The model {model} does not support InvokeModel here."
        )


def _vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.shake_256(text.encode()).digest(dimensions)
    return [round(byte / 127.5 - 1.0, 4) for byte in digest]
