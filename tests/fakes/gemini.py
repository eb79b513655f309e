"""Scriptable fakes of Google's Gemini API (AI Studio) and of Gemini on Vertex AI, with
Vertex's OAuth2 token endpoint: real HTTP servers on 127.0.0.1 that validate what they get.

    with FakeGemini() as gemini:
        gemini.script(Reply(status=429), Reply(calls=[("get_weather", {"city": "Paris"})]))
        ...  # a `gemini` deployment with base_url=gemini.root_url, api_key=gemini.api_key
        assert gemini.requests[-1].json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}

What Google checks, these check, and answer Google's 400 otherwise: the model in the path,
the API key in `x-goog-api-key` (a key in the query string is refused, and recorded), every
field name of the request (unknown ones are Google's "Unknown name"), Gemini's Schema
subset in function declarations and `responseSchema`, function responses matching the calls
of the turn before, and a thought signature the fake issued coming back with its call.

FakeVertex serves the same API at Vertex's paths with a bearer token, which it issues at
`POST /token` only for a JWT bearer grant signed by the test service account's key (its
own RSA key, written by `service_account_file`), with the right issuer, audience and scope
and an unexpired, bounded lifetime; an expired or unknown token is a 401.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from tests.fakes.gemini_logprobs import LogprobsInvalid, check_logprobs, logprobs_result, text_of
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Send, _dumps, _encode, _pause

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
}
_CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "thinkingConfig",
    "responseLogprobs",
    "logprobs",
}
_BUILTIN_TOOLS = {"googleSearch", "urlContext"}
_PART_KINDS = {"text", "inlineData", "functionCall", "functionResponse", "fileData"}
_SCHEMA_FIELDS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}
_SCHEMA_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_VERTEX_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)


class Invalid(Exception):
    """The request is one Google would refuse: a 400 with this message."""


@dataclass
class Reply:
    """How the fake answers one generation or embedding request."""

    status: int = 200
    error_message: str = "fake gemini error"
    retry_delay: str | None = None  # a google.rpc.RetryInfo detail ("2s") on an error
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    text: str = "Hello from the fake Gemini."
    chunks: int = 3  # stream events the text is cut into
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # parallel function calls
    signature: str | None = None  # a thoughtSignature on the first call (as Gemini 3 signs)
    thought: bool = False  # a thought summary part first (the proxy must not show it)
    finish_reason: str = "STOP"
    block_reason: str | None = None  # the prompt is blocked: promptFeedback, no candidates
    prompt_tokens: int | None = None  # default: words in the request's contents and system
    candidates_tokens: int = 7
    cached_tokens: int = 0
    thoughts_tokens: int = 0
    chunk_delay_s: float = 0.0
    cut_after: int | None = None  # stream: drop the connection after this many events
    error_after: int | None = None  # stream: an error object after this many events
    body: bytes | None = None  # answer these bytes as they are


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        return _words(value.get("text")) + _words(value.get("parts"))
    return 0


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, count)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def error_body(status: int, message: str, retry_delay: str | None = None, reason: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
    if retry_delay is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    if reason is not None:  # google.rpc.ErrorInfo, as Google says why a key is refused
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
        }
        error["details"] = [info]
    return _dumps({"error": error})


def check_schema(schema: Any, where: str) -> None:
    """Gemini's Schema subset, as Google checks it."""
    if not isinstance(schema, dict):
        raise Invalid(f"{where}: must be an object")
    for name in schema:
        if name not in _SCHEMA_FIELDS:
            raise Invalid(
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
            )
    kind = schema.get("type")
    if kind is not None and kind not in _SCHEMA_TYPES:
        raise Invalid(f"{where}.type: invalid value {kind!r}")
    if kind is None and "anyOf" not in schema:
        raise Invalid(f"{where}: a schema needs a type or anyOf")
    if kind == "OBJECT" and not schema.get("properties"):
        raise Invalid(f"* {where}.properties: should be non-empty for OBJECT type")
    if "enum" in schema and kind != "STRING":
        raise Invalid(f"{where}.enum: only allowed for STRING type")
    for name, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{where}.properties[{name!r}]")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")
    for i, sub in enumerate(schema.get("anyOf") or ()):
        check_schema(sub, f"{where}.any_of[{i}]")


def sample(schema: dict[str, Any]) -> Any:
    """A value that fits a Gemini Schema (what a JSON-mode answer holds)."""
    if "anyOf" in schema:
        return sample(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "OBJECT":
        names = schema.get("propertyOrdering") or sorted(schema["properties"])
        return {name: sample(schema["properties"][name]) for name in names}
    if kind == "ARRAY":
        return [sample(schema["items"])] if "items" in schema else []
    if schema.get("enum"):
        return schema["enum"][0]
    return {"STRING": "fake", "NUMBER": 1.5, "INTEGER": 2, "BOOLEAN": True}.get(kind or "", None)


class FakeGemini(FakeUpstream):
    """The Gemini API on 127.0.0.1:<free port>: `root_url` is the deployment's base_url."""

    default: Reply  # type: ignore[assignment]

    def __init__(self, name: str = "gemini", *, api_key: str | None = None) -> None:
        super().__init__(name)
        self.default = Reply()
        self.api_key = api_key or "AIzaFAKE" + os.urandom(16).hex()
        self.models = ["gemini-fake-1", "gemini-embedding-fake"]
        self.signatures: dict[str, str] = {}  # thought signature -> the function it signed
        self.refused: list[tuple[RecordedRequest, str]] = []  # requests answered 4xx, and why

    def script(self, *replies: Reply) -> None:  # type: ignore[override]
        super().script(*replies)  # type: ignore[arg-type]

    def reset(self) -> None:
        super().reset()
        self.signatures.clear()
        self.refused.clear()

    # -- routing ---------------------------------------------------------------------
    def _route(self, rec: RecordedRequest) -> tuple[str, str] | None:
        match = _PATH.match(rec.path)
        return (match["model"], match["method"]) if match else None

    def _authorize(self, rec: RecordedRequest) -> tuple[int, str] | tuple[int, str, str] | None:
        if "key" in parse_qs(rec.query):
            return 400, "the API key went in the query string, where access logs keep it"
        if rec.headers.get("x-goog-api-key") != self.api_key:
            return 400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
        return None

    async def _respond(self, rec: RecordedRequest, send: Send, abort: asyncio.Event) -> None:
        headers = {"content-type": "application/json; charset=UTF-8"}
        special = await self._special(rec, send)
        if special:
            return
        route = self._route(rec) if rec.method == "POST" else None
        if route is None:
            return await self._refuse(rec, send, 404, f"Not found: {rec.method} {rec.path}")
        model, method = route
        denied = self._authorize(rec)
        if denied is not None:
            return await self._refuse(rec, send, *denied)
        if model not in self.models:
            return await self._refuse(rec, send, 404, f"models/{model} is not found for API version v1beta")
        try:
            payload = self._check(rec, model, method)
        except Invalid as exc:
            return await self._refuse(rec, send, 400, str(exc))
        reply, n = self._next_behavior()
        assert isinstance(reply, Reply)
        if reply.delay_s > 0 and not await _pause(abort, reply.delay_s):
            return
        headers.update((k.lower(), v) for k, v in reply.headers.items())
        if reply.body is not None:
            return await self._reply(rec, send, reply.status, reply.body, headers)
        if reply.status != 200:
            body = error_body(reply.status, reply.error_message, reply.retry_delay)
            return await self._reply(rec, send, reply.status, body, headers)
        if method in ("embedContent", "batchEmbedContents", "predict"):
            return await self._reply(rec, send, 200, _dumps(self._embeddings(method, payload)), headers)
        response = self._response(reply, payload, model, n)
        if method == "generateContent":
            return await self._reply(rec, send, 200, _dumps(response), headers)
        await self._stream(rec, send, abort, reply, response)

    async def _special(self, rec: RecordedRequest, send: Send) -> bool:
        return False  # the token endpoint, on Vertex

    async def _refuse(
        self, rec: RecordedRequest, send: Send, status: int, message: str, reason: str | None = None
    ) -> None:
        self.refused.append((rec, message))
        await self._reply(
            rec,
            send,
            status,
            error_body(status, message, reason=reason),
            {"content-type": "application/json"},
        )

    # -- validation ------------------------------------------------------------------
    def _check(self, rec: RecordedRequest, model: str, method: str) -> dict[str, Any]:
        payload = rec.json
        if not isinstance(payload, dict):
            raise Invalid("Invalid JSON payload received.")
        if method == "streamGenerateContent":
            if parse_qs(rec.query).get("alt") != ["sse"]:
                raise Invalid("this fake streams only with alt=sse")
        elif method == "embedContent":
            self._check_embed(payload, "")
            return payload
        elif method == "batchEmbedContents":
            requests = payload.get("requests")
            if set(payload) != {"requests"} or not isinstance(requests, list) or not requests:
                raise Invalid("batchEmbedContents takes a non-empty list of requests")
            for i, request in enumerate(requests):
                if request.get("model") != f"models/{model}":
                    raise Invalid(f"requests[{i}].model: must be the model of the URL, models/{model}")
                self._check_embed({k: v for k, v in request.items() if k != "model"}, f"requests[{i}].")
            return payload
        elif method == "predict":
            return self._check_predict(payload)
        elif method != "generateContent":
            raise Invalid(f"unknown method {method}")
        for name in payload:
            if name not in _REQUEST_FIELDS:
                raise Invalid(f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
        self._check_contents(payload.get("contents"))
        system = payload.get("systemInstruction")
        if system is not None:
            parts = system.get("parts") if isinstance(system, dict) else None
            if set(system) != {"parts"} or not parts or not all(set(p) == {"text"} for p in parts):
                raise Invalid("systemInstruction: must be {parts: [{text}]}")
        for i, tool in enumerate(payload.get("tools") or ()):
            if len(tool) == 1 and set(tool) <= _BUILTIN_TOOLS:  # Google's own: an options object
                if not isinstance(next(iter(tool.values())), dict):
                    raise Invalid(f"tools[{i}]: {next(iter(tool))} takes an object")
                continue
            if set(tool) != {"functionDeclarations"}:
                raise Invalid(f"tools[{i}]: one of functionDeclarations, googleSearch, urlContext")
            for j, declaration in enumerate(tool["functionDeclarations"]):
                if not set(declaration) <= {"name", "description", "parameters"} or "name" not in declaration:
                    raise Invalid(f"tools[{i}].function_declarations[{j}]: unknown field or no name")
                if "parameters" in declaration:
                    check_schema(
                        declaration["parameters"], f"tools[{i}].function_declarations[{j}].parameters"
                    )
        config = payload.get("toolConfig")
        if config is not None:
            calling = (
                config.get("functionCallingConfig") if set(config) == {"functionCallingConfig"} else None
            )
            if not isinstance(calling, dict) or calling.get("mode") not in ("AUTO", "ANY", "NONE"):
                raise Invalid("toolConfig.functionCallingConfig.mode: must be AUTO, ANY or NONE")
        generation = payload.get("generationConfig") or {}
        for name in generation:
            if name not in _CONFIG_FIELDS:
                raise Invalid(
                    f"Invalid JSON payload received. Unknown name \"{name}\" at 'generation_config'."
                )
        try:
            check_logprobs(generation)
        except LogprobsInvalid as exc:
            raise Invalid(str(exc)) from None
        if "responseSchema" in generation:
            if generation.get("responseMimeType") != "application/json":
                raise Invalid("response_schema needs response_mime_type application/json")
            check_schema(generation["responseSchema"], "generation_config.response_schema")
        return payload

    def _check_contents(self, contents: Any) -> None:
        if not isinstance(contents, list) or not contents:
            raise Invalid("* GenerateContentRequest.contents: contents is not specified")
        calls: list[str] = []  # the functions the last model turn called
        for i, content in enumerate(contents):
            if not isinstance(content, dict) or set(content) != {"role", "parts"}:
                raise Invalid(f"contents[{i}]: must be {{role, parts}}")
            if content["role"] not in ("user", "model"):
                raise Invalid(f"contents[{i}].role: must be user or model")
            parts = content["parts"]
            if not isinstance(parts, list) or not parts:
                raise Invalid(
                    f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
                )
            responses = []
            for j, part in enumerate(parts):
                where = f"contents[{i}].parts[{j}]"
                kinds = set(part) & _PART_KINDS
                if len(kinds) != 1 or not set(part) <= _PART_KINDS | {"thoughtSignature", "thought"}:
                    raise Invalid(f"{where}: a part holds exactly one of {sorted(_PART_KINDS)}")
                if "inlineData" in part:
                    data = part["inlineData"]
                    if set(data) != {"mimeType", "data"}:
                        raise Invalid(f"{where}.inline_data: needs mimeType and data")
                    try:
                        base64.b64decode(data["data"], validate=True)
                    except (binascii.Error, ValueError):
                        raise Invalid(f"{where}.inline_data.data: invalid base64") from None
                if "functionCall" in part:
                    call = part["functionCall"]
                    if set(call) != {"name", "args"} or not isinstance(call["args"], dict):
                        raise Invalid(f"{where}.function_call: needs name and args")
                    if content["role"] != "model":
                        raise Invalid(f"{where}: a function call is the model's")
                    signed = [sig for sig, name in self.signatures.items() if name == call["name"]]
                    if signed and part.get("thoughtSignature") not in signed and i == len(contents) - 2:
                        raise Invalid(f"Function call is missing a thought_signature in {where}.")
                if "functionResponse" in part:
                    response = part["functionResponse"]
                    if set(response) != {"name", "response"} or not isinstance(response["response"], dict):
                        raise Invalid(f"{where}.function_response: needs name and response")
                    responses.append(response["name"])
            if responses and sorted(responses) != sorted(calls):
                raise Invalid(
                    "Please ensure that the number of function response parts is equal to the number of "
                    "function call parts of the function call turn."
                )
            calls = [p["functionCall"]["name"] for p in parts if "functionCall" in p]

    def _check_embed(self, request: dict[str, Any], where: str) -> None:
        if not set(request) <= {"content", "outputDimensionality", "taskType", "title"}:
            raise Invalid(f"Invalid JSON payload received. Unknown name at '{where}': Cannot find field.")
        parts = (request.get("content") or {}).get("parts")
        if not parts or not all(set(p) == {"text"} for p in parts):
            raise Invalid(f"{where}content: needs text parts")

    def _check_predict(self, payload: dict[str, Any]) -> dict[str, Any]:
        raise Invalid("predict is Vertex AI's")

    # -- answers ---------------------------------------------------------------------
    def _response(self, reply: Reply, payload: dict[str, Any], model: str, n: int) -> dict[str, Any]:
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = _words(payload.get("contents")) + _words(
                (payload.get("systemInstruction") or {}).get("parts")
            )
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": reply.candidates_tokens,
            "totalTokenCount": prompt + reply.candidates_tokens + reply.thoughts_tokens,
        }
        if reply.cached_tokens:
            usage["cachedContentTokenCount"] = reply.cached_tokens
        if reply.thoughts_tokens:
            usage["thoughtsTokenCount"] = reply.thoughts_tokens
        response: dict[str, Any] = {
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": f"{self.name}-{n}",
        }
        if reply.block_reason is not None:
            response["promptFeedback"] = {"blockReason": reply.block_reason}
            return response
        parts: list[dict[str, Any]] = []
        if reply.thought:
            parts.append({"text": "Thinking about it.", "thought": True})
        generation = payload.get("generationConfig") or {}
        text = reply.text
        if generation.get("responseMimeType") == "application/json":
            schema = generation.get("responseSchema")
            text = json.dumps(sample(schema) if schema else {"answer": "fake"})
        if text:
            parts.append({"text": text})
        for i, (name, args) in enumerate(reply.calls):
            part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
            if i == 0 and reply.signature is not None:
                part["thoughtSignature"] = reply.signature
                self.signatures[reply.signature] = name
            parts.append(part)
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        candidate["finishReason"] = reply.finish_reason
        if any("googleSearch" in tool for tool in payload.get("tools") or ()):  # what it searched
            candidate["groundingMetadata"] = {
                "webSearchQueries": ["fake query"],
                "groundingChunks": [{"web": {"uri": "https://example.com/fake", "title": "example.com"}}],
            }
        response["candidates"] = [candidate]
        count = generation.get("candidateCount", 1)
        if count > 1:  # each further candidate says which it is; Google counts all their tokens
            for i in range(1, count):
                more = [{**p, "text": f"{p['text']} (candidate {i})"} if "text" in p else p for p in parts]
                response["candidates"].append(
                    {**candidate, "content": {"role": "model", "parts": more}, "index": i}
                )
            usage["candidatesTokenCount"] = reply.candidates_tokens * count
            usage["totalTokenCount"] = prompt + reply.candidates_tokens * count + reply.thoughts_tokens
        if generation.get("responseLogprobs"):
            for each in response["candidates"]:
                each["logprobsResult"] = logprobs_result(
                    text_of(each["content"]["parts"]), generation.get("logprobs", 0)
                )
        return response

    def _embeddings(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        def vector(text: str, dimensions: int | None) -> list[float]:
            values = [round(((ord(c) * 7 + i) % 97) / 97, 4) for i, c in enumerate((text * 8)[:8])]
            return values[:dimensions] if dimensions else values

        if method == "embedContent":
            text = payload["content"]["parts"][0]["text"]
            return {"embedding": {"values": vector(text, payload.get("outputDimensionality"))}}
        return {
            "embeddings": [
                {"values": vector(r["content"]["parts"][0]["text"], r.get("outputDimensionality"))}
                for r in payload["requests"]
            ]
        }

    async def _stream(
        self, rec: RecordedRequest, send: Send, abort: asyncio.Event, reply: Reply, response: dict[str, Any]
    ) -> None:
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        await self._emit(
            rec, send, {"type": "http.response.start", "status": 200, "headers": _encode(headers)}
        )
        for i, event in enumerate(stream_events(response, reply.chunks)):
            if i == reply.cut_after:
                rec.finished_at = time.monotonic()
                return  # no final message: hypercorn closes the connection mid-body
            if i == reply.error_after:
                rec.finished_at = time.monotonic()
                error = (
                    b"data: "
                    + error_body(503, "The model is overloaded. Please try again later.")
                    + b"\r\n\r\n"
                )
                await self._emit(rec, send, {"type": "http.response.body", "body": error})
                return
            if i and not await _pause(abort, reply.chunk_delay_s):
                return
            await self._emit(rec, send, {"type": "http.response.body", "body": event, "more_body": True})
        rec.finished_at = time.monotonic()
        await self._emit(rec, send, {"type": "http.response.body", "body": b""})


def stream_events(response: dict[str, Any], chunks: int = 3) -> list[bytes]:
    """A whole response as Gemini streams it with alt=sse: the text in pieces (usage so far
    on each), the function calls whole, and the finish reason on each candidate's last event,
    the final usage on the very last; several candidates' events interleaved; CRLF line ends,
    as Google sends them."""
    head = {k: v for k, v in response.items() if k in ("modelVersion", "responseId")}
    usage = response["usageMetadata"]
    running = {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": usage["promptTokenCount"]}
    if "candidates" not in response:
        return [_event({**response})]
    streams = [_candidate_events(candidate, chunks) for candidate in response["candidates"]]
    order = [event for round_ in itertools.zip_longest(*streams) for event in round_ if event is not None]
    return [
        _event({**head, "candidates": [out], "usageMetadata": usage if i == len(order) - 1 else running})
        for i, out in enumerate(order)
    ]


def _candidate_events(candidate: dict[str, Any], chunks: int) -> list[dict[str, Any]]:
    """One candidate's streamed pieces, its finishReason on the last."""
    parts = candidate["content"]["parts"]
    texts = [p for p in parts if "text" in p and not p.get("thought")]
    calls = [p for p in parts if "functionCall" in p]
    thoughts = [p for p in parts if p.get("thought")]
    pieces = [{"text": piece} for t in texts for piece in _pieces(t["text"], chunks)]
    groups: list[list[dict[str, Any]]] = [thoughts] if thoughts else []
    groups += [[piece] for piece in pieces]
    if calls:
        groups.append(calls)
    events = []
    logprobs = candidate.get("logprobsResult")
    steps = (logprobs or {}).get("topCandidates")
    top = len(steps[0]["candidates"]) if steps else 0  # the alternatives asked for
    for i, group in enumerate(groups or [[{"text": ""}]]):
        out: dict[str, Any] = {
            "content": {"role": "model", "parts": group},
            "index": candidate.get("index", 0),
        }
        if logprobs is not None and text_of(group):  # each piece with its own tokens
            out["logprobsResult"] = logprobs_result(text_of(group), top)
        if i == len(groups or [0]) - 1:
            out["finishReason"] = candidate["finishReason"]
        events.append(out)
    return events


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(data) + b"\r\n\r\n"


@dataclass
class IssuedToken:
    value: str
    expires_at: float  # time.time()
    quota_project: str | None = None  # a user's token: calls must name this project


class FakeVertex(FakeGemini):
    """Gemini on Vertex AI at `/v1/projects/{project}/locations/{location}/publishers/google/
    models/{model}:{method}`, and its token endpoint at `POST /token`."""

    def __init__(
        self,
        name: str = "vertex",
        *,
        project: str = "test-project",
        location: str = "us-central1",
        token_lifetime_s: int = 3600,
    ) -> None:
        super().__init__(name)
        self.project = project
        self.location = location
        self.token_lifetime_s = token_lifetime_s
        self.email = "proxy@test-project.iam.gserviceaccount.com"
        self.key_id = "fake-key-" + os.urandom(4).hex()
        self._key = RSAKey.generate_key(2048)
        self.tokens: dict[str, IssuedToken] = {}
        self.grants: list[dict[str, Any]] = []  # claims of every grant it accepted
        self.grant_delay_s = 0.0
        self._token_lock = threading.Lock()
        # authorized_user clients: client id -> (client secret, refresh token, quota project)
        self.users: dict[str, tuple[str, str, str | None]] = {}

    @property
    def token_uri(self) -> str:
        return self.root_url + "/token"

    def service_account_file(self, directory: Path, *, key: RSAKey | None = None) -> Path:
        """A service-account key file for this fake (another `key` signs wrongly)."""
        path = directory / f"sa-{self.name}.json"
        signing = key or self._key
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": self.project,
                    "private_key_id": self.key_id,
                    "private_key": signing.as_pem(private=True).decode(),
                    "client_email": self.email,
                    "client_id": "1234567890",
                    "token_uri": self.token_uri,
                }
            )
        )
        return path

    def authorized_user_file(self, directory: Path, *, quota_project: str | None = None) -> Path:
        """A user's application-default credentials (`gcloud auth application-default
        login`) this fake's token endpoint honours, with its token_uri pointing here."""
        client_id = f"{os.urandom(6).hex()}.apps.googleusercontent.com"
        secret, refresh = "GOCSPX-" + os.urandom(12).hex(), "1//0" + os.urandom(24).hex()
        self.users[client_id] = (secret, refresh, quota_project)
        info = {
            "type": "authorized_user",
            "client_id": client_id,
            "client_secret": secret,
            "refresh_token": refresh,
            "token_uri": self.token_uri,
        }
        if quota_project is not None:
            info["quota_project_id"] = quota_project
        path = directory / f"adc-{client_id[:12]}.json"
        path.write_text(json.dumps(info))
        return path

    def expire_tokens(self) -> None:
        """Every token issued so far is past its expiry from now on."""
        with self._token_lock:
            for token in self.tokens.values():
                token.expires_at = time.time() - 1

    def reset(self) -> None:
        super().reset()
        self.grants.clear()  # the tokens issued stay valid, as Google's do

    def _route(self, rec: RecordedRequest) -> tuple[str, str] | None:
        match = _VERTEX_PATH.match(rec.path)
        if match is None or (match["project"], match["location"]) != (self.project, self.location):
            return None
        if match["method"] in ("embedContent", "batchEmbedContents"):
            return None  # the Gemini API's; Vertex AI's text-embedding models answer predict
        return match["model"], match["method"]

    def _authorize(self, rec: RecordedRequest) -> tuple[int, str] | None:
        value = rec.headers.get("authorization", "")
        token = self.tokens.get(value.removeprefix("Bearer ")) if value.startswith("Bearer ") else None
        if token is None or token.expires_at <= time.time():
            return 401, (
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential."
            )
        if token.quota_project is not None and rec.headers.get("x-goog-user-project") != token.quota_project:
            return 403, "Your application is authenticating by using local Application Default Credentials."
        return None

    async def _special(self, rec: RecordedRequest, send: Send) -> bool:
        if rec.path != "/token":
            return False
        headers = {"content-type": "application/json"}
        if self.grant_delay_s:
            await asyncio.sleep(self.grant_delay_s)
        try:
            claims = self._check_grant(rec)
        except Invalid as exc:
            self.refused.append((rec, str(exc)))
            body = _dumps({"error": "invalid_grant", "error_description": str(exc)})
            await self._reply(rec, send, 400, body, headers)
            return True
        value = "ya29.fake-" + os.urandom(24).hex()
        quota = self.users[claims["client_id"]][2] if "client_id" in claims else None
        with self._token_lock:
            self.tokens[value] = IssuedToken(value, time.time() + self.token_lifetime_s, quota)
            self.grants.append(claims)
        answer = {"access_token": value, "expires_in": self.token_lifetime_s, "token_type": "Bearer"}
        await self._reply(rec, send, 200, _dumps(answer), headers)
        return True

    def _check_grant(self, rec: RecordedRequest) -> dict[str, Any]:
        if rec.method != "POST" or not rec.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise Invalid("the grant is a form POST")
        form = parse_qs(rec.body.decode())
        if form.get("grant_type") == ["refresh_token"]:
            client = (form.get("client_id") or [""])[0]
            known = self.users.get(client)
            if known is None or [form.get("client_secret"), form.get("refresh_token")] != [
                [known[0]],
                [known[1]],
            ]:
                raise Invalid("Bad Request: the client or refresh token is not valid.")
            return {"client_id": client}
        if form.get("grant_type") != [_GRANT] or len(form.get("assertion", [])) != 1:
            raise Invalid("Invalid grant_type or no assertion.")
        try:
            token = jwt.decode(form["assertion"][0], self._key, algorithms=["RS256"])
        except (JoseError, ValueError):
            raise Invalid("Invalid JWT Signature.") from None
        claims, now = token.claims, time.time()
        if token.header.get("kid") != self.key_id:
            raise Invalid("Invalid JWT: unknown key id.")
        if claims.get("iss") != self.email or claims.get("aud") != self.token_uri:
            raise Invalid("Invalid JWT: iss or aud is not this service account's.")
        if _SCOPE not in str(claims.get("scope", "")).split():
            raise Invalid("Invalid JWT: no cloud-platform scope.")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise Invalid("Invalid JWT: iat and exp are required.")
        if iat > now + 60 or exp <= now or exp - iat > 3600:
            raise Invalid(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
            )
        return claims

    def _check_predict(self, payload: dict[str, Any]) -> dict[str, Any]:
        instances = payload.get("instances")
        if (
            not set(payload) <= {"instances", "parameters"}
            or not isinstance(instances, list)
            or not instances
        ):
            raise Invalid("predict takes a non-empty list of instances")
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict) or not isinstance(instance.get("content"), str):
                raise Invalid(f"instances[{i}]: needs content")
        return payload

    def _embeddings(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method != "predict":
            raise Invalid(f"{method} is the Gemini API's, not Vertex AI's text-embedding one")
        dimensions = (payload.get("parameters") or {}).get("outputDimensionality")
        predictions = []
        for instance in payload["instances"]:
            text = instance["content"]
            values = [round(((ord(c) * 5 + i) % 89) / 89, 4) for i, c in enumerate((text * 8)[:8])]
            statistics = {"token_count": len(text.split()), "truncated": False}
            predictions.append(
                {
                    "embeddings": {
                        "values": values[:dimensions] if dimensions else values,
                        "statistics": statistics,
                    }
                }
            )
        return {"predictions": predictions}


__all__ = ["FakeGemini", "FakeVertex", "Invalid", "Reply", "check_schema", "error_body", "stream_events"]
