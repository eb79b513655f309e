"""The two entry points: a text's features, computed once (and kept with an indexed entry), and
the veto that compares a candidate's with the query's, cheapest and most common guard first."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from asgi_llm.cache.guards.antonyms import opposed
from asgi_llm.cache.guards.edit import small_edit
from asgi_llm.cache.guards.entities import opens_sentence, unmatched
from asgi_llm.cache.guards.negation import NEGATIONS
from asgi_llm.cache.guards.numbers import NUMBER_WORDS, unit_of
from asgi_llm.cache.guards.order import relations, swapped
from asgi_llm.cache.guards.words import STOP, WORD


@dataclass(frozen=True, slots=True)
class Features:
    """What the guards compare, computed once per text (and kept with an indexed entry)."""

    words: tuple[str, ...]  # lowercased, in order
    numbers: frozenset[str]
    negations: int
    entities: frozenset[str]
    relations: tuple[tuple[frozenset[str], frozenset[str]], ...]


@lru_cache(maxsize=8192)
def features(text: str) -> Features:
    numbers: set[str] = set()
    entities: set[str] = set()
    words: list[str] = []
    negations = 0
    matches = list(WORD.finditer(text))
    # possessive: "Rajan's" is about Rajan
    lowers = [m.group().lower().removesuffix("'s").replace("'", "") for m in matches]
    for at, match in enumerate(matches):
        token, lower = match.group(), lowers[at]
        if any(ch.isdigit() for ch in token) or lower in NUMBER_WORDS:
            numbers.add(lower.replace(",", "") + unit_of(lowers, at))
        if lower in NEGATIONS:
            negations += 1
        # Names and acronyms: capitalized words that do not merely open a sentence.
        if (token.isupper() and len(token) > 1) or (
            token[:1].isupper() and lower not in STOP and not opens_sentence(text, match.start())
        ):
            entities.add(lower)
        words.append(lower)
    return Features(tuple(words), frozenset(numbers), negations, frozenset(entities), relations(words))


def veto(query: Features, candidate: Features) -> str | None:
    """Why a candidate may not answer the query, or None when nothing forbids it."""
    if query.numbers != candidate.numbers:
        return "numbers"
    if (query.negations > 0) != (candidate.negations > 0):
        return "negation"
    if unmatched(query.entities, candidate.words) or unmatched(candidate.entities, query.words):
        return "entities"  # a name on one side only (case aside)
    if swapped(query, candidate):
        return "order"
    if opposed(query.words, candidate.words):
        return "antonym"
    if small_edit(query.words, candidate.words):
        return "edit"
    return None


__all__ = ["Features", "features", "veto"]
