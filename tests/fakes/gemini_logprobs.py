"""Log probabilities as the fake Gemini reports them, in Gemini's own `LogprobsResult` shape.

`generationConfig.responseLogprobs: true` asks for them, `logprobs: N` (only with it, 0 to
20) for N alternatives at each step. Each candidate (each streamed piece of it) then carries
`logprobsResult`: `chosenCandidates`, a `{token, tokenId, logProbability}` per decoding step,
and, when N was asked, `topCandidates`, a `{candidates: [...]}` per step, best first.
Tokens here are words with their leading space, so they join back into the text.
"""

from __future__ import annotations

import re
from typing import Any

MAX_LOGPROBS = 20


class LogprobsInvalid(ValueError):
    pass


def check_logprobs(generation: dict[str, Any]) -> None:
    wanted, top = generation.get("responseLogprobs"), generation.get("logprobs")
    if wanted is not None and type(wanted) is not bool:
        raise LogprobsInvalid("generation_config.response_logprobs: must be a boolean")
    if top is not None:
        if type(top) is not int or not 0 <= top <= MAX_LOGPROBS:
            raise LogprobsInvalid(f"generation_config.logprobs: must be an integer in [0, {MAX_LOGPROBS}]")
        if wanted is not True:
            raise LogprobsInvalid("logprobs is only valid if response_logprobs is true")


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "tokenId": sum(token.encode()) % 50000, "logProbability": logprob}


def logprobs_result(text: str, top: int) -> dict[str, Any]:
    tokens = re.findall(r"\s*\S+|\s+", text)
    chosen = [_entry(token, -round(0.01 * (i + 1), 4)) for i, token in enumerate(tokens)]
    result: dict[str, Any] = {"chosenCandidates": chosen}
    if top:
        result["topCandidates"] = [
            {
                "candidates": [entry]
                + [_entry(f"{entry['token']}~{k}", entry["logProbability"] - k) for k in range(1, top)]
            }
            for entry in chosen
        ]
    return result


def text_of(parts: list[dict[str, Any]]) -> str:
    return "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
