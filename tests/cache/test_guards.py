"""The guards on their own: near-misses a sentence embedding scores as duplicates are vetoed,
with the guard that caught them named; true paraphrases pass. No embedder, no numpy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asgi_llm.cache.guards import EDIT_CONTEXT_WORDS, features, veto

# A long shared context: a small edit of what follows it is another prompt.
CLAUSE = (
    "Section 4.2 of the attached contract says the supplier must deliver the goods within the "
    "agreed period and keep them insured until delivery."
)


def vetoed(stored: str, asked: str) -> str | None:
    """The veto of `asked` against `stored`, which must be the same the other way round: which
    of the two was cached first must not decide whether a wrong answer is served."""
    forward = veto(features(asked), features(stored))
    backward = veto(features(stored), features(asked))
    assert forward == backward, (forward, backward)
    return forward


def near_misses(reason: str, *pairs: tuple[str, str]) -> list:
    return [pytest.param(a, b, reason, id=f"{reason}:{b}") for a, b in pairs]


NEAR_MISSES = [
    *near_misses(
        "numbers",
        ("What was the revenue of Acme in 2022?", "What was the revenue of Acme in 2023?"),
        ("Convert 5 miles to kilometers", "Convert 50 miles to kilometers"),
        ("Give me three ideas for a birthday party", "Give me ten ideas for a birthday party"),
        ("Who won the second round of the election?", "Who won the third round of the election?"),
        ("How do I sort 10 million integers?", "How do I sort 10 thousand integers?"),
        ("What changed in Python 3.11?", "What changed in Python 3.12?"),
        ("What is 15% of 80?", "What is 25% of 80?"),
        ("Summarize the article in under 100 words", "Summarize the article in under 200 words"),
    ),
    *near_misses(
        "numbers",  # units: the same figure of another quantity
        ("How many grams are in 5 kg?", "How many grams are in 5 lb?"),
        ("What is 5% of 200?", "What is 5 of 200?"),
        ("How much is $20 in yen?", "How much is €20 in yen?"),
        ("Is a 5 minute walk enough exercise?", "Is a 5 hour walk enough exercise?"),
        ("Set the oven to 200 degrees Celsius", "Set the oven to 200 degrees Fahrenheit"),
        ("Can meth leave my system in 6 days?", "Can meth leave my system in 6 months?"),
        ("Remind me at 6 am to call home", "Remind me at 6 pm to call home"),
        ("How far is 10 miles in km?", "How far is 10 km in miles?"),
    ),
    *near_misses(
        "negation",
        ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?"),
        ("Why does my code compile?", "Why doesn't my code compile?"),
        ("Should I use a VPN on public wifi?", "Should I never use a VPN on public wifi?"),
        ("Can I take ibuprofen with coffee?", "Can I take ibuprofen without coffee?"),
        ("Which countries have a king?", "Which countries have no king?"),
    ),
    *near_misses(
        "antonym",
        ("Should I buy Tesla stock this week?", "Should I sell Tesla stock this week?"),
        ("How do I increase my credit score?", "How do I decrease my credit score?"),
        ("What are the advantages of remote work?", "What are the disadvantages of remote work?"),
        ("How do I enable dark mode in Chrome?", "How do I disable dark mode in Chrome?"),
        ("How do I encrypt a file with openssl?", "How do I decrypt a file with openssl?"),
        ("What is the maximum heart rate for my age?", "What is the minimum heart rate for my age?"),
        ("Sort the list in ascending order", "Sort the list in descending order"),
        ("What is the biggest planet?", "What is the smallest planet?"),
        # inflected forms of a listed pair ("rise fall", "open close", "slow fast")
        ("Why are house prices rising?", "Why are house prices falling?"),
        ("Why is the garage door closing by itself?", "Why is the garage door opening by itself?"),
        ("Why is my phone charging slowly?", "Why is my phone charging fast?"),
    ),
    *near_misses(
        "entities",
        ("What is the capital of Australia?", "What is the capital of Austria?"),
        ("Who is the CEO of Microsoft?", "Who is the CEO of Google?"),
        ("How do I install Docker on Ubuntu?", "How do I install Docker on Fedora?"),
        ("Summarize the history of Paris for a tourist", "Summarize the history of Rome for a tourist"),
        ("How much RAM does a MacBook need?", "How much memory does a MacBook need?"),
        ("Is the USB port faster than Thunderbolt?", "Is the port faster than Thunderbolt?"),
    ),
    *near_misses(
        "order",
        ("Cheapest flights from New York to London", "Cheapest flights from London to New York"),
        ("Is a cheetah faster than a horse?", "Is a horse faster than a cheetah?"),
        ("Convert celsius to fahrenheit", "Convert fahrenheit to celsius"),
        (
            "Translate this sentence from English to Spanish",
            "Translate this sentence from Spanish to English",
        ),
        ("How do I migrate from MySQL to Postgres?", "How do I migrate from Postgres to MySQL?"),
        ("Who wins in a fight, a lion vs a tiger?", "Who wins in a fight, a tiger vs a lion?"),
    ),
    *near_misses(
        "edit",  # constraints changed in one spot of a long prompt
        (
            f"{CLAUSE} Rewrite the clause above as a haiku.",
            f"{CLAUSE} Rewrite the clause above as a limerick.",
        ),
        (f"{CLAUSE} Is the supplier liable for a delay?", f"{CLAUSE} Is the carrier liable for a delay?"),
        (
            "Write a formal email declining the meeting invitation politely but firmly to my manager",
            "Write a casual email declining the meeting invitation politely but firmly to my manager",
        ),
        (
            "You are a poet. Using the theme of autumn leaves falling in a quiet park, write a sonnet",
            "You are a poet. Using the theme of autumn leaves falling in a quiet park, write an ode",
        ),
    ),
    *near_misses(
        "numbers",  # a constraint that is a number
        (f"{CLAUSE} Summarize it in 3 bullet points.", f"{CLAUSE} Summarize it in 5 bullet points."),
    ),
    *near_misses(
        "entities",  # a constraint that is a name
        (f"{CLAUSE} Translate it into French.", f"{CLAUSE} Translate it into German."),
        (
            "Explain recursion to a beginner, with examples in Python",
            "Explain recursion to a beginner, with examples in Rust",
        ),
    ),
]


@pytest.mark.parametrize(("stored", "asked", "reason"), NEAR_MISSES)
def test_a_near_miss_is_vetoed_by_its_guard(stored, asked, reason):
    assert vetoed(stored, asked) == reason


PARAPHRASES = [
    ("What is the capital city of France?", "What's the capital city of France?"),
    ("How do I reverse a list in Python?", "How can I reverse a list in Python?"),
    ("how do i reverse a list in python", "How do I reverse a list in Python?"),  # case aside
    ("What's the best way to learn Spanish?", "What is the best way to learn Spanish?"),
    ("Explain how photosynthesis works", "How does photosynthesis work?"),
    ("What are some tips for better sleep?", "Give me tips for sleeping better"),
    ("Tell me a joke about cats", "Tell me a cat joke"),
    ("How many legs does a spider have?", "How many legs do spiders have?"),
    ("What year did World War II end?", "When did World War II end?"),
    ("Summarize the plot of Hamlet", "Give me a summary of the plot of Hamlet"),
    ("What is the boiling point of water at sea level?", "At sea level, what is the boiling point of water?"),
    ("Python list comprehension examples", "Examples of list comprehension in Python"),
    ("Write a haiku about autumn", "Please write a haiku about autumn"),
    # the same number, amount or unit, spelt another way
    ("What is 1,000 divided by 8?", "What is 1000 divided by 8?"),
    ("How many grams are in 5 kg?", "How many grams are in 5 kilograms?"),
    ("How many grams are in 5kg?", "How many grams are in 5 kg?"),
    ("Is $20 a good tip for a haircut?", "Is 20 dollars a good tip for a haircut?"),
    ("Is a 5 minute walk enough exercise?", "Is a 5 min walk enough exercise?"),
    # negated both times, if not with the same word
    ("Which fruits are not sweet?", "Which fruits are never sweet?"),
    # a name spelt out, a possessive, a name that opens the sentence
    ("How much RAM does a laptop need?", "How much random access memory does a laptop need?"),
    ("What is Rajan's favourite colour?", "Which colour is Rajan's favourite?"),
    ("Paris: what should a tourist see first?", "What should a tourist in Paris see first?"),
    # the same relation, the same way round
    ("flights from New York to London in May", "May flights from New York to London"),
    # a long prompt where one word is bent or misspelt is the same prompt
    (f"{CLAUSE} What happened to the warehouse?", f"{CLAUSE} What happpened to the warehouse?"),
]


@pytest.mark.parametrize(("stored", "asked"), PARAPHRASES, ids=[b for _, b in PARAPHRASES])
def test_a_paraphrase_passes_every_guard(stored, asked):
    assert vetoed(stored, asked) is None


def test_a_one_word_swap_is_an_edit_only_with_enough_context_around_it():
    context = "you are a poet using the theme of autumn leaves in a quiet park write a".split()

    def swap(shared: int) -> tuple[str, str]:
        head = " ".join(context[:shared])
        return f"{head} haiku", f"{head} limerick"

    assert vetoed(*swap(EDIT_CONTEXT_WORDS - 1)) is None  # the embedding tells these apart
    assert vetoed(*swap(EDIT_CONTEXT_WORDS)) == "edit"
    assert vetoed(*swap(len(context))) == "edit"


def test_numbers_are_read_with_their_units_spelt_one_way():
    assert features("Convert 1,000 kilograms to pounds").numbers == {"1000kg"}
    assert features("Is $5 or 5 dollars or 5 USD the same?").numbers == {"5$"}
    assert features("What is 15 percent of 80, and 15% of 90?").numbers == {"15%", "80", "90"}
    assert features("Bake at 200 degrees celsius for 30 minutes").numbers == {"200c", "30min"}
    assert features("Turn it 90 degrees").numbers == {"90deg"}
    assert features("the third of five tries, twice").numbers == {"third", "five", "twice"}
    # "one", "first" and "once" are idiom more often than numbers ("one of", "first create")
    assert features("First, create one of the files once").numbers == frozenset()


def test_negations_are_counted_in_any_spelling():
    assert features("Is it safe?").negations == 0
    assert features("It isn't, can't and won't be done without help").negations == 4
    assert features("Neither nor, nobody, nothing").negations == 4


def test_entities_are_names_and_acronyms_not_words_that_open_a_sentence():
    assert features("What is the capital of Australia?").entities == {"australia"}
    assert features("How much RAM does a MacBook need? Tell me.").entities == {"ram", "macbook"}
    assert features("Is Rajan's car new?").entities == {"rajan"}
    assert features("Summarize this. Then translate it.").entities == frozenset()


def test_relations_keep_their_two_sides():
    (relation,) = features("flights from Boston to Chicago").relations[1:]
    assert relation == ({"boston"}, {"chicago"})
    assert features("a list of fruits").relations == ()  # no relation marker


def test_guards_import_without_numpy():
    blocker = (
        "import sys\n"
        "class NoNumpy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'numpy':\n"
        "            raise ImportError('numpy is blocked')\n"
        "sys.meta_path.insert(0, NoNumpy())\n"
        "from asgi_llm.cache.guards import features, veto\n"
        "print(veto(features('in 2022'), features('in 2023')))\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "numbers"), done.stderr
