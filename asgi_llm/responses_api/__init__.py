"""The Responses API's state: previous_response_id, the store, the read routes."""

from asgi_llm.responses_api.middleware import ResponsesMiddleware, namespace_of

__all__ = ["ResponsesMiddleware", "namespace_of"]
