"""Which deployments can serve this request at all: capabilities and context window, as
each deployment declares them or, where it does not, as the packaged model table knows its
model (config/model_facts.py, precomputed by the catalog)."""

from __future__ import annotations

from asgi_llm.config.catalog import ModelEntry
from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext


def requested_output_tokens(ctx: LLMContext, default: int) -> int:
    payload = ctx.payload
    value = payload.get("max_completion_tokens") or payload.get("max_tokens")
    return value if type(value) is int else default


def capable(entry: ModelEntry, ctx: LLMContext, default_output: int) -> tuple[list[Deployment], str | None]:
    """Deployments able to take the request, and why none could (for the 400)."""
    needs = ctx.needs
    wanted = ctx.prompt_tokens_estimate + requested_output_tokens(ctx, default_output)
    if not needs and (entry.min_context is None or wanted <= entry.min_context):
        return list(entry.deployments), None  # the common case: nothing to filter
    kept: list[Deployment] = []
    reason = None
    known = zip(entry.deployments, entry.capabilities, entry.context_windows, strict=True)
    for deployment, abilities, window in known:
        # A deployment nothing is known of (no capabilities declared, a model the packaged
        # table does not know) is taken to support what it is sent.
        lacking = abilities.lacks(needs) if needs and abilities is not None else None
        if lacking:
            reason = f"no deployment of this model supports {', '.join(sorted(lacking))}"
            continue
        if window is not None and wanted > window:
            reason = (
                f"the request needs about {wanted} tokens, more than the context window of "
                "every deployment of this model"
            )
            continue
        kept.append(deployment)
    return kept, (None if kept else reason)
