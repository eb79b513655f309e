"""Responses input items -> chat messages: the conversation part of `responses_request`.

Messages, function calls (merged into the assistant message before them), their outputs and
reasoning items; also the request's input as the store keeps it (`response_input_items`).
What chat cannot carry is refused by name, never dropped.
"""

from __future__ import annotations

from typing import Any

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.fields import check_fields, invalid
from asgi_llm.translate.responses_answer import IdFactory, new_item_id

# Keys each input item and part may hold: anything else is refused by name.
_MESSAGE_KEYS = frozenset({"type", "role", "content", "id", "status", "phase"})
_CALL_KEYS = frozenset(
    {"type", "id", "call_id", "name", "arguments", "status", "namespace", "caller", "async"}
)
_OUTPUT_KEYS = frozenset({"type", "id", "call_id", "output", "status", "name", "namespace", "caller"})
_REASONING_KEYS = frozenset({"type", "id", "summary", "content", "encrypted_content", "status"})
_TEXT_KEYS = frozenset({"type", "text", "annotations", "logprobs", "prompt_cache_breakpoint"})
_IMAGE_KEYS = frozenset({"type", "image_url", "file_id", "detail", "prompt_cache_breakpoint"})
_DIRECT_CALLER: tuple[Any, ...] = (None, {"type": "direct"})
_ROLES = ("user", "assistant", "system", "developer")
_ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def unsupported(param: str, detail: str = "") -> InvalidRequest:
    return InvalidRequest(
        f"'{param}'{detail} has no equivalent in chat completions, which this model is served "
        "with, so the Responses request is refused rather than the field dropped.",
        param=param,
        code="unsupported_parameter",
    )


def check_keys(
    payload: dict[str, Any],
    carried: frozenset[str],
    dropped: frozenset[str],
    neutral: dict[str, tuple[Any, ...]],
    where: str = "",
) -> None:
    """fields.check_fields, with this translation's words and the field's full path."""
    try:
        check_fields(payload, carried, dropped, neutral)
    except InvalidRequest as exc:
        raise unsupported(f"{where}{exc.param}") from None


def add_item(messages: list[dict[str, Any]], item: Any, at: str) -> None:
    """Append the chat form of one input item (`at` names it in errors) to `messages`.

    A reasoning item adds nothing when it carries only `summary` and/or `encrypted_content`
    (see `responses_to_chat`); one with reasoning text (`content`) is refused.
    """
    if not isinstance(item, dict):
        raise invalid(at, "must be an input item object", "invalid_type")
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        messages.append(_message(item, at))
    elif kind == "function_call":
        call = _tool_call(item, at)
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            # A turn's text and its calls, or consecutive calls: one chat assistant message.
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        messages.append(_tool_message(item, at))
    elif kind == "reasoning":
        check_keys(item, _REASONING_KEYS, frozenset(), {}, f"{at}.")
        if item.get("content"):
            raise unsupported(f"{at}.content", " (reasoning text)")
    elif isinstance(kind, str):
        raise unsupported(f"{at}.type", f" (input items of type {kind[:40]!r})")
    else:
        raise invalid(at, "must be an input item with a type", "invalid_type")


def _message(item: dict[str, Any], at: str) -> dict[str, Any]:
    check_keys(item, _MESSAGE_KEYS, frozenset(), {}, f"{at}.")
    role = item.get("role")
    if role not in _ROLES:
        raise invalid(f"{at}.role", "must be user, assistant, system or developer")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise invalid(f"{at}.content", "must be a string or an array of content parts", "invalid_type")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{at}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            check_keys(part, _TEXT_KEYS, frozenset(), {}, f"{where}.")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and role == "user":
            parts.append(_image_part(part, where))
        elif kind == "refusal" and role == "assistant" and isinstance(part.get("refusal"), str):
            parts.append({"type": "refusal", "refusal": part["refusal"]})
        elif isinstance(kind, str):
            raise unsupported(f"{where}.type", f" (content parts of type {kind[:40]!r} in a {role} message)")
        else:
            raise invalid(where, "must be a content part with a type", "invalid_type")
    if role == "assistant" and all(p["type"] == "text" for p in parts):
        # A string, as chat answers hold it; refusal parts keep the array form.
        return {"role": "assistant", "content": "".join(p["text"] for p in parts) or None}
    return {"role": role, "content": parts}


def _image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    check_keys(part, _IMAGE_KEYS, frozenset(), {}, f"{where}.")
    if part.get("file_id") is not None:
        raise unsupported(f"{where}.file_id", " (images by uploaded file)")
    url = part.get("image_url")
    if not isinstance(url, str):
        raise invalid(f"{where}.image_url", "is required", "missing_required_parameter")
    image: dict[str, Any] = {"url": url}
    if part.get("detail") is not None:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _tool_call(item: dict[str, Any], at: str) -> dict[str, Any]:
    check_keys(item, _CALL_KEYS, frozenset(), {}, f"{at}.")
    _only_neutral(item, at, namespace=(None,), caller=_DIRECT_CALLER, **{"async": (None, False)})
    for name in ("call_id", "name", "arguments"):
        if not isinstance(item.get(name), str):
            raise invalid(f"{at}.{name}", "is required and must be a string", "invalid_type")
    return {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": item["arguments"]},
    }


def _tool_message(item: dict[str, Any], at: str) -> dict[str, Any]:
    check_keys(item, _OUTPUT_KEYS, frozenset(), {}, f"{at}.")
    _only_neutral(item, at, namespace=(None,), caller=_DIRECT_CALLER)
    if not isinstance(item.get("call_id"), str):
        raise invalid(f"{at}.call_id", "is required", "missing_required_parameter")
    output = item.get("output")
    if isinstance(output, list):
        parts = []
        for j, part in enumerate(output):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "input_text" and isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            elif isinstance(kind, str):
                raise unsupported(f"{at}.output[{j}].type", f" (tool output parts of type {kind[:40]!r})")
            else:
                raise invalid(f"{at}.output[{j}]", "must be a content part with a type", "invalid_type")
        output = parts
    elif not isinstance(output, str):
        raise invalid(f"{at}.output", "must be a string or an array of content parts", "invalid_type")
    return {"role": "tool", "tool_call_id": item["call_id"], "content": output}


def _only_neutral(item: dict[str, Any], at: str, **neutral: tuple[Any, ...]) -> None:
    for name, values in neutral.items():
        if item.get(name) not in values:
            raise unsupported(f"{at}.{name}")


def response_input_items(payload: dict[str, Any], *, new_id: IdFactory = new_item_id) -> list[dict[str, Any]]:
    """The request's own input as Responses input items, for the store: a string becomes one
    user message; message, function_call and function_call_output items get the ids
    (`msg_`, `fc_`, `fco_`) and `status` OpenAI gives them, and string content becomes parts,
    as `GET /v1/responses/{id}/input_items` lists them. Call it on an accepted request.
    """
    given = payload.get("input")
    if isinstance(given, str):
        given = [{"role": "user", "content": given}]
    items: list[dict[str, Any]] = []
    for item in given if isinstance(given, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message" if "role" in item else None)
        prefix = _ID_PREFIX.get(kind) if isinstance(kind, str) else None
        if prefix is None:  # reasoning items carry their own id
            items.append(dict(item))
            continue
        stored = {
            "id": item.get("id") or new_id(prefix),
            "type": kind,
            "status": item.get("status") or "completed",
        }
        stored.update((k, v) for k, v in item.items() if k not in stored)
        content = item.get("content")
        if kind == "message" and isinstance(content, str):
            if item.get("role") == "assistant":
                stored["content"] = [{"type": "output_text", "text": content, "annotations": []}]
            else:
                stored["content"] = [{"type": "input_text", "text": content}]
        items.append(stored)
    return items


__all__ = ["add_item", "check_keys", "response_input_items", "unsupported"]
