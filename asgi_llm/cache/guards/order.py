"""Argument order: the two sides of a relation ("from X to Y", "A bigger than B", "X vs Y").
The veto: the same things, the other way round."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgi_llm.cache.guards.words import STOP, is_content, stem

if TYPE_CHECKING:
    from asgi_llm.cache.guards.check import Features

# Markers of a relation whose two sides must not be swapped ("X to Y", "X than Y", "X vs Y").
_RELATIONS = frozenset(
    ["to", "from", "than", "vs", "versus", "into", "against", "over", "under", "before", "after"]
)


def relations(words: list[str]) -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    """For each relation marker: the content words just before it and just after it."""
    found = []
    for i, word in enumerate(words):
        if word not in _RELATIONS:
            continue
        left = _span(words[i - 1 :: -1] if i else [])
        right = _span(words[i + 1 :])
        if left and right:
            found.append((left, right))
    return tuple(found)


def _span(words: list[str]) -> frozenset[str]:
    out: list[str] = []
    for word in words:
        if word in _RELATIONS or word in STOP or not word.isalpha():
            if out:
                break
            continue
        out.append(stem(word))
        if len(out) == 3:
            break
    return frozenset(out)


def swapped(query: Features, candidate: Features) -> bool:
    """The same things around a relation, the other way round ("from X to Y" / "from Y to
    X", "A bigger than B" / "B bigger than A")."""
    if not (query.relations or candidate.relations):
        return False
    for left, right in query.relations:
        for other_left, other_right in candidate.relations:
            if left & other_right and right & other_left and not (left & other_left):
                return True
    ours = [stem(w) for w in query.words if is_content(w)]
    theirs = [stem(w) for w in candidate.words if is_content(w)]
    return sorted(ours) == sorted(theirs) and ours != theirs


__all__ = ["relations", "swapped"]
