"""OpenAI chat requests -> Bedrock Converse requests, and Converse answers back, as pure functions.

For `provider: bedrock` (providers/bedrock.py signs and sends them). System messages become
`system` blocks, tool results user turns of `toolResult` blocks, consecutive turns of one role
are merged (Converse wants them alternating), images travel as bytes (base64 in JSON), and
what Converse has no place for is refused by name. The model id is in the URL, not the body.
"""

from __future__ import annotations

import binascii
from typing import Any

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.bedrock_cache import NONE, CachePoints, append_point
from asgi_llm.translate.bedrock_json import json_tool_config
from asgi_llm.translate.fields import CHAT_NEUTRAL, check_fields, function_call, invalid, stop_sequences

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}

_CARRIED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "tools",
        "tool_choice",
        "stream",
        "response_format",
    }
)
# No effect on the answer (or no Converse equivalent that could change it).
_DROPPED = frozenset(
    {
        "stream_options",
        "store",
        "metadata",
        "service_tier",
        "prompt_cache_key",
        "user",
        "safety_identifier",
        "parallel_tool_calls",
    }
)
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    **CHAT_NEUTRAL,
    "seed": (None,),
    "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0),
    "reasoning_effort": (None,),
}


def unsupported(param: str, detail: str = "") -> InvalidRequest:
    return InvalidRequest(
        f"'{param}'{detail} has no equivalent in Bedrock's Converse API, so it is refused "
        "rather than dropped.",
        param=param,
        code="unsupported_parameter",
    )


def chat_to_converse(payload: dict[str, Any], points: CachePoints = NONE) -> dict[str, Any]:
    """The Converse (or ConverseStream) body for a validated chat request; `cache_control`
    marks become cache points where `points` says the model takes them (bedrock_cache.py)."""
    check_fields(payload, _CARRIED, _DROPPED, _NEUTRAL, unsupported)
    system, turns = _turns(payload["messages"], points.messages)
    out: dict[str, Any] = {"messages": turns}
    if system:
        out["system"] = system
    config: dict[str, Any] = {}
    max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    for name, key in (("temperature", "temperature"), ("top_p", "topP")):
        if payload.get(name) is not None:
            config[key] = payload[name]
    stop = stop_sequences(payload)
    if stop is not None:
        config["stopSequences"] = stop
    if config:
        out["inferenceConfig"] = config
    if payload.get("top_k") is not None:  # not in inferenceConfig: the model's own field
        out["additionalModelRequestFields"] = {"top_k": payload["top_k"]}
    tool_config = json_tool_config(payload, unsupported) or _tool_config(
        payload.get("tools"), payload.get("tool_choice"), turns, points.tools
    )
    if tool_config is not None:
        out["toolConfig"] = tool_config
    return out


def _turns(messages: list[Any], cached: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role, content = message["role"], message.get("content")
        if role in ("system", "developer"):
            blocks = _text_blocks(content, f"{where}.content", cached)
            append_point(blocks, message, where, cached)
            system.extend(blocks)
            continue
        if role == "user":
            blocks = _user_blocks(content, f"{where}.content", cached)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where, cached)
        elif role == "tool":
            blocks = [_tool_result(message, where)]
            # A toolResult's content takes no cache point: a marked part's goes after it.
            for j, part in enumerate(content if isinstance(content, list) else ()):
                append_point(blocks, part, f"{where}.content[{j}]", cached)
        else:
            raise invalid(f"{where}.role", "must be system, developer, user, assistant or tool")
        append_point(blocks, message, where, cached)
        side = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == side:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": side, "content": blocks})
    return system, turns


def _text_blocks(content: Any, where: str, cached: bool) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise invalid(where, "must be a string or an array of text parts", "invalid_type")
    blocks = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise invalid(f"{where}[{j}]", "must be a text part here", "invalid_type")
        blocks.append({"text": part["text"]})
        append_point(blocks, part, f"{where}[{j}]", cached)
    return blocks


def _user_blocks(content: Any, where: str, cached: bool) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise invalid(where, "must be a string or an array of content parts", "invalid_type")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        blocks.append(_part(part, f"{where}[{j}]"))
        append_point(blocks, part, f"{where}[{j}]", cached)
    return blocks


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"text": part["text"]}
    if kind == "image_url":
        return _image(part.get("image_url"), f"{where}.image_url")
    if isinstance(kind, str) and kind != "text":
        raise unsupported(f"{where}.type", f" (content parts of type {kind[:40]!r})")
    raise invalid(where, "must be a text or image_url part", "invalid_type")


def _image(image: Any, where: str) -> dict[str, Any]:
    """A base64 data: URL as image bytes (base64 in Converse's JSON), an s3:// URL as an S3
    location. Bedrock fetches no http(s) URL, and neither does the proxy for it."""
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise invalid(f"{where}.url", "must be a string", "invalid_type")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        image_format = _IMAGE_FORMATS.get(media_type.lower())
        if not comma or encoding != "base64" or image_format is None:
            raise invalid(f"{where}.url", "must be a base64 data: URL of a png, jpeg, gif or webp image")
        try:
            binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error:
            raise invalid(f"{where}.url", "holds data that is not valid base64") from None
        return {"image": {"format": image_format, "source": {"bytes": data}}}
    if url.startswith("s3://"):
        extension = url.rsplit(".", 1)[-1].lower()
        image_format = _IMAGE_FORMATS.get(f"image/{extension}")
        if image_format is None:
            raise invalid(f"{where}.url", "must end in .png, .jpeg, .jpg, .gif or .webp")
        return {"image": {"format": image_format, "source": {"s3Location": {"uri": url}}}}
    raise invalid(f"{where}.url", "must be a base64 data: URL or an s3:// URL (Bedrock fetches no http URL)")


def _assistant_blocks(message: dict[str, Any], where: str, cached: bool) -> list[dict[str, Any]]:
    for legacy in ("function_call", "audio"):
        if message.get(legacy) is not None:
            raise unsupported(f"{where}.{legacy}")
    content, calls = message.get("content"), message.get("tool_calls")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:  # Converse refuses a blank text block
            blocks.append({"text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            text = part.get("refusal" if kind == "refusal" else "text") if kind else None
            if kind not in ("text", "refusal") or not isinstance(text, str):
                raise invalid(f"{where}.content[{j}]", "must be a text part", "invalid_type")
            if text:
                blocks.append({"text": text})
                append_point(blocks, part, f"{where}.content[{j}]", cached)
    elif content is not None:
        raise invalid(f"{where}.content", "must be a string, an array or null", "invalid_type")
    if calls is not None:
        if not isinstance(calls, list):
            raise invalid(f"{where}.tool_calls", "must be an array", "invalid_type")
        blocks.extend(_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls))
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    call_id, name, arguments = function_call(call, where, "Bedrock")
    return {"toolUse": {"toolUseId": call_id, "name": name, "input": arguments}}


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    ident = message.get("tool_call_id")
    if not isinstance(ident, str) or not ident:
        raise invalid(f"{where}.tool_call_id", "is required for a tool message", "invalid_type")
    content = message.get("content")
    if isinstance(content, str):
        blocks = [{"text": content}]
    elif isinstance(content, list):
        blocks = [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    elif content is None:
        blocks = []
    else:
        raise invalid(f"{where}.content", "must be a string or an array", "invalid_type")
    return {"toolResult": {"toolUseId": ident, "content": blocks}}


def _tool_config(tools: Any, choice: Any, turns: list[dict[str, Any]], cached: bool) -> dict[str, Any] | None:
    if not tools:
        if choice not in (None, "none", "auto"):
            raise invalid("tool_choice", "needs tools", "invalid_value")
        return None
    if not isinstance(tools, list):
        raise invalid("tools", "must be an array", "invalid_type")
    specs: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        specs.append({"toolSpec": _tool(tool, f"tools[{i}]")})
        append_point(specs, tool, f"tools[{i}]", cached)
    config: dict[str, Any] = {"tools": specs}
    if choice is None or choice == "auto":
        pass
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "none":
        # Converse cannot forbid tools; without them the model cannot call one. A history
        # with tool blocks needs toolConfig, though, so there 'none' cannot be honoured.
        if any("toolUse" in block or "toolResult" in block for turn in turns for block in turn["content"]):
            raise unsupported("tool_choice", " ('none' with tool calls in the conversation)")
        return None
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    else:
        raise invalid("tool_choice", "must be auto, none, required or a named function")
    return config


def _tool(tool: Any, where: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise invalid(where, "must be a function tool with a name", "invalid_type")
    if tool.get("type", "function") != "function":
        raise unsupported(f"{where}.type", f" (tools of type {str(tool.get('type'))[:40]!r})")
    spec: dict[str, Any] = {"name": function["name"]}
    if isinstance(function.get("description"), str) and function["description"]:
        spec["description"] = function["description"]
    parameters = function.get("parameters")
    spec["inputSchema"] = {"json": parameters if isinstance(parameters, dict) else _EMPTY_SCHEMA}
    return spec


__all__ = ["chat_to_converse", "unsupported"]
