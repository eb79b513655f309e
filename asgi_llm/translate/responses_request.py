"""Responses API requests -> OpenAI chat requests, for `POST /v1/responses` served by any
deployment that speaks chat completions.

The result is what every layer then sees: an ordinary chat request with the client's model
name. What chat cannot say is refused by name (400 `unsupported_parameter`), never dropped;
docs/responses.md has the table.
"""

from __future__ import annotations

from typing import Any

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.fields import invalid
from asgi_llm.translate.responses_items import add_item, check_keys, response_input_items, unsupported

# Responses request fields: carried into the chat request; left to the /v1/responses layer
# (they steer storing, echoing and the stream, never the model's answer); dropped because they
# cannot change the answer here; refused unless they hold their neutral value.
_CARRIED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "stream",
        "top_logprobs",
        "include",
    }
)
_ENDPOINT_FIELDS = frozenset(
    {
        "store",
        "previous_response_id",
        "metadata",
        "background",
        "truncation",
        "service_tier",
        "stream_options",
    }
)
_DROPPED = frozenset({"max_tool_calls"})  # counts built-in tool calls only, and those are refused
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "conversation": (None,),
    "prompt": (None,),
    "context_management": (None, []),
    "moderation": (None,),
    "prompt_cache_options": (None, {}),
    "access_programs": (None,),
    "background_options": (None,),
    "image": (None, {}),
}
_LOGPROBS = "message.output_text.logprobs"

_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})
_TOOL_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "allowed_callers": (None, ["direct"]),
    "defer_loading": (None, False),
    "output_schema": (None,),
    "async": (None, False),
}


def responses_to_chat(payload: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The chat request for a Responses create request, model name untouched.

    `history` holds the Responses items of earlier turns (`previous_response_id`), placed
    after `instructions` and before `input`; an item there that chat cannot carry is refused
    with `param: previous_response_id`.

    Reasoning items are dropped when they carry only a `summary` and/or `encrypted_content`:
    a chat conversation never gives the model its earlier reasoning back (chat has no field
    for it), a summary is written for people, and encrypted content is readable by OpenAI
    alone, which itself withholds it from a different model (`input_transformations`,
    `model_mismatch`). One with reasoning text (`content`) is refused: open-weight reasoning
    models are trained to read their reasoning back between tool calls, and chat cannot
    carry it, so dropping it could change the answer.

    `truncation` passes either way and is not carried: chat has no truncation, so `auto`
    behaves as `disabled` does, an input over the context window is the upstream's 400 rather
    than a conversation shortened behind the client's back (and any input that fits gets the
    same answer under both). `store`, `previous_response_id`, `metadata`, `background`,
    `include`, `service_tier` and `stream_options` are the /v1/responses layer's; only
    `include: [message.output_text.logprobs]` reaches the chat request (as `logprobs`).
    """
    check_keys(payload, _CARRIED, _ENDPOINT_FIELDS | _DROPPED, _NEUTRAL)
    messages: list[dict[str, Any]] = []
    instructions = payload.get("instructions")
    if isinstance(instructions, str):
        messages.append({"role": "system", "content": instructions})
    elif instructions is not None:
        raise invalid("instructions", "must be a string", "invalid_type")
    leading = len(messages)
    earlier = history or []
    for i, item in enumerate(earlier):
        try:
            add_item(messages, item, f"history[{i}]")
        except InvalidRequest as exc:
            raise InvalidRequest(
                "The conversation 'previous_response_id' continues cannot be carried to chat "
                f"completions (history[i] is its i-th stored item): {exc.message}",
                param="previous_response_id",
                code=exc.code,
            ) from None
    given = payload.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        for i, item in enumerate(given):
            add_item(messages, item, f"input[{i}]")
    elif given is not None or not earlier:
        raise invalid(
            "input",
            "must be a string or an array of input items",
            "missing_required_parameter" if given is None else "invalid_type",
        )
    if len(messages) == leading:
        raise invalid("input", "must hold at least one item", "invalid_value")
    out: dict[str, Any] = {"model": payload.get("model"), "messages": messages}
    if payload.get("max_output_tokens") is not None:
        # max_completion_tokens, not max_tokens: like max_output_tokens it counts reasoning
        # tokens too, and OpenAI's reasoning models refuse max_tokens.
        out["max_completion_tokens"] = payload["max_output_tokens"]
    for name in (
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    ):
        if payload.get(name) is not None:
            out[name] = payload[name]
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid("tools", "must be an array", "invalid_type")
        if tools:
            out["tools"] = [_function_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    if payload.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(payload["tool_choice"])
    out.update(_text(payload.get("text")))
    out.update(_reasoning(payload.get("reasoning")))
    out.update(_logprobs(payload.get("include"), payload.get("top_logprobs")))
    stream = payload.get("stream")
    if stream is True:
        # Usage comes in the chat stream's last chunk only when asked for; response.completed needs it.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    elif stream not in (None, False):
        raise invalid("stream", "must be a boolean", "invalid_type")
    return out


def _function_tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise invalid(where, "must be a tool object", "invalid_type")
    kind = tool.get("type")
    if kind != "function":
        raise unsupported(
            f"{where}.type", f" (built-in and other non-function tools such as {str(kind)[:40]!r})"
        )
    check_keys(tool, _TOOL_KEYS, frozenset(), _TOOL_NEUTRAL, f"{where}.")
    if not isinstance(tool.get("name"), str):
        raise invalid(f"{where}.name", "is required and must be a string", "invalid_type")
    function: dict[str, Any] = {"name": tool["name"]}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        assert isinstance(choice, dict)
        check_keys(choice, frozenset({"type", "name"}), frozenset(), {}, "tool_choice.")
        if not isinstance(choice.get("name"), str):
            raise invalid("tool_choice.name", "is required and must be a string", "invalid_type")
        return {"type": "function", "function": {"name": choice["name"]}}
    if isinstance(kind, str):
        raise unsupported("tool_choice", f" (of type {kind[:40]!r})")
    raise invalid("tool_choice", "must be auto, none, required or {type: function, name}")


def _text(text: Any) -> dict[str, Any]:
    if text is None:
        return {}
    if not isinstance(text, dict):
        raise invalid("text", "must be an object", "invalid_type")
    check_keys(text, frozenset({"format", "verbosity"}), frozenset(), {}, "text.")
    out: dict[str, Any] = {}
    if text.get("verbosity") is not None:
        out["verbosity"] = text["verbosity"]
    fmt = text.get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return out
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        assert isinstance(fmt, dict)
        check_keys(
            fmt,
            frozenset({"type", "name", "schema", "description", "strict"}),
            frozenset(),
            {},
            "text.format.",
        )
        if not isinstance(fmt.get("name"), str):
            raise invalid("text.format.name", "is required", "missing_required_parameter")
        if not isinstance(fmt.get("schema"), dict):
            raise invalid(
                "text.format.schema", "is required and must be an object", "missing_required_parameter"
            )
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict") if fmt.get(k) is not None}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    else:
        raise invalid("text.format.type", "must be text, json_object or json_schema")
    return out


def _reasoning(reasoning: Any) -> dict[str, Any]:
    if reasoning is None:
        return {}
    if not isinstance(reasoning, dict):
        raise invalid("reasoning", "must be an object", "invalid_type")
    check_keys(
        reasoning,
        frozenset({"effort"}),
        frozenset(),
        {
            "summary": (None,),
            "generate_summary": (None,),
            "context": (None, "auto"),
            "mode": (None, "standard"),
        },
        "reasoning.",
    )
    return {"reasoning_effort": reasoning["effort"]} if reasoning.get("effort") is not None else {}


def _logprobs(include: Any, top: Any) -> dict[str, Any]:
    if include is not None and not isinstance(include, list):
        raise invalid("include", "must be an array", "invalid_type")
    if top is not None and type(top) is not int:
        raise invalid("top_logprobs", "must be an integer", "invalid_type")
    # Only this includable reaches the model's answer; the others name output of built-in
    # tools (refused above) or what the /v1/responses layer lists and stores.
    if _LOGPROBS in (include or ()) or (top is not None and top > 0):
        return {"logprobs": True, **({"top_logprobs": top} if top is not None else {})}
    return {}


__all__ = ["response_input_items", "responses_to_chat"]
