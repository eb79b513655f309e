"""Anthropic Messages requests -> OpenAI chat requests, for `POST /v1/messages`.

The result is what every layer then sees: an ordinary chat request with the client's model
name. Strict (`messages_to_chat`), what chat cannot say is a 400 naming the field. Lenient
(`chat_form`), it is left out and the first such refusal is returned beside the chat form:
the layers read that form (model, size, tools, images) while an Anthropic deployment gets
the request as it came, and any other deployment answers the refusal at attempt time.
"""

from __future__ import annotations

from typing import Any

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.fields import chat_tool_call, check_fields, invalid, unsupported

# Anthropic request fields accepted on /v1/messages.
_MESSAGES_CARRIED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
    }
)
_MESSAGES_DROPPED = frozenset({"service_tier"})
_NO_NEUTRAL: dict[str, tuple[Any, ...]] = {}

# thinking.budget_tokens -> reasoning_effort: below 4096 low, below 16384 medium, else high
# (outbound.EFFORT_BUDGETS maps back into these ranges).
_EFFORT_FLOORS = ((16384, "high"), (4096, "medium"), (0, "low"))


def messages_to_chat(payload: dict[str, Any], *, count_only: bool = False) -> dict[str, Any]:
    """The chat request for an Anthropic Messages request, model name untouched; what chat
    cannot say is a 400 naming the field. `count_only`: a count_tokens request (no
    max_tokens, no stream)."""
    return _Reader(lenient=False).request(payload, count_only)


def chat_form(
    payload: dict[str, Any], *, count_only: bool = False
) -> tuple[dict[str, Any], InvalidRequest | None]:
    """The chat request, and the first field chat could not say (None when it says it all).

    A malformed request is still a 400 here; only fields without a chat equivalent are
    left out of the form, and the refusal is kept for an attempt that would need them.
    """
    try:
        return messages_to_chat(payload, count_only=count_only), None
    except InvalidRequest as exc:
        if exc.code != "unsupported_parameter":
            raise
        return _Reader(lenient=True).request(payload, count_only), exc


def chat_form_with_cache_marks(payload: dict[str, Any]) -> dict[str, Any]:
    """The lenient chat form with the blocks' `cache_control` marks kept: on text and image
    parts and tools as they were, and a tool_use's or tool_result's on its chat message. For
    a provider that takes them (Bedrock's cache points); never sent to an OpenAI upstream."""
    return _Reader(lenient=True, marks=True).request(payload, False)


class _Reader:
    """One translation; `lenient` leaves out what `unsupported` would refuse, `marks` keeps
    the `cache_control` marks."""

    __slots__ = ("lenient", "marks")

    def __init__(self, *, lenient: bool, marks: bool = False) -> None:
        self.lenient = lenient
        self.marks = marks

    def mark(self, block: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
        if self.marks and block.get("cache_control") is not None:
            into["cache_control"] = block["cache_control"]
        return into

    def refuse(self, param: str, detail: str = "") -> None:
        if not self.lenient:
            raise unsupported(param, detail)

    def request(self, payload: dict[str, Any], count_only: bool) -> dict[str, Any]:
        if not self.lenient:
            check_fields(payload, _MESSAGES_CARRIED, _MESSAGES_DROPPED, _NO_NEUTRAL)
        turns = payload.get("messages")
        if not isinstance(turns, list) or not turns:
            raise invalid(
                "messages",
                "must be a non-empty array",
                "missing_messages" if turns is None else "invalid_type",
            )
        messages: list[dict[str, Any]] = []
        system = payload.get("system")
        if isinstance(system, str):
            messages.append({"role": "system", "content": system})
        elif isinstance(system, list):
            messages.append({"role": "system", "content": self.text_parts(system, "system")})
        elif system is not None:
            raise invalid("system", "must be a string or an array of text blocks", "invalid_type")
        for i, turn in enumerate(turns):
            messages.extend(self.chat_messages(turn, f"messages[{i}]"))
        out: dict[str, Any] = {"model": payload.get("model"), "messages": messages}
        if not count_only:
            if payload.get("max_tokens") is None:  # Anthropic requires it; so do we, as it does
                raise invalid("max_tokens", "is required", "missing_required_parameter")
            out["max_tokens"] = payload["max_tokens"]
        for name in ("temperature", "top_p", "top_k"):
            if payload.get(name) is not None:
                out[name] = payload[name]
        stops = payload.get("stop_sequences")
        if stops:
            out["stop"] = stops
        effort = self.effort(payload.get("thinking"))
        if effort is not None:
            out["reasoning_effort"] = effort
        tools = payload.get("tools")
        if tools:
            if not isinstance(tools, list):
                raise invalid("tools", "must be an array", "invalid_type")
            functions = [self.function_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
            kept = [f for f in functions if f is not None]
            if kept:
                out["tools"] = kept
        choice = payload.get("tool_choice")
        if choice is not None:
            out.update(_chat_tool_choice(choice))
        metadata = payload.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
            out["user"] = metadata["user_id"]
        if payload.get("stream") is True and not count_only:
            # The usage chunk is what message_delta's usage is made from: always ask for it.
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
        return out

    def effort(self, thinking: Any) -> str | None:
        """Anthropic's thinking budget as OpenAI's reasoning_effort (None: no thinking)."""
        if thinking is None:
            return None
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind == "disabled":
            return None
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if kind != "enabled" or type(budget) is not int:
            if kind == "enabled":
                raise invalid("thinking.budget_tokens", "is required", "missing_required_parameter")
            self.refuse("thinking.type", f" ({str(kind)[:40]!r})")
            return None
        return next(effort for floor, effort in _EFFORT_FLOORS if budget >= floor)

    def text_parts(self, blocks: list[Any], where: str) -> list[dict[str, Any]]:
        parts = []
        for j, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, dict) else None
            if isinstance(kind, str) and kind != "text":  # images in a tool result, say
                self.refuse(f"{where}[{j}].type", f" (content blocks of type {kind[:40]!r} here)")
                continue
            if kind != "text" or not isinstance(block.get("text"), str):
                raise invalid(f"{where}[{j}]", "must be a text block", "invalid_type")
            parts.append(self.mark(block, {"type": "text", "text": block["text"]}))
        return parts

    def chat_messages(self, turn: Any, where: str) -> list[dict[str, Any]]:
        role = turn.get("role") if isinstance(turn, dict) else None
        if role not in ("user", "assistant"):
            raise invalid(f"{where}.role", "must be user or assistant")
        content = turn.get("content")
        if isinstance(content, str):
            return [{"role": role, "content": content}]
        if not isinstance(content, list):
            raise invalid(f"{where}.content", "must be a string or an array of blocks", "invalid_type")
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        marked: dict[str, Any] = {}  # a marked tool_use's mark, for the assistant message
        for j, block in enumerate(content):
            at = f"{where}.content[{j}]"
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text" and isinstance(block.get("text"), str):
                parts.append(self.mark(block, {"type": "text", "text": block["text"]}))
            elif kind == "image" and role == "user":
                image = self.image_part(block.get("source"), f"{at}.source")
                if image is not None:
                    parts.append(self.mark(block, image))
            elif kind == "tool_use" and role == "assistant":
                calls.append(_call(block, at))
                self.mark(block, marked)
            elif kind == "tool_result" and role == "user":
                results.append(self.mark(block, self.tool_message(block, at)))
            elif kind in ("thinking", "redacted_thinking") and role == "assistant":
                # Claude's own reasoning, signed for Anthropic: a chat model never wrote it and
                # chat has no field to give it back, as it never gives earlier reasoning back.
                continue
            elif isinstance(kind, str):
                self.refuse(f"{at}.type", f" (content blocks of type {kind[:40]!r} in a {role} turn)")
            else:
                raise invalid(at, "must be a content block with a type", "invalid_type")
        if role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": parts or None}
            if calls:
                message["tool_calls"] = calls
            if marked:
                message.update(marked)
            return [message]
        # Tool results answer the previous assistant turn, so they come first (OpenAI's order).
        return results + ([{"role": "user", "content": parts}] if parts or not results else [])

    def image_part(self, source: Any, where: str) -> dict[str, Any] | None:
        kind = source.get("type") if isinstance(source, dict) else None
        if (
            kind == "base64"
            and isinstance(source.get("media_type"), str)
            and isinstance(source.get("data"), str)
        ):
            url = f"data:{source['media_type']};base64,{source['data']}"
        elif kind == "url" and isinstance(source.get("url"), str):
            url = source["url"]
        elif isinstance(kind, str):
            self.refuse(f"{where}.type", f" (image sources of type {kind[:40]!r})")
            return None
        else:
            raise invalid(where, "must be a base64 or url image source", "invalid_type")
        return {"type": "image_url", "image_url": {"url": url}}

    def tool_message(self, block: dict[str, Any], where: str) -> dict[str, Any]:
        ident = block.get("tool_use_id")
        if not isinstance(ident, str):
            raise invalid(f"{where}.tool_use_id", "is required", "invalid_type")
        content = block.get("content", "")
        if isinstance(content, list):
            content = self.text_parts(content, f"{where}.content")
        elif not isinstance(content, str):
            raise invalid(f"{where}.content", "must be a string or an array of text blocks", "invalid_type")
        return {"role": "tool", "tool_call_id": ident, "content": content}

    def function_tool(self, tool: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise invalid(where, "must be a tool with a name", "invalid_type")
        if tool.get("type", "custom") != "custom" or "input_schema" not in tool:
            self.refuse(f"{where}.type", f" (server tools such as {str(tool.get('type'))[:40]!r})")
            return None
        function: dict[str, Any] = {"name": tool["name"]}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        function["parameters"] = tool["input_schema"]
        return self.mark(tool, {"type": "function", "function": function})


def _call(block: dict[str, Any], where: str) -> dict[str, Any]:
    if (
        not isinstance(block.get("id"), str)
        or not isinstance(block.get("name"), str)
        or not isinstance(block.get("input", {}), dict)
    ):
        raise invalid(where, "must have an id, a name and an object input", "invalid_type")
    return chat_tool_call(block["id"], block["name"], block.get("input", {}))


def _chat_tool_choice(choice: Any) -> dict[str, Any]:
    kind = choice.get("type") if isinstance(choice, dict) else None
    out: dict[str, Any]
    if kind in ("auto", "none"):
        out = {"tool_choice": kind}
    elif kind == "any":
        out = {"tool_choice": "required"}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise invalid("tool_choice", "must be of type auto, any, tool or none")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out
