"""Read, parse and check an LLM request once: body cap, JSON limits, fields and needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from asgi_llm.errors import BodyTooLarge, InvalidRequest, ProxyError, UnsupportedMediaType
from asgi_llm.types import Receive, Scope

# route path -> (endpoint name, method). Inference endpoints carry a JSON request that is
# parsed and checked; the others are listings and the admin API.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "/v1/chat/completions": ("chat", "POST"),
    "/v1/completions": ("completions", "POST"),
    "/v1/embeddings": ("embeddings", "POST"),
    "/v1/models": ("models", "GET"),
    "/v1/messages": ("messages", "POST"),  # Anthropic's format, translated at the exchange
    "/v1/messages/count_tokens": ("messages.count_tokens", "POST"),
    "/v1/responses": ("responses", "POST"),  # OpenAI's Responses API
    "/admin/config": ("admin.config", "GET"),
    "/admin/config/reload": ("admin.config.reload", "POST"),
    "/admin/cache": ("admin.cache", "DELETE"),
    "/admin/usage": ("admin.usage", "GET"),
    "/admin/requests": ("admin.requests", "GET"),  # the ledger's request log
    "/admin/stats": ("admin.stats", "GET"),
    "/admin/deployments": ("admin.deployments", "GET"),
    "/admin/keys": ("admin.keys", "POST"),
    "/admin/keys/revoke": ("admin.keys.revoke", "POST"),
}
INFERENCE = frozenset({"chat", "completions", "embeddings"})
# What the router sends to a deployment: inference, and Anthropic's token counting (which
# generates nothing, so limits and the cache leave it alone).
ROUTED = INFERENCE | {"count_tokens"}
MAX_DEPTH = 64
MAX_MESSAGES = 10_000
MAX_TOOLS = 512
MAX_N = 128
MAX_INPUTS = 4096
MAX_TOKENS = 10_000_000

# Fields that would redirect the call or smuggle credentials: refused wherever they appear
# outside the message/tool payloads (LiteLLM CVE-2024-6587).
FORBIDDEN_FIELDS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "azure_endpoint",
        "azure_ad_token",
        "custom_llm_provider",
        "deployment_id",
        "fallbacks",
        "organization",
        "api_type",
        "aws_secret_access_key",
        "aws_access_key_id",
        "vertex_credentials",
        "litellm_params",
        "mock_response",
    }
)
_PAYLOAD_FIELDS = frozenset(
    {"messages", "tools", "functions", "response_format", "prompt", "input", "tool_choice", "logit_bias"}
)


class ClientDisconnected(Exception):
    """The client went away while we were still reading its request."""


class ParseError(InvalidRequest):
    pass


def route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :]
    return path


class Route(NamedTuple):
    """What a request path names: the endpoint, its method, and the `{id}` in the path
    (`GET /v1/models/{id}`), if any."""

    name: str
    method: str
    target: str | None = None


_ROUTES = {path: Route(name, method) for path, (name, method) in ENDPOINTS.items()}
_MODEL_PATH = "/v1/models/"


def match_endpoint(scope: Scope, prefix: str = "") -> Route | None:
    """The endpoint a request is for, or None. With a `prefix` (`server.path_prefix`), only
    paths under it are ours: `<prefix>/v1/chat/completions`; everything else passes through.

    Every `/v1/...` route also answers without `/v1` (`/chat/completions`), as OpenAI-compatible
    servers do for clients whose base URL has no `/v1`; the admin routes have no such twin.
    """
    path = route_path(scope)
    if prefix:
        if not path.startswith(prefix) or path[len(prefix) : len(prefix) + 1] != "/":
            return None
        path = path[len(prefix) :]
    route = _ROUTES.get(path)
    if route is not None:
        if route.method == scope["method"] or not path.startswith("/admin/"):
            return route
        return _admin_route(path, scope["method"]) or route
    if not path.startswith("/v1/"):
        if path.startswith("/admin"):
            if path.startswith(_LEDGER_REQUEST_PATH) and len(path) > len(_LEDGER_REQUEST_PATH):
                return Route("admin.requests.get", "GET", path[len(_LEDGER_REQUEST_PATH) :])
            return _admin_route(path, scope["method"])
        path = "/v1" + path
        route = _ROUTES.get(path)
        if route is not None:
            return route
    if path.startswith(_MODEL_PATH) and len(path) > len(_MODEL_PATH):
        # A model name may hold slashes (`meta-llama/Llama-3`): everything after the prefix.
        return Route("models", "GET", path[len(_MODEL_PATH) :])
    if path.startswith(_RESPONSE_PATH):
        return _response_route(path[len(_RESPONSE_PATH) :], scope["method"])
    return None


_RESPONSE_PATH = "/v1/responses/"
_LEDGER_REQUEST_PATH = "/admin/requests/"  # GET /admin/requests/{request_id}


def _response_route(rest: str, method: str) -> Route | None:
    """`/v1/responses/{id}` (GET, DELETE), `.../{id}/input_items` (GET), `.../{id}/cancel`
    (POST). A response id never holds a slash."""
    response_id, _, action = rest.partition("/")
    if not response_id:
        return None
    if not action:
        if method == "DELETE":
            return Route("responses.delete", "DELETE", response_id)
        return Route("responses.get", "GET", response_id)
    if action == "input_items":
        return Route("responses.input_items", "GET", response_id)
    if action == "cancel":
        return Route("responses.cancel", "POST", response_id)
    return None


# Admin routes whose method picks the action (the path alone is in ENDPOINTS for one method),
# and those that name a team or a key in the path (docs/teams.md).
ADMIN_METHODS: dict[tuple[str, str], str] = {
    ("/admin/keys", "GET"): "admin.keys.list",
    ("/admin/teams", "GET"): "admin.teams.list",
    ("/admin/teams", "POST"): "admin.teams.create",
}
_TEAM_PATH, _KEY_PATH = "/admin/teams/", "/admin/keys/"
_TEAM_ACTIONS = {"GET": "admin.teams.get", "PATCH": "admin.teams.update", "DELETE": "admin.teams.delete"}


def _admin_route(path: str, method: str) -> Route | None:
    """`/admin/teams` (GET, POST), `/admin/teams/{id}` (GET, PATCH, DELETE), `GET /admin/keys`,
    `PATCH`/`DELETE /admin/keys/{id}`, `POST /admin/keys/{id}/rotate`. A team id never holds a slash;
    a key id may (the rotate route is matched by its end)."""
    name = ADMIN_METHODS.get((path, method))
    if name is not None:
        return Route(name, method)
    if path.startswith(_TEAM_PATH):
        team = path[len(_TEAM_PATH) :]
        if not team or "/" in team:
            return None
        if method not in _TEAM_ACTIONS:
            method = "GET"  # any other method: 405, allow GET
        return Route(_TEAM_ACTIONS[method], method, team)
    if path.startswith(_KEY_PATH) and len(path) > len(_KEY_PATH):
        key = path[len(_KEY_PATH) :]
        if key.endswith("/rotate") and len(key) > len("/rotate"):
            return Route("admin.keys.rotate", "POST", key.removesuffix("/rotate"))
        if method == "PATCH":
            return Route("admin.keys.update", "PATCH", key)
        return Route("admin.keys.delete", "DELETE", key)
    if path == "/admin/teams":
        return Route("admin.teams.list", "GET")  # any other method: 405, allow GET
    return None


def grant_for(endpoint: str) -> str:
    """The role grant a route needs: `responses.get` needs `responses`, `/v1/messages` and
    its `count_tokens` need `chat` (a chat request in Anthropic's form); admin routes need
    `admin: true`."""
    if endpoint.startswith("admin"):
        return endpoint
    name = endpoint.partition(".")[0]
    return "chat" if name == "messages" else name


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def header_values(scope: Scope, name: bytes) -> list[bytes]:
    """Every value of a header the client sent more than once (or once)."""
    return [value for key, value in scope["headers"] if key == name]


async def read_body(scope: Scope, receive: Receive, cap: int) -> bytes:
    length = header(scope, b"content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise InvalidRequest("Invalid content-length header.", code="invalid_request") from None
        if declared > cap:
            raise BodyTooLarge(f"Request body exceeds {cap} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > cap:
                raise BodyTooLarge(f"Request body exceeds {cap} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_content_type(scope: Scope) -> None:
    # A coded body (gzip, br, ...) is never decoded (no decompression bomb) and never read as
    # if it were plain: a filter in front that decodes it would judge other bytes than we do.
    for key, value in scope["headers"]:
        if key == b"content-encoding" and any(
            coding.strip().lower() not in (b"", b"identity") for coding in value.split(b",")
        ):
            raise UnsupportedMediaType("Content-Encoding is not supported; send the body uncompressed.")
    value = header(scope, b"content-type")
    if value is None:
        return
    media = value.split(b";", 1)[0].strip().lower()
    if media != b"application/json" and not media.endswith(b"+json"):
        raise UnsupportedMediaType("Content-Type must be application/json.")


def parse_json(body: bytes) -> dict[str, Any]:
    if not body:
        raise ParseError("The request body is empty; a JSON object is required.", code="invalid_json")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).split(":", 1)[0]
        if "depth" in reason or "recursion" in reason:
            raise ParseError("The JSON body is nested too deeply.", code="json_too_deep") from None
        if "UTF-8" in reason or "surrogate" in reason:
            raise ParseError("The body is not valid UTF-8 JSON.", code="invalid_utf8") from None
        raise ParseError(f"The body is not valid JSON ({reason}).", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ParseError("The JSON body must be an object.", code="invalid_json")
    if _depth_exceeds(payload, MAX_DEPTH):
        raise ParseError("The JSON body is nested too deeply.", code="json_too_deep")
    return payload


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _find_forbidden(payload: dict[str, Any]) -> str | None:
    stack: list[tuple[dict[str, Any] | list[Any], str]] = [(payload, "")]
    while stack:
        item, where = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, value in pairs:
            if isinstance(key, str):
                if key in FORBIDDEN_FIELDS:
                    return f"{where}{key}"
                if not where and key in _PAYLOAD_FIELDS:
                    continue
            if isinstance(value, (dict, list)):
                stack.append((value, f"{where}{key}."))
    return None


def check_forbidden(payload: dict[str, Any]) -> None:
    """400 for a field that would redirect the call or smuggle credentials."""
    forbidden = _find_forbidden(payload)
    if forbidden is not None:
        raise InvalidRequest(
            f"The field '{forbidden}' is not accepted: upstreams are chosen by the proxy.",
            param=forbidden,
            code="unsupported_parameter",
        )


def _int_field(payload: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise InvalidRequest(f"'{name}' must be an integer.", param=name, code="invalid_type")
    if not low <= value <= high:
        raise InvalidRequest(
            f"'{name}' must be between {low} and {high}.",
            param=name,
            code="param_too_large" if value > high else "invalid_value",
        )
    return value


def _text_length(content: Any) -> tuple[int, bool]:
    """Characters of text in a message content, and whether it carries an image."""
    if isinstance(content, str):
        return len(content), False
    if isinstance(content, list):
        total, image = 0, False
        for part in content:
            if isinstance(part, dict):
                kind = part.get("type")
                if kind == "text" and isinstance(part.get("text"), str):
                    total += len(part["text"])
                elif kind in ("image_url", "image", "input_image"):
                    image = True
        return total, image
    return 0, False


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What every layer relies on, checked once: the model as the client named it, streaming,
    the usage chunk asked for, the capabilities needed, and a prompt-token estimate."""

    model: str
    stream: bool
    include_usage: bool
    needs: frozenset[str]
    prompt_tokens_estimate: int


def validate(endpoint: str, payload: dict[str, Any]) -> ParsedRequest:
    """Check the fields every layer relies on (400 naming the field otherwise)."""
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest(
            "'model' is required and must be a non-empty string.",
            param="model",
            code="missing_model" if model is None else "invalid_type",
        )
    if len(model) > 256:
        raise InvalidRequest("'model' is too long.", param="model", code="param_too_large")
    check_forbidden(payload)
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    if type(stream) is not bool:
        raise InvalidRequest("'stream' must be a boolean.", param="stream", code="invalid_type")
    include_usage = False
    options = payload.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise InvalidRequest(
                "'stream_options' must be an object.", param="stream_options", code="invalid_type"
            )
        include_usage = options.get("include_usage") is True
    _int_field(payload, "n", 1, MAX_N)
    _int_field(payload, "max_tokens", 1, MAX_TOKENS)
    _int_field(payload, "max_completion_tokens", 1, MAX_TOKENS)
    needs: set[str] = set()
    chars = 0
    if endpoint in ("chat", "count_tokens"):
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest(
                "'messages' must be a non-empty array.",
                param="messages",
                code="missing_messages" if messages is None else "invalid_type",
            )
        if len(messages) > MAX_MESSAGES:
            raise InvalidRequest(
                f"At most {MAX_MESSAGES} messages are accepted.", param="messages", code="too_many_messages"
            )
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise InvalidRequest(
                    f"messages[{index}] must be an object with a 'role'.",
                    param=f"messages[{index}]",
                    code="invalid_type",
                )
            length, image = _text_length(message.get("content"))
            chars += length
            if image:
                needs.add("vision")
        tools = payload.get("tools")
        if tools is not None:
            if not isinstance(tools, list):
                raise InvalidRequest("'tools' must be an array.", param="tools", code="invalid_type")
            if len(tools) > MAX_TOOLS:
                raise InvalidRequest(
                    f"At most {MAX_TOOLS} tools are accepted.", param="tools", code="param_too_large"
                )
            if tools:
                needs.add("tools")
        response_format = payload.get("response_format")
        if isinstance(response_format, dict) and str(response_format.get("type", "")).startswith("json"):
            needs.add("json_mode")
    elif endpoint == "completions":
        prompt = payload.get("prompt")
        if isinstance(prompt, str):
            chars = len(prompt)
        elif isinstance(prompt, list) and prompt and len(prompt) <= MAX_INPUTS:
            chars = sum(len(p) for p in prompt if isinstance(p, str))
        else:
            raise InvalidRequest(
                "'prompt' must be a string or a non-empty array.", param="prompt", code="invalid_type"
            )
    elif endpoint == "embeddings":
        if stream:
            raise InvalidRequest("Embeddings cannot be streamed.", param="stream", code="invalid_value")
        if payload.get("encoding_format") not in (None, "float", "base64"):
            raise InvalidRequest(
                "'encoding_format' must be 'float' or 'base64'.",
                param="encoding_format",
                code="invalid_value",
            )
        given = payload.get("input")
        if isinstance(given, str):
            chars = len(given)
        elif isinstance(given, list) and given and len(given) <= MAX_INPUTS:
            chars = sum(len(p) for p in given if isinstance(p, str))
        else:
            raise InvalidRequest(
                f"'input' must be a string or an array of 1 to {MAX_INPUTS} items.",
                param="input",
                code="invalid_type",
            )
    return ParsedRequest(model, stream, include_usage, frozenset(needs), chars // 4 + 1)


__all__ = [
    "ADMIN_METHODS",
    "ENDPOINTS",
    "INFERENCE",
    "ROUTED",
    "ClientDisconnected",
    "ParsedRequest",
    "ProxyError",
    "Route",
    "check_content_type",
    "check_forbidden",
    "grant_for",
    "header_values",
    "match_endpoint",
    "parse_json",
    "read_body",
    "route_path",
    "validate",
]
