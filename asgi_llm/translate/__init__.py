"""Translations between OpenAI chat completions and Anthropic Messages, both ways, and from
OpenAI's Responses API to chat completions and back.

Pure functions and incremental stream translators: no I/O, no context, so they are tested
on their own (tests/translate/) and shared by the Anthropic provider (outbound), the
`POST /v1/messages` endpoint (inbound, `endpoint.accept_messages`) and `POST /v1/responses`
(`responses_request`, `responses_answer`, `responses_stream`).
"""

from asgi_llm.translate.inbound import messages_to_chat
from asgi_llm.translate.outbound import DEFAULT_MAX_TOKENS, chat_to_messages
from asgi_llm.translate.response import (
    completion_to_message,
    finish_reason_for,
    message_to_completion,
    stop_reason_for,
)
from asgi_llm.translate.responses_answer import chat_to_response, usage_from_response
from asgi_llm.translate.responses_request import response_input_items, responses_to_chat
from asgi_llm.translate.responses_stream import ChatToResponsesStream
from asgi_llm.translate.stream import ChatToMessagesStream, MessagesToChatStream, UpstreamErrorEvent

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "ChatToMessagesStream",
    "ChatToResponsesStream",
    "MessagesToChatStream",
    "UpstreamErrorEvent",
    "chat_to_messages",
    "chat_to_response",
    "completion_to_message",
    "finish_reason_for",
    "message_to_completion",
    "messages_to_chat",
    "response_input_items",
    "responses_to_chat",
    "stop_reason_for",
    "usage_from_response",
]
