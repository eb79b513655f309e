"""Numbers and units: every number of a text (digits, years, amounts, number words,
ordinals) with the unit next to it, spelt one way ("5 kg" / "5 lb", "$5" / "5%"). The veto: the
two texts do not hold the same set."""

from __future__ import annotations

NUMBER_WORDS = frozenset(
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


def unit_of(words: list[str], at: int) -> str:
    """The unit of the number at `at`, spelt one way ("kg" for "5 kilograms"), or ""."""
    if at and words[at - 1] in _CURRENCY_SIGNS:
        return words[at - 1]  # "$5"
    unit = _UNITS.get(words[at + 1], "") if at + 1 < len(words) else ""
    if unit == "deg" and at + 2 < len(words) and words[at + 2] in _UNITS:
        return _UNITS[words[at + 2]]  # "30 degrees celsius" is "30 C"
    return unit


__all__ = ["NUMBER_WORDS", "unit_of"]
