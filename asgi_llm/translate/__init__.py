"""Translations between OpenAI chat completions and Anthropic Messages, both ways.

Pure functions and incremental stream translators: no I/O, no context, so they are tested
on their own (tests/translate/) and shared by the Anthropic provider (outbound) and the
`POST /v1/messages` endpoint (inbound, `endpoint.accept_messages`).
"""

from asgi_llm.translate.inbound import messages_to_chat
from asgi_llm.translate.outbound import DEFAULT_MAX_TOKENS, chat_to_messages
from asgi_llm.translate.response import (
    completion_to_message,
    finish_reason_for,
    message_to_completion,
    stop_reason_for,
)
from asgi_llm.translate.stream import ChatToMessagesStream, MessagesToChatStream, UpstreamErrorEvent

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "ChatToMessagesStream",
    "MessagesToChatStream",
    "UpstreamErrorEvent",
    "chat_to_messages",
    "completion_to_message",
    "finish_reason_for",
    "message_to_completion",
    "messages_to_chat",
    "stop_reason_for",
]
