"""Guards: the cheap, exact checks that veto a semantic hit the embedding cannot see.

A sentence embedding scores "Is it safe..." against "Is it not safe..." at 0.994 and "New
York to London" against "London to New York" at 0.994: no threshold alone separates them.
So a candidate above the threshold must also agree with the question on everything that
flips an answer: numbers (years, amounts, ordinals) with their units ("5 kg" / "5 lb", "$5" /
"5%"), negation, the named things it is about, the order of the arguments of a relation, and
antonyms (in any inflection: "rising" / "falling"). And a small edit of a long prompt
that swaps a word or two ("...write a haiku" / "...write a limerick") is another prompt.
A veto costs a miss, never a wrong answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,'][A-Za-z0-9]+)*|[$€£%#+]")
_NUMBER_WORDS = frozenset(
    # "one", "first" and "once" are left out: mostly idiom ("one of", "first create").
    [
        "zero",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "million",
        "billion",
        "trillion",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "half",
        "quarter",
        "double",
        "triple",
        "dozen",
        "twice",
    ]
)
_NEGATIONS = frozenset(
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
# Units: the word or sign next to a number, compared with it. Each line: the spelling kept,
# then the others ("5 kilograms" and "5kg" are the same amount, "5 lb" another).
_UNIT_SPELLINGS = (
    "% percent",
    "$ dollar dollars usd",
    "€ euro euros eur",
    "£ gbp sterling",
    "yen jpy",
    "cent cents",
    "kg kilo kilos kilogram kilograms",
    "g gram grams",
    "mg milligram milligrams",
    "lb lbs pound pounds",
    "oz ounce ounces",
    "ton tons tonne tonnes",
    "km kilometer kilometers kilometre kilometres",
    "m meter meters metre metres",
    "cm centimeter centimeters centimetre centimetres",
    "mm millimeter millimeters millimetre millimetres",
    "mi mile miles",
    "ft foot feet",
    "inch inches",
    "yd yard yards",
    "l liter liters litre litres",
    "ml milliliter milliliters millilitre millilitres",
    "gal gallon gallons",
    "c celsius centigrade",
    "f fahrenheit",
    "kelvin",
    "deg degree degrees",
    "ms millisecond milliseconds",
    "s sec secs second seconds",
    "min mins minute minutes",
    "h hr hrs hour hours",
    "day days",
    "week weeks",
    "month months",
    "year years yr yrs",
    "am a.m",
    "pm p.m",
    "kb kilobyte kilobytes",
    "mb megabyte megabytes",
    "gb gigabyte gigabytes",
    "tb terabyte terabytes",
    "byte bytes",
    "bit bits",
    "kbps",
    "mbps",
    "gbps",
    "mph",
    "kph kmh",
    "w watt watts",
    "kw kilowatt kilowatts",
    "kwh",
    "v volt volts",
    "hz hertz",
    "mhz",
    "ghz",
    "kcal cal calorie calories",
)
_UNITS = {spelling: line.split()[0] for line in _UNIT_SPELLINGS for spelling in line.split()}
_CURRENCY_SIGNS = frozenset("$€£")
EDIT_CONTEXT_WORDS = 8  # how much verbatim context makes a one-spot swap an edit
# Markers of a relation whose two sides must not be swapped ("X to Y", "X than Y", "X vs Y").
_RELATIONS = frozenset(
    ["to", "from", "than", "vs", "versus", "into", "against", "over", "under", "before", "after"]
)
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "mine",
        "myself",
        "we",
        "us",
        "our",
        "you",
        "your",
        "yours",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "as",
        "in",
        "on",
        "onto",
        "and",
        "or",
        "but",
        "if",
        "so",
        "then",
        "than",
        "too",
        "very",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "how",
        "why",
        "when",
        "where",
        "whether",
        "any",
        "some",
        "all",
        "each",
        "every",
        "such",
        "just",
        "also",
        "only",
        "own",
        "same",
        "other",
        "more",
        "most",
        "much",
        "many",
        "really",
        "actually",
        "get",
        "got",
        "getting",
        "go",
        "going",
        "way",
        "ways",
        "thing",
        "things",
        "one",
        "ones",
        "someone",
        "something",
        "anyone",
        "anything",
        "people",
        "person",
        "good",
        "best",
        "better",
        "possible",
        "want",
        "need",
        "know",
        "tell",
        "explain",
        "give",
        "make",
        "like",
        "use",
        "using",
        "used",
        "s",
        "t",
        "whats",
        "im",
        "ive",
        "id",
        "ill",
        "youre",
        "its",
        "whos",
        "hows",
        "wheres",
        "thats",
        "theres",
        "lets",
        "hi",
        "hello",
        "please",
    ]
)
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


@dataclass(frozen=True, slots=True)
class Features:
    """What the guards compare, computed once per text (and kept with an indexed entry)."""

    words: tuple[str, ...]  # lowercased, in order
    numbers: frozenset[str]
    negations: int
    entities: frozenset[str]
    relations: tuple[tuple[frozenset[str], frozenset[str]], ...]


def _stem(word: str) -> str:
    """Crude, but the same for every form of a word: rise, rises, rising -> ris."""
    for suffix in ("ies", "ing", "est", "ed", "es", "er", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


_ANTONYM_STEMS = frozenset(frozenset(_stem(w) for w in pair) for pair in ANTONYM_PAIRS)


@lru_cache(maxsize=8192)
def features(text: str) -> Features:
    numbers: set[str] = set()
    entities: set[str] = set()
    words: list[str] = []
    negations = 0
    matches = list(_WORD.finditer(text))
    # possessive: "Rajan's" is about Rajan
    lowers = [m.group().lower().removesuffix("'s").replace("'", "") for m in matches]
    for at, match in enumerate(matches):
        token, lower = match.group(), lowers[at]
        if any(ch.isdigit() for ch in token) or lower in _NUMBER_WORDS:
            numbers.add(lower.replace(",", "") + _unit(lowers, at))
        if lower in _NEGATIONS:
            negations += 1
        # Names and acronyms: capitalized words that do not merely open a sentence.
        if (token.isupper() and len(token) > 1) or (
            token[:1].isupper() and lower not in _STOP and not _opens_sentence(text, match.start())
        ):
            entities.add(lower)
        words.append(lower)
    return Features(tuple(words), frozenset(numbers), negations, frozenset(entities), _relations(words))


def _unit(words: list[str], at: int) -> str:
    """The unit of the number at `at`, spelt one way ("kg" for "5 kilograms"), or ""."""
    if at and words[at - 1] in _CURRENCY_SIGNS:
        return words[at - 1]  # "$5"
    unit = _UNITS.get(words[at + 1], "") if at + 1 < len(words) else ""
    if unit == "deg" and at + 2 < len(words) and words[at + 2] in _UNITS:
        return _UNITS[words[at + 2]]  # "30 degrees celsius" is "30 C"
    return unit


def _opens_sentence(text: str, at: int) -> bool:
    before = text[:at].rstrip(" \t\"'`(*-")
    return not before or before[-1] in ".?!:\n"


def _relations(words: list[str]) -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
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
        if word in _RELATIONS or word in _STOP or not word.isalpha():
            if out:
                break
            continue
        out.append(_stem(word))
        if len(out) == 3:
            break
    return frozenset(out)


def _is_content(word: str) -> bool:
    return word.isalpha() and word not in _STOP and word not in _NEGATIONS


def _small_edit(query: tuple[str, ...], candidate: tuple[str, ...]) -> bool:
    """Mostly the same words in the same places, with a content word or two swapped in one
    spot: an edited prompt ("...write a haiku" / "...write a limerick"), not a rephrasing."""
    limit = min(len(query), len(candidate))
    prefix = 0
    while prefix < limit and query[prefix] == candidate[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and query[-1 - suffix] == candidate[-1 - suffix]:
        suffix += 1
    middle_q = [w for w in query[prefix : len(query) - suffix] if _is_content(w)]
    middle_c = [w for w in candidate[prefix : len(candidate) - suffix] if _is_content(w)]
    if not middle_q or not middle_c or len(middle_q) > 2 or len(middle_c) > 2:
        return False
    if any(a[:4] == b[:4] for a in middle_q for b in middle_c):
        return False  # the same word bent or misspelt ("warehouses", "happpened")
    shared = prefix + suffix
    return shared >= EDIT_CONTEXT_WORDS and shared >= 0.6 * max(len(query), len(candidate))


def _swapped(query: Features, candidate: Features) -> bool:
    """The same things around a relation, the other way round ("from X to Y" / "from Y to
    X", "A bigger than B" / "B bigger than A")."""
    if not (query.relations or candidate.relations):
        return False
    for left, right in query.relations:
        for other_left, other_right in candidate.relations:
            if left & other_right and right & other_left and not (left & other_left):
                return True
    ours = [_stem(w) for w in query.words if _is_content(w)]
    theirs = [_stem(w) for w in candidate.words if _is_content(w)]
    return sorted(ours) == sorted(theirs) and ours != theirs


def _unmatched(entities: frozenset[str], words: tuple[str, ...]) -> bool:
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


def veto(query: Features, candidate: Features) -> str | None:
    """Why a candidate may not answer the query, or None when nothing forbids it."""
    if query.numbers != candidate.numbers:
        return "numbers"
    if (query.negations > 0) != (candidate.negations > 0):
        return "negation"
    if _unmatched(query.entities, candidate.words) or _unmatched(candidate.entities, query.words):
        return "entities"  # a name on one side only (case aside)
    if _swapped(query, candidate):
        return "order"
    only_query = set(query.words) - set(candidate.words)
    only_candidate = set(candidate.words) - set(query.words)
    for word in only_query:
        for other in only_candidate:
            if (
                frozenset((word, other)) in ANTONYM_PAIRS
                or frozenset((_stem(word), _stem(other))) in _ANTONYM_STEMS
            ):
                return "antonym"
    if _small_edit(query.words, candidate.words):
        return "edit"
    return None


__all__ = ["Features", "features", "veto"]
