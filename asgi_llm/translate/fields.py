"""What each side's request fields become: carried, dropped, or refused by name.

A field with no equivalent is refused with a 400 naming it, never dropped quietly; only
fields that cannot change the answer are dropped (docs/anthropic.md has the lists).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from asgi_llm.errors import InvalidRequest


def unsupported(param: str, detail: str = "") -> InvalidRequest:
    return InvalidRequest(
        f"'{param}'{detail} has no equivalent in the translation between "
        "OpenAI chat and Anthropic Messages, so it is refused rather than "
        "dropped.",
        param=param,
        code="unsupported_parameter",
    )


def invalid(param: str, what: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(f"'{param}' {what}.", param=param, code=code)


# Chat fields whose neutral value (the default) no provider's own format needs to carry: the
# value passes, anything else is refused by name. Each translation adds its own.
CHAT_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "logit_bias": (None, {}),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "functions": (None,),
    "function_call": (None,),
    "web_search_options": (None,),
    "verbosity": (None,),
}


def check_fields(
    payload: dict[str, Any],
    carried: frozenset[str],
    dropped: frozenset[str],
    neutral: dict[str, tuple[Any, ...]],
    refuse: Callable[[str], InvalidRequest] = unsupported,
) -> None:
    """Every field is carried, dropped, or at its neutral value; else `refuse(name)` is raised."""
    for name, value in payload.items():
        if name in carried or name in dropped:
            continue
        if name in neutral and any(same_value(value, ok) for ok in neutral[name]):
            continue
        raise refuse(name)


def same_value(value: Any, neutral: Any) -> bool:
    """Equal, with booleans kept apart from numbers (`seed: false` is not `seed: 0`)."""
    return bool(value == neutral) and (type(value) is bool) == (type(neutral) is bool)


def function_call(call: Any, where: str, provider: str) -> tuple[str, str, dict[str, Any]]:
    """A chat tool call's id, name and arguments parsed into an object, as Anthropic, Bedrock
    and Gemini take them; 400 naming the field when the call or its arguments cannot be."""
    function = call.get("function") if isinstance(call, dict) else None
    if (
        not isinstance(function, dict)
        or not isinstance(call.get("id"), str)
        or not isinstance(function.get("name"), str)
        or call.get("type", "function") != "function"
    ):
        raise invalid(where, "must be a function call with an id and a name", "invalid_type")
    arguments = function.get("arguments")
    if arguments is None or arguments == "":
        arguments = {}
    elif isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequest(
            f"'{where}.function.arguments' must be a JSON object, as {provider} takes tool input.",
            param=f"{where}.function.arguments",
            code="invalid_tool_arguments",
        )
    return call["id"], function["name"], arguments


def stop_sequences(payload: dict[str, Any]) -> list[str] | None:
    """A chat request's `stop` as the list every provider takes (None: none given or empty);
    400 naming the field when it is neither a string nor an array of strings."""
    stop = payload.get("stop")
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop or None
    if stop is not None:
        raise invalid("stop", "must be a string or an array of strings", "invalid_type")
    return None


def chat_tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """An OpenAI chat tool call from a provider's call id, name and arguments object (the
    inverse of `function_call`)."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }
