"""Antonyms: a word of one text and its opposite in the other, in any inflection ("rising" /
"falling")."""

from __future__ import annotations

from asgi_llm.cache.guards.words import stem

_ANTONYMS = (
    "buy sell",
    "gain lose",
    "increase decrease",
    "best worst",
    "maximum minimum",
    "max min",
    "cheap expensive",
    "before after",
    "up down",
    "hot cold",
    "big small",
    "large small",
    "male female",
    "pros cons",
    "advantages disadvantages",
    "start stop",
    "open close",
    "import export",
    "add remove",
    "love hate",
    "positive negative",
    "true false",
    "win lose",
    "rich poor",
    "high low",
    "fast slow",
    "more less",
    "most least",
    "old new",
    "young old",
    "easy hard",
    "easy difficult",
    "safe dangerous",
    "safe unsafe",
    "legal illegal",
    "possible impossible",
    "good bad",
    "happy sad",
    "always never",
    "first last",
    "above below",
    "inside outside",
    "push pull",
    "light heavy",
    "light dark",
    "early late",
    "long short",
    "tall short",
    "strong weak",
    "wet dry",
    "north south",
    "east west",
    "left right",
    "black white",
    "day night",
    "men women",
    "boy girl",
    "encrypt decrypt",
    "upload download",
    "upgrade downgrade",
    "input output",
    "send receive",
    "lend borrow",
    "borrow lend",
    "import export",
    "ascending descending",
    "asc desc",
    "min max",
    "attack defend",
    "remember forget",
    "accept reject",
    "include exclude",
    "enable disable",
    "allow deny",
    "agree disagree",
    "like dislike",
    "same different",
    "similar different",
    "over under",
    "plus minus",
    "add subtract",
    "multiply divide",
    "vertical horizontal",
    "internal external",
    "public private",
    "online offline",
    "win loss",
    "profit loss",
    "credit debit",
    "inbound outbound",
    "parent child",
    "teacher student",
    "buyer seller",
    "sender receiver",
    "better worse",
    "bigger smaller",
    "larger smaller",
    "higher lower",
    "faster slower",
    "cheaper costlier",
    "more fewer",
    "increasing decreasing",
    "rise fall",
    "raise lower",
    "arrive depart",
    "arrival departure",
    "yes no",
    "on off",
    "with without",
    "include exclude",
    "pro con",
    "for against",
)
ANTONYM_PAIRS = frozenset(frozenset(pair.split()) for pair in _ANTONYMS)
_ANTONYM_STEMS = frozenset(frozenset(stem(w) for w in pair) for pair in ANTONYM_PAIRS)


def opposed(query: tuple[str, ...], candidate: tuple[str, ...]) -> bool:
    """A word only the query says and one only the candidate says are opposites."""
    only_query = set(query) - set(candidate)
    only_candidate = set(candidate) - set(query)
    for word in only_query:
        for other in only_candidate:
            if (
                frozenset((word, other)) in ANTONYM_PAIRS
                or frozenset((stem(word), stem(other))) in _ANTONYM_STEMS
            ):
                return True
    return False


__all__ = ["ANTONYM_PAIRS", "opposed"]
