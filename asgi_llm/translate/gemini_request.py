"""OpenAI chat and embeddings requests -> Gemini's `generateContent` and `embedContent`
bodies, for `provider: gemini` and `vertex` deployments (one wire format, two hosts).

System messages become `systemInstruction`, assistant turns `model` turns, tool results
`functionResponse` parts (named after the call they answer), and turns of one role are
merged. A field Gemini has no equivalent for is refused by name, unless it holds its
neutral value; fields that cannot change the answer are dropped.
"""

from __future__ import annotations

from typing import Any

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.fields import CHAT_NEUTRAL, check_fields, function_call, invalid, stop_sequences
from asgi_llm.translate.gemini_ids import signature_of
from asgi_llm.translate.gemini_logprobs import logprobs_config
from asgi_llm.translate.gemini_schema import to_gemini_schema

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
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "tools",
        "tool_choice",
        "response_format",
        "reasoning_effort",
        "stream",
        "n",
        "logprobs",
        "top_logprobs",
    }
)
_DROPPED = frozenset(
    {
        "stream_options",
        "store",
        "metadata",
        "service_tier",
        "prompt_cache_key",
        "user",
        "safety_identifier",
    }
)
_NEUTRAL: dict[str, tuple[Any, ...]] = {**CHAT_NEUTRAL, "parallel_tool_calls": (None, True)}
# What Google's own OpenAI-compatible endpoint gives each effort, as a thinking budget.
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
MAX_CANDIDATES = 8  # Gemini's candidateCount
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}


def unsupported(param: str, detail: str = "") -> InvalidRequest:
    return InvalidRequest(
        f"'{param}'{detail} has no equivalent in Gemini's API, so it is refused rather than dropped.",
        param=param,
        code="unsupported_parameter",
    )


def chat_to_gemini(payload: dict[str, Any]) -> dict[str, Any]:
    """The `generateContent` body for a validated chat request (the model goes in the URL)."""
    check_fields(payload, _CARRIED, _DROPPED, _NEUTRAL, unsupported)
    system, contents = _contents(payload["messages"])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = payload.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise invalid("tools", "must be an array", "invalid_type")
        out["tools"] = [
            {"functionDeclarations": [_declaration(t, f"tools[{i}]") for i, t in enumerate(tools)]}
        ]
    choice = payload.get("tool_choice")
    if choice is not None and tools:
        out["toolConfig"] = {"functionCallingConfig": _tool_choice(choice)}
    config = _generation_config(payload)
    if config:
        out["generationConfig"] = config
    return out


def _generation_config(payload: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    n = payload.get("n")
    if n is not None and n != 1:
        if type(n) is not int or not 1 <= n <= MAX_CANDIDATES:
            raise invalid("n", f"must be at most {MAX_CANDIDATES} for Gemini (its candidateCount)")
        config["candidateCount"] = n
    limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    for name, gemini in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if payload.get(name) is not None:
            config[gemini] = payload[name]
    stop = stop_sequences(payload)
    if stop is not None:
        config["stopSequences"] = stop
    config.update(_response_format(payload.get("response_format")))
    config.update(logprobs_config(payload))
    effort = payload.get("reasoning_effort")
    if effort is not None:
        if effort not in THINKING_BUDGETS:
            raise invalid("reasoning_effort", f"must be one of {', '.join(THINKING_BUDGETS)}")
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    return config


def _response_format(value: Any) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, dict) else None
    if value is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or "schema" not in spec:
            raise invalid("response_format.json_schema.schema", "is required", "missing_required_parameter")
        schema = to_gemini_schema(spec["schema"], "response_format.json_schema.schema", ordered=True)
        return {"responseMimeType": "application/json", "responseSchema": schema}
    raise invalid("response_format.type", "must be text, json_object or json_schema")


def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the results that follow
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role, content = message["role"], message.get("content")
        if role in ("system", "developer"):
            system.extend({"text": text} for text in _texts(content, f"{where}.content"))
            continue
        if role == "user":
            parts = _user_parts(content, f"{where}.content")
            side = "user"
        elif role == "assistant":
            parts = _model_parts(message, where, names)
            if not parts:  # an empty turn: Gemini refuses empty parts and empty text alike
                continue
            side = "model"
        elif role == "tool":
            parts = [_function_response(message, where, names)]
            side = "user"
        else:
            raise invalid(f"{where}.role", "must be system, developer, user, assistant or tool")
        if contents and contents[-1]["role"] == side:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": side, "parts": parts})
    return system, contents


def _texts(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise invalid(where, "must be a string or an array of text parts", "invalid_type")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise invalid(f"{where}[{j}]", "must be a text part here", "invalid_type")
        texts.append(part["text"])
    return texts


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise invalid(where, "must be a string or an array of content parts", "invalid_type")
    return [_part(part, f"{where}[{j}]") for j, part in enumerate(content)]


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"text": part["text"]}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return _inline(url, f"{where}.image_url.url")
    if kind == "input_audio":
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        mime = _AUDIO_TYPES.get(str(audio.get("format"))) if isinstance(audio, dict) else None
        if not isinstance(data, str) or mime is None:
            raise invalid(f"{where}.input_audio", "must hold base64 data and a format of wav or mp3")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, dict) else None
        if not isinstance(data, str):
            raise unsupported(f"{where}.file", " (only file_data, a base64 data: URL, is sent inline)")
        return _inline(data, f"{where}.file.file_data")
    if isinstance(kind, str) and kind != "text":
        raise unsupported(f"{where}.type", f" (content parts of type {kind[:40]!r})")
    raise invalid(where, "must be a text, image_url, input_audio or file part", "invalid_type")


def _inline(url: Any, where: str) -> dict[str, Any]:
    """A base64 `data:` URL as inline data. A remote URL is refused: Gemini reads inline data
    (or its own file store), and the proxy does not fetch URLs for its clients."""
    if not isinstance(url, str):
        raise invalid(where, "must be a string", "invalid_type")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if comma and encoding == "base64" and mime:
            return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("http://", "https://")):
        raise InvalidRequest(
            f"'{where}' is a URL: Gemini deployments take images inline, as a base64 data: URL "
            "(the proxy does not fetch URLs).",
            param=where,
            code="unsupported_image_url",
        )
    raise invalid(where, "must be a base64 data: URL")


def _model_parts(message: dict[str, Any], where: str, names: dict[str, str]) -> list[dict[str, Any]]:
    for legacy in ("function_call", "audio"):
        if message.get(legacy) is not None:
            raise unsupported(f"{where}.{legacy}")
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            text = part.get("refusal" if kind == "refusal" else "text") if kind else None
            if kind not in ("text", "refusal") or not isinstance(text, str):
                raise invalid(f"{where}.content[{j}]", "must be a text part", "invalid_type")
            parts.append({"text": text})
    elif content is not None:
        raise invalid(f"{where}.content", "must be a string, an array or null", "invalid_type")
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise invalid(f"{where}.tool_calls", "must be an array", "invalid_type")
        parts.extend(_function_call(call, f"{where}.tool_calls[{j}]", names) for j, call in enumerate(calls))
    return parts


def _function_call(call: Any, where: str, names: dict[str, str]) -> dict[str, Any]:
    call_id, name, arguments = function_call(call, where, "Gemini")
    names[call_id] = name
    part: dict[str, Any] = {"functionCall": {"name": name, "args": arguments}}
    signature = signature_of(call_id)
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _function_response(message: dict[str, Any], where: str, names: dict[str, str]) -> dict[str, Any]:
    ident = message.get("tool_call_id")
    if not isinstance(ident, str) or not ident:
        raise invalid(f"{where}.tool_call_id", "is required for a tool message", "invalid_type")
    name = names.get(ident)
    if name is None:  # Gemini answers a call by its function's name, which only the call has
        raise invalid(f"{where}.tool_call_id", "names no tool call of an earlier assistant message")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(_texts(content, f"{where}.content"))
    elif content is None:
        content = ""
    elif not isinstance(content, str):
        raise invalid(f"{where}.content", "must be a string or an array of text parts", "invalid_type")
    return {"functionResponse": {"name": name, "response": {"output": content}}}


def _declaration(tool: Any, where: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise invalid(where, "must be a function tool with a name", "invalid_type")
    if tool.get("type", "function") != "function":
        raise unsupported(f"{where}.type", f" (tools of type {str(tool.get('type'))[:40]!r})")
    out: dict[str, Any] = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    parameters = function.get("parameters")
    # A function without arguments has no `parameters`: Gemini refuses an object schema
    # without properties.
    if isinstance(parameters, dict) and parameters.get("properties"):
        out["parameters"] = to_gemini_schema(parameters, f"{where}.function.parameters")
    elif parameters is not None and not isinstance(parameters, dict):
        raise invalid(f"{where}.function.parameters", "must be a JSON Schema object", "invalid_type")
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if isinstance(name, str):
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise invalid("tool_choice", "must be auto, none, required or a named function")


__all__ = ["THINKING_BUDGETS", "chat_to_gemini", "invalid", "unsupported"]
