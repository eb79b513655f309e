"""Guards: the cheap, exact checks that veto a semantic hit the embedding cannot see.

A sentence embedding scores "Is it safe..." against "Is it not safe..." at 0.994 and "New
York to London" against "London to New York" at 0.994: no threshold alone separates them.
So a candidate above the threshold must also agree with the question on everything that
flips an answer: numbers (years, amounts, ordinals) with their units ("5 kg" / "5 lb", "$5" /
"5%"), negation, the named things it is about, the order of the arguments of a relation, and
antonyms (in any inflection: "rising" / "falling"). And a small edit of a long prompt
that swaps a word or two ("...write a haiku" / "...write a limerick") is another prompt.
A veto costs a miss, never a wrong answer.

One module per kind of veto (`numbers`, `negation`, `entities`, `order`, `antonyms`, `edit`),
`words` for what they share, and `check` for the two entry points, `features` and `veto`.
"""

from asgi_llm.cache.guards.antonyms import ANTONYM_PAIRS as ANTONYM_PAIRS
from asgi_llm.cache.guards.check import Features, features, veto
from asgi_llm.cache.guards.edit import EDIT_CONTEXT_WORDS as EDIT_CONTEXT_WORDS

__all__ = ["Features", "features", "veto"]
