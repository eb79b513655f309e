"""OpenAI chat requests -> Anthropic Messages requests, for `provider: anthropic` deployments.

System messages are hoisted, tool results become user turns, turns of one role are merged
(Anthropic wants them alternating), and what has no equivalent is refused by name.
"""

from __future__ import annotations

from typing import Any

from asgi_llm.translate.fields import (
    CHAT_NEUTRAL,
    check_fields,
    function_call,
    invalid,
    stop_sequences,
    unsupported,
)
from asgi_llm.translate.response import thinking_entry

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI clients often omit it
# reasoning_effort -> thinking.budget_tokens (inbound._EFFORT_FLOORS maps back into these).
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}
MIN_THINKING_BUDGET = 1024  # Anthropic's smallest budget_tokens
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

# OpenAI chat fields: carried over, dropped (no effect on the answer), or refused unless
# they hold their neutral value.
_CHAT_CARRIED = frozenset(
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
        "parallel_tool_calls",
        "stream",
        "user",
        "safety_identifier",
        "reasoning_effort",
    }
)
_CHAT_DROPPED = frozenset({"stream_options", "store", "metadata", "service_tier", "prompt_cache_key"})
_CHAT_NEUTRAL: dict[str, tuple[Any, ...]] = {
    **CHAT_NEUTRAL,
    "seed": (None,),
    "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0),
    "response_format": (None, {"type": "text"}),
}


def chat_to_messages(payload: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The Anthropic request for a validated chat request; the model is the deployment's."""
    check_fields(payload, _CHAT_CARRIED, _CHAT_DROPPED, _CHAT_NEUTRAL)
    system, turns = _turns(payload["messages"])
    out: dict[str, Any] = {"model": model, "messages": turns}
    if system is not None:
        out["system"] = system
    cap = payload.get("max_completion_tokens") or payload.get("max_tokens")
    out["max_tokens"] = cap or DEFAULT_MAX_TOKENS
    budget = _thinking_budget(payload.get("reasoning_effort"), cap)
    if budget is not None:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if not cap:  # room for the answer beyond the thinking, as OpenAI's cap counts both
            out["max_tokens"] = DEFAULT_MAX_TOKENS + budget
    for name in ("temperature", "top_p", "top_k"):
        if payload.get(name) is not None:
            out[name] = payload[name]
    stop = stop_sequences(payload)
    if stop is not None:
        out["stop_sequences"] = stop
    tools = payload.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise invalid("tools", "must be an array", "invalid_type")
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
        choice = _tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if payload.get("stream") is True:
        out["stream"] = True
    user = payload.get("user") or payload.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    return out


def _thinking_budget(effort: Any, cap: Any) -> int | None:
    """Anthropic's thinking budget for an OpenAI reasoning_effort (None: no thinking). Like
    OpenAI's max_completion_tokens, Anthropic's max_tokens counts the thinking too, so the
    budget stays below the client's cap."""
    if effort is None or effort == "none":
        return None
    budget = EFFORT_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise invalid("reasoning_effort", f"must be one of none, {', '.join(EFFORT_BUDGETS)}")
    if type(cap) is int:
        budget = min(budget, cap - 1)
        if budget < MIN_THINKING_BUDGET:
            raise invalid(
                "reasoning_effort",
                f"needs max_completion_tokens above {MIN_THINKING_BUDGET} here "
                "(Anthropic's smallest thinking budget, which the cap must exceed)",
            )
    return budget


def _turns(messages: list[Any]) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """System prompt and alternating turns: every system message is hoisted, tool results
    become user turns, and consecutive turns of one role are merged."""
    system: list[dict[str, Any]] = []
    system_messages = 0
    plain_system: str | None = None
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role, content = message["role"], message.get("content")
        if role in ("system", "developer"):
            system_messages += 1
            plain_system = content if isinstance(content, str) else None
            system.extend(_text_blocks(content, f"{where}.content"))
            continue
        if role == "user":
            body: str | list[dict[str, Any]] = _user_content(content, f"{where}.content")
        elif role == "assistant":
            body = _assistant_content(message, where)
        elif role == "tool":
            body = [_tool_result(message, where)]
        else:
            raise invalid(f"{where}.role", "must be system, developer, user, assistant or tool")
        side = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == side:
            turns[-1]["content"] = _as_blocks(turns[-1]["content"]) + _as_blocks(body)
        else:
            turns.append({"role": side, "content": body})
    if system_messages == 1 and plain_system is not None:
        return plain_system, turns
    return (system or None), turns


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise invalid(where, "must be a string or an array of text parts", "invalid_type")
    blocks = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise invalid(f"{where}[{j}]", "must be a text part here", "invalid_type")
        blocks.append({"type": "text", "text": part["text"]})
    return blocks


def _user_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(where, "must be a string or an array of content parts", "invalid_type")
    return [_part(part, f"{where}[{j}]") for j, part in enumerate(content)]


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "image_url":
        return _image(part.get("image_url"), f"{where}.image_url")
    if isinstance(kind, str) and kind != "text":
        raise unsupported(f"{where}.type", f" (content parts of type {kind[:40]!r})")
    raise invalid(where, "must be a text or image_url part", "invalid_type")


def _image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise invalid(f"{where}.url", "must be a string", "invalid_type")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not media_type:
            raise invalid(f"{where}.url", "must be a base64 data: URL or an http(s) URL")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise invalid(f"{where}.url", "must be a base64 data: URL or an http(s) URL")


def _assistant_content(message: dict[str, Any], where: str) -> str | list[dict[str, Any]]:
    for legacy in ("function_call", "audio"):
        if message.get(legacy) is not None:
            raise unsupported(f"{where}.{legacy}")
    content, calls = message.get("content"), message.get("tool_calls")
    # reasoning_content carries no signature, so Anthropic could not take it back: left out.
    thinking = _thinking_blocks(message.get("thinking_blocks"), f"{where}.thinking_blocks")
    if isinstance(content, str) and not calls and not thinking:
        return content
    blocks: list[dict[str, Any]] = thinking
    if isinstance(content, str):
        blocks.extend(_as_blocks(content))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            text = part.get("refusal" if kind == "refusal" else "text") if kind else None
            if kind not in ("text", "refusal") or not isinstance(text, str):
                raise invalid(f"{where}.content[{j}]", "must be a text part", "invalid_type")
            blocks.append({"type": "text", "text": text})
    elif content is not None:
        raise invalid(f"{where}.content", "must be a string, an array or null", "invalid_type")
    if calls is not None:
        if not isinstance(calls, list):
            raise invalid(f"{where}.tool_calls", "must be an array", "invalid_type")
        blocks.extend(_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls))
    return blocks


def _thinking_blocks(entries: Any, where: str) -> list[dict[str, Any]]:
    """Signed thinking blocks a chat client sends back (as our answers gave them), first in
    the assistant turn, as Anthropic wants them back during a tool-use loop."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise invalid(where, "must be an array", "invalid_type")
    blocks = []
    for j, entry in enumerate(entries):
        block = thinking_entry(entry) if isinstance(entry, dict) else None
        if block is None or (block["type"] == "thinking" and "signature" not in block):
            raise invalid(
                f"{where}[{j}]",
                "must be a thinking block with its signature, or a redacted_thinking block",
                "invalid_type",
            )
        blocks.append(block)
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    call_id, name, arguments = function_call(call, where, "Anthropic")
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    ident = message.get("tool_call_id")
    if not isinstance(ident, str) or not ident:
        raise invalid(f"{where}.tool_call_id", "is required for a tool message", "invalid_type")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": ident}
    if isinstance(content, str):
        result["content"] = content
    elif isinstance(content, list):
        result["content"] = [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    elif content is not None:
        raise invalid(f"{where}.content", "must be a string or an array", "invalid_type")
    return result


def _tool(tool: Any, where: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise invalid(where, "must be a function tool with a name", "invalid_type")
    if tool.get("type", "function") != "function":
        raise unsupported(f"{where}.type", f" (tools of type {str(tool.get('type'))[:40]!r})")
    out: dict[str, Any] = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    parameters = function.get("parameters")
    out["input_schema"] = parameters if isinstance(parameters, dict) else _EMPTY_SCHEMA
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = None
    elif choice in ("auto", "none"):
        out = {"type": choice}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise invalid("tool_choice", "must be auto, none, required or a named function")
    if parallel is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out
