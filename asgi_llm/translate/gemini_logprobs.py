"""Log probabilities between OpenAI chat and Gemini, both ways, as pure functions.

A chat request's `logprobs: true` is Gemini's `generationConfig.responseLogprobs`, its
`top_logprobs: N` Gemini's `logprobs: N` (the alternatives at each step). A candidate's
`logprobsResult` (`chosenCandidates`, one per decoding step, and `topCandidates`, the
alternatives of each step, best first) comes back as OpenAI's `choice.logprobs.content`:
a `{token, logprob, bytes, top_logprobs}` per token, `bytes` the token's UTF-8 bytes.
"""

from __future__ import annotations

from typing import Any

from asgi_llm.translate.fields import invalid

MAX_TOP_LOGPROBS = 20  # OpenAI's limit, and Gemini's


def logprobs_config(payload: dict[str, Any]) -> dict[str, Any]:
    """The generationConfig fields for a chat request's `logprobs` / `top_logprobs`."""
    wanted, top = payload.get("logprobs"), payload.get("top_logprobs")
    if wanted is not None and type(wanted) is not bool:
        raise invalid("logprobs", "must be a boolean", "invalid_type")
    if top is not None:
        if type(top) is not int or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise invalid("top_logprobs", f"must be an integer from 0 to {MAX_TOP_LOGPROBS}")
        if top and not wanted:
            raise invalid("top_logprobs", "needs logprobs: true")
    if not wanted:
        return {}
    config: dict[str, Any] = {"responseLogprobs": True}
    if top:
        config["logprobs"] = top
    return config


def _token(candidate: Any) -> dict[str, Any]:
    if not isinstance(candidate, dict):
        raise ValueError("a logprobs candidate is not an object")
    token, logprob = candidate.get("token", ""), candidate.get("logProbability", 0.0)
    if not isinstance(token, str) or type(logprob) not in (int, float):
        raise ValueError("a logprobs candidate without a token or log probability")
    return {"token": token, "logprob": float(logprob), "bytes": list(token.encode())}


def openai_logprobs(result: Any) -> dict[str, Any] | None:
    """A candidate's `logprobsResult` as a choice's `logprobs` (None when there is none);
    ValueError when it is malformed."""
    if result is None:
        return None
    chosen = result.get("chosenCandidates") if isinstance(result, dict) else None
    if chosen is None:
        return None
    top = result.get("topCandidates") or []
    if not isinstance(chosen, list) or not isinstance(top, list):
        raise ValueError("logprobsResult's candidates are not lists")
    content = []
    for step, candidate in enumerate(chosen):
        entry = _token(candidate)
        alternatives = (top[step] or {}).get("candidates") if step < len(top) else None
        entry["top_logprobs"] = [_token(c) for c in alternatives] if isinstance(alternatives, list) else []
        content.append(entry)
    return {"content": content, "refusal": None}


__all__ = ["MAX_TOP_LOGPROBS", "logprobs_config", "openai_logprobs"]
