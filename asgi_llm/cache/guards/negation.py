"""Negation: the words that turn a question into its opposite ("Is it safe..." / "Is it not
safe..."). The veto: one text negated and the other not."""

from __future__ import annotations

NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "neither",
        "nor",
        "without",
        "cannot",
        "cant",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "wont",
        "wouldnt",
        "shouldnt",
        "couldnt",
        "hasnt",
        "havent",
        "hadnt",
        "mustnt",
        "aint",
        "nowhere",
        "non",
        "un",
    ]
)

__all__ = ["NEGATIONS"]
