"""Long-prompt edits: a long prompt repeated verbatim with a content word or two swapped in one
spot ("...write a haiku" / "...write a limerick") is another prompt."""

from __future__ import annotations

from asgi_llm.cache.guards.words import is_content

EDIT_CONTEXT_WORDS = 8  # how much verbatim context makes a one-spot swap an edit


def small_edit(query: tuple[str, ...], candidate: tuple[str, ...]) -> bool:
    """Mostly the same words in the same places, with a content word or two swapped in one
    spot: an edited prompt ("...write a haiku" / "...write a limerick"), not a rephrasing."""
    limit = min(len(query), len(candidate))
    prefix = 0
    while prefix < limit and query[prefix] == candidate[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and query[-1 - suffix] == candidate[-1 - suffix]:
        suffix += 1
    middle_q = [w for w in query[prefix : len(query) - suffix] if is_content(w)]
    middle_c = [w for w in candidate[prefix : len(candidate) - suffix] if is_content(w)]
    if not middle_q or not middle_c or len(middle_q) > 2 or len(middle_c) > 2:
        return False
    if any(a[:4] == b[:4] for a in middle_q for b in middle_c):
        return False  # the same word bent or misspelt ("warehouses", "happpened")
    shared = prefix + suffix
    return shared >= EDIT_CONTEXT_WORDS and shared >= 0.6 * max(len(query), len(candidate))


__all__ = ["EDIT_CONTEXT_WORDS", "small_edit"]
