"""English text normalisation before phonemization: what espeak-ng should read aloud.

`normalize_text` runs these passes, in order:

1. typography: curly quotes become ASCII `"` and `'` (the vocabulary has only ASCII quotes), an en dash
   between numbers becomes " to ", any other en dash becomes an em dash (a pause symbol, id 9).
2. abbreviations (spec model.md §2.1, kept exactly): 20 case-insensitive whole-word rules in a fixed order,
   lowercase replacements, a trailing period stays ("Dr. No" -> "doctor. No", "St." is always "saint").
3. symbols the original ignored (ours): "#5" -> "number 5", other "#" -> "hash"; "°C"/"°F" -> "degrees
   Celsius"/"degrees Fahrenheit", other "°" -> "degrees" ("1°" -> "1 degree"); "&" -> "and"; "@" -> "at";
   "+" -> "plus"; "=" -> "equals"; "×" -> "times"; "÷" -> "divided by"; "±" -> "plus or minus";
   "€5" -> "5 euros"; "~5" -> "about 5"; a "-" or "−" that starts a number ("-5", "(−3") -> "minus";
   a "%" that follows no number -> "percent"; "*" and "_" (markdown emphasis, snake_case) -> a space.
4. numbers (spec §2.1, kept exactly, with one fix): commas inside numbers, £, $, fractions, decimals,
   percentages, ordinals, then integers with the 1000 < n < 3000 "year" rule (1975 -> "nineteen
   seventy-five", also for amounts: "$1,250" -> "twelve fifty dollars", as the original said it).
   The fix: dollar cents are read as cents ("$1.5" -> "1 dollar, 50 cents", the original said "5 cents");
   a dollar amount with more than two decimals is read as a decimal number of dollars. Integers too
   large for inflect are read digit by digit instead of raising.
5. whitespace: every run of whitespace becomes one space, and the ends are stripped.

Everything is a pure function of the input text (no locale, no state), so it is deterministic. Passes 2 and 4
reproduce the original because the published weights were trained on its output (spec §0.1).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import inflect

# --- 1. typography --------------------------------------------------------------------------------------

_TYPOGRAPHY = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'", "′": "'", "″": '"'})
_NUMBER_RANGE_DASH_RE = re.compile(r"(?<=[0-9])\s*–\s*(?=[0-9])")


def _normalize_typography(text: str) -> str:
    text = text.translate(_TYPOGRAPHY)
    text = _NUMBER_RANGE_DASH_RE.sub(" to ", text)
    return text.replace("–", "—")


# --- 2. abbreviations (spec §2.1, in this order) ----------------------------------------------------------

_ABBREVIATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"\b{abbreviation}\b", re.IGNORECASE), expansion)
    for abbreviation, expansion in (
        ("mrs", "misess"),
        ("mr", "mister"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("maj", "major"),
        ("gen", "general"),
        ("drs", "doctors"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
        ("etc", "et cetera"),
        ("btw", "by the way"),
    )
)


def expand_abbreviations(text: str) -> str:
    for pattern, expansion in _ABBREVIATIONS:
        text = pattern.sub(expansion, text)
    return text


# --- 3. symbols (ours) ------------------------------------------------------------------------------------

_SYMBOL_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"#\s*(?=[0-9])", " number "),
        (r"#", " hash "),
        # A lone 1 (not 21, not 1.5) takes the singular.
        (r"(?<![0-9.,])1\s*°\s*C\b", "1 degree Celsius "),
        (r"(?<![0-9.,])1\s*°\s*F\b", "1 degree Fahrenheit "),
        (r"(?<![0-9.,])1\s*°", "1 degree "),
        (r"\s*°\s*C\b", " degrees Celsius "),
        (r"\s*°\s*F\b", " degrees Fahrenheit "),
        (r"\s*°", " degrees "),
        (r"&", " and "),
        (r"@", " at "),
        (r"\+", " plus "),
        (r"=", " equals "),
        (r"×", " times "),
        (r"÷", " divided by "),
        (r"±", " plus or minus "),
        (r"€\s*1(?![0-9.,])", " 1 euro "),
        (r"€\s*([0-9][0-9,]*(?:\.[0-9]+)?)", r" \1 euros "),
        (r"~\s*(?=[0-9])", " about "),
        # Only where a number starts: "5-10" and "T-shirt" keep their hyphen (espeak reads them well).
        (r"(?<![^\s(\[{\"'/])[-−](?=[0-9])", "minus "),
        (r"(?<![0-9])%", " percent "),
        (r"(?<=[0-9])\s*\*\s*(?=[0-9])", " times "),
        (r"[*_]+", " "),
    )
)


def expand_symbols(text: str) -> str:
    for pattern, replacement in _SYMBOL_RULES:
        text = pattern.sub(replacement, text)
    return text


# --- 4. numbers (spec §2.1, in this order) ---------------------------------------------------------------

_COMMA_NUMBER_RE = re.compile(r"[0-9][0-9,]+[0-9]")
_POUNDS_RE = re.compile(r"£([0-9,]*[0-9]+)")
_DOLLARS_RE = re.compile(r"\$([0-9.,]*[0-9]+)")
_FRACTION_RE = re.compile(r"([0-9]+)/([0-9]+)")
_DECIMAL_RE = re.compile(r"([0-9]+)\.([0-9]+)")
_PERCENT_RE = re.compile(r"([0-9.,]*[0-9]+)%")
_ORDINAL_RE = re.compile(r"[0-9]+(?:st|nd|rd|th)")
_INTEGER_RE = re.compile(r"[0-9]+")

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# inflect.engine keeps per-call state on the instance, so each thread gets its own.
_local = threading.local()


def _inflect() -> inflect.engine:
    """This thread's engine. inflect is imported on first use: its import takes ~3 s (typeguard instruments
    the whole module), which text without numbers should not pay; `Phonemizer.load` pays it at start-up."""
    engine: inflect.engine | None = getattr(_local, "engine", None)
    if engine is None:
        import inflect

        engine = inflect.engine()
        _local.engine = engine
    return engine


def _number_words(number: int, **options: str | int) -> str:
    from inflect import NumOutOfRangeError

    try:
        return str(_inflect().number_to_words(number, **options))  # type: ignore[arg-type]
    except NumOutOfRangeError:
        return " ".join(_DIGIT_WORDS[int(digit)] for digit in str(number))


def _expand_dollars(match: re.Match[str]) -> str:
    amount = match.group(1).replace(",", "")
    parts = amount.split(".")
    if len(parts) > 2:
        return f" {amount} dollars "
    dollars = int(parts[0]) if parts[0] else 0
    fraction = parts[1] if len(parts) == 2 else ""
    if len(fraction) > 2:
        return f" {dollars}.{fraction} dollars "
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    dollar_unit = "dollar" if dollars == 1 else "dollars"
    cent_unit = "cent" if cents == 1 else "cents"
    if dollars and cents:
        return f" {dollars} {dollar_unit}, {cents} {cent_unit} "
    if dollars:
        return f" {dollars} {dollar_unit} "
    if cents:
        return f" {cents} {cent_unit} "
    return " zero dollars "


def _expand_fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator == 2:
        return " one half " if numerator == 1 else f" {_number_words(numerator)} halves "
    if denominator == 4:
        return " one quarter " if numerator == 1 else f" {_number_words(numerator)} quarters "
    return f" {_number_words(numerator)} {_inflect().ordinal(_number_words(denominator))} "


def _expand_ordinal(match: re.Match[str]) -> str:
    from inflect import NumOutOfRangeError

    try:
        return str(_inflect().number_to_words(match.group(0)))
    except NumOutOfRangeError:
        return match.group(0)  # left for the integer pass, which reads it digit by digit


def _expand_integer(match: re.Match[str]) -> str:
    number = int(match.group(0))
    if 1000 < number < 3000:
        if number == 2000:
            return " two thousand "
        if 2000 < number < 2010:
            return f" two thousand {_number_words(number % 100)} "
        if number % 100 == 0:
            return f" {_number_words(number // 100)} hundred "
        return " " + _number_words(number, andword="", zero="oh", group=2).replace(", ", " ") + " "
    return f" {_number_words(number, andword='')} "


_NUMBER_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_COMMA_NUMBER_RE, lambda match: match.group(0).replace(",", "")),
    (_POUNDS_RE, r"\1 pounds"),
    (_DOLLARS_RE, _expand_dollars),
    (_FRACTION_RE, _expand_fraction),
    (_DECIMAL_RE, r"\1 point \2"),
    (_PERCENT_RE, r"\1 percent "),
    (_ORDINAL_RE, _expand_ordinal),
    (_INTEGER_RE, _expand_integer),
)


def normalize_numbers(text: str) -> str:
    for pattern, replacement in _NUMBER_RULES:
        text = pattern.sub(replacement, text)
    return text


# --- 5. whitespace ----------------------------------------------------------------------------------------

_WHITESPACE_RE = re.compile(r"\s+")


def load_number_words() -> None:
    """Import inflect now (about 3 s) rather than inside the first request that contains a number."""
    _inflect()


def normalize_text(text: str) -> str:
    """Rewrite `text` into words espeak-ng reads correctly (see the module docstring for every pass)."""
    text = _normalize_typography(text)
    text = expand_abbreviations(text)
    text = expand_symbols(text)
    text = normalize_numbers(text)
    return _WHITESPACE_RE.sub(" ", text).strip()
