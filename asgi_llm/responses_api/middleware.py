"""ResponsesMiddleware: the state of the Responses API, for the caller Auth found.

Just inside Auth (and Admin) in the default stack, outside RateLimit and Cache, so those see
the whole conversation: a `previous_response_id` is expanded here into the stored turns
before limits reserve and the cache keys. The answer is stored (unless `store: false`) before
its last bytes go out, in the caller's namespace: its tenant, else its key, else `global`
without auth. `GET`/`DELETE /v1/responses/{id}` and `GET .../input_items` are answered here;
another namespace's id is a 404, as an unknown one is.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

import orjson

from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.context import LLMContext, Principal, ResponsesCall
from asgi_llm.errors import InvalidRequest, ProxyError, ServiceUnavailable
from asgi_llm.exchange import LLMLayer
from asgi_llm.request import validate
from asgi_llm.response_store import ResponseStore, ResponseStoreUnavailable, StoredResponse, open_store
from asgi_llm.responses import send_json
from asgi_llm.translate.responses_request import response_input_items, responses_to_chat
from asgi_llm.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("asgi_llm.responses")

MAX_LIST = 100  # input_items page size cap, as OpenAI's


def namespace_of(principal: Principal | None) -> str:
    if principal is None:
        return "global"
    if principal.tenant is not None:
        return f"tenant:{principal.tenant}"
    return f"key:{principal.id}"


def not_found(response_id: str, param: str | None = None) -> ProxyError:
    shown = response_id if len(response_id) <= 64 else response_id[:61] + "..."
    error = InvalidRequest(
        f"No response with id {shown!r} was found.", status=404, code="response_not_found", param=param
    )
    return error


class ResponsesMiddleware(LLMLayer):
    """`store` (a `ResponseStore`) may be injected; by default it is opened from the
    `responses.store` URL of the config in force (memory when the section is absent)."""

    kind = "responses"
    must_be_inside = ("auth",)  # the namespace is the caller's

    def __init__(
        self, app: ASGIApp, *, config: Config | ConfigManager, store: ResponseStore | None = None
    ) -> None:
        super().__init__(app, config=config)
        self._injected = store
        self._stores: dict[tuple[Any, ...], ResponseStore] = {}

    def store_for(self, config: Config) -> ResponseStore:
        if self._injected is not None:
            return self._injected
        settings = config.responses
        key = (
            settings.store,
            settings.key_prefix,
            settings.max_entries,
            settings.max_bytes,
            settings.timeout_s,
        )
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = open_store(
                settings.store,
                prefix=settings.key_prefix,
                max_entries=settings.max_entries,
                max_bytes=settings.max_bytes,
                timeout_s=settings.timeout_s,
            )
        return store

    async def shutdown(self) -> None:
        stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            await store.aclose()

    # -- the request ---------------------------------------------------------------------
    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        call = ctx.responses
        if call is not None:
            await self._create(ctx, call, scope, receive, send)
        elif ctx.endpoint.startswith("responses."):
            await self._read(ctx, scope, send)
        else:
            await self.app(scope, receive, send)

    async def _create(
        self, ctx: LLMContext, call: ResponsesCall, scope: Scope, receive: Receive, send: Send
    ) -> None:
        store = self.store_for(ctx.config)
        namespace = namespace_of(ctx.principal)
        previous_id = call.previous_id
        if previous_id is not None:
            previous = await self._get(store, namespace, previous_id)
            if previous is None:
                raise not_found(previous_id, param="previous_response_id")
            call.previous = previous
            call.history = [*previous.input_items, *previous.output_items]
            ctx.payload = responses_to_chat(call.request, call.history)
            ctx.body = orjson.dumps(ctx.payload)
            parsed = validate(ctx.endpoint, ctx.payload)  # the estimate now counts the history
            ctx.needs, ctx.prompt_tokens_estimate = parsed.needs, parsed.prompt_tokens_estimate
        call.expanded = True
        if call.store:

            async def keep() -> None:
                final = call.final
                assert final is not None
                record = StoredResponse(
                    id=str(final.get("id") or call.response_id),
                    namespace=namespace,
                    created_at=int(final.get("created_at") or call.created_at),
                    response=final,
                    input_items=[*call.history, *response_input_items(call.request)],
                    output_items=list(final.get("output") or []),
                    deployment=ctx.deployment.id if ctx.deployment is not None else None,
                    upstream_id=str(final.get("id")) if call.native else None,
                )
                try:
                    await store.put(record, ctx.config.responses.ttl_s)
                except (ResponseStoreUnavailable, ValueError) as exc:
                    # The answer is on its way; only a later previous_response_id will miss it
                    # (a store that is down, or an upstream id the store refuses).
                    log.warning("response %s not stored: %s", record.id[:64], exc.__class__.__name__)

            call.on_final = keep
        await self.app(scope, receive, send)

    async def _read(self, ctx: LLMContext, scope: Scope, send: Send) -> None:
        store = self.store_for(ctx.config)
        namespace = namespace_of(ctx.principal)
        response_id = ctx.model or ""  # the route's {id}
        ctx.model = None  # not a model name: nothing downstream may resolve it
        if ctx.endpoint == "responses.cancel":
            # Only background responses can be cancelled, and none are made here.
            record = await self._get(store, namespace, response_id)
            if record is None:
                raise not_found(response_id)
            raise InvalidRequest(
                "Only background responses can be cancelled; this one was not created in the background.",
                code="response_not_cancellable",
            )
        if ctx.endpoint == "responses.delete":
            try:
                deleted = await store.delete(namespace, response_id)
            except ResponseStoreUnavailable as exc:
                raise _store_down() from exc
            if not deleted:
                raise not_found(response_id)
            await send_json(
                send, 200, orjson.dumps({"id": response_id, "object": "response", "deleted": True})
            )
            return
        record = await self._get(store, namespace, response_id)
        if record is None:
            raise not_found(response_id)
        if ctx.endpoint == "responses.get":
            await send_json(send, 200, orjson.dumps(record.response))
            return
        await send_json(send, 200, orjson.dumps(_page(record.input_items, scope)))

    @staticmethod
    async def _get(store: ResponseStore, namespace: str, response_id: str) -> StoredResponse | None:
        try:
            return await store.get(namespace, response_id)
        except ResponseStoreUnavailable as exc:
            raise _store_down() from exc


def _store_down() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The response store is unavailable; try again shortly.", code="dependency_unavailable", retry_after=1
    )


def _page(items: list[dict[str, Any]], scope: Scope) -> dict[str, Any]:
    """OpenAI's list of input items: `order` (desc by default), `after` (an item id), `limit`."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    order = (query.get("order") or ["desc"])[0]
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    try:
        limit = int((query.get("limit") or ["20"])[0])
    except ValueError:
        raise InvalidRequest("'limit' must be an integer.", param="limit") from None
    if not 1 <= limit <= MAX_LIST:
        raise InvalidRequest(f"'limit' must be between 1 and {MAX_LIST}.", param="limit")
    ordered = list(reversed(items)) if order == "desc" else list(items)
    after = (query.get("after") or [None])[0]
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise InvalidRequest(f"No input item with id {after[:64]!r}.", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    page = ordered[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(ordered) > limit,
    }


__all__ = ["ResponsesMiddleware", "namespace_of"]
