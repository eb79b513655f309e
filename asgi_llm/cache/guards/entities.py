"""Entities: the names and acronyms a text is about (capitalized words that do not merely open
a sentence). The veto: a name of one text that the other does not have."""

from __future__ import annotations


def opens_sentence(text: str, at: int) -> bool:
    before = text[:at].rstrip(" \t\"'`(*-")
    return not before or before[-1] in ".?!:\n"


def unmatched(entities: frozenset[str], words: tuple[str, ...]) -> bool:
    """A name of one text that the other neither says nor spells out ("RAM" / "random
    access memory" match)."""
    present = set(words)
    for name in entities:
        if name in present:
            continue
        size = len(name)
        if 2 <= size <= 6 and any(
            "".join(w[0] for w in words[i : i + size]) == name for i in range(len(words) - size + 1)
        ):
            continue
        return True
    return False


__all__ = ["opens_sentence", "unmatched"]
