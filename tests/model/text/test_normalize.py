from __future__ import annotations

import threading

import pytest

from model.text.normalize import expand_abbreviations, normalize_numbers, normalize_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Abbreviations (spec §2.1): whole words, any case, lowercase replacement, the period stays.
        ("Mr. Smith", "mister. Smith"),
        ("MRS Jones", "misess Jones"),
        ("Dr. Who and Drs. Watson", "doctor. Who and doctors. Watson"),
        ("St. Louis, Main St", "saint. Louis, Main saint"),
        ("Acme Co. Ltd.", "Acme company. limited."),
        ("Sammy Jr, Maj. Lee, Gen. Grant", "Sammy junior, major. Lee, general. Grant"),
        ("Rev Lt Hon Sgt Capt Esq Col Ft", "reverend lieutenant honorable sergeant captain esquire colonel fort"),
        ("apples, pears etc. btw", "apples, pears et cetera. by the way"),
        ("Drake drives strong cows", "Drake drives strong cows"),  # no whole-word match
        # Commas inside numbers, then integers (the 1000 < n < 3000 rule applies to any integer).
        ("1,000,000 people", "one million people"),
        ("In 1975.", "In nineteen seventy-five ."),
        ("2000 and 2007", "two thousand and two thousand seven"),
        ("1900", "nineteen hundred"),
        ("1905", "nineteen oh five"),
        ("123", "one hundred twenty-three"),
        ("3000 and 1000", "three thousand and one thousand"),
        ("0", "zero"),
        # Currencies.
        ("£100", "one hundred pounds"),
        ("$1,250", "twelve fifty dollars"),
        ("$1", "one dollar"),
        ("$5.50", "five dollars, fifty cents"),
        ("$1.01", "one dollar, one cent"),
        ("$0.25", "twenty-five cents"),
        ("$0", "zero dollars"),
        ("$1.5", "one dollar, fifty cents"),  # our fix: the original read "5 cents"
        # Fractions.
        ("1/2 cup", "one half cup"),
        ("1/4", "one quarter"),
        ("3/2", "three halves"),
        ("3/4", "three quarters"),
        ("7/8", "seven eighth"),
        ("1/3", "one third"),
        # Decimals, percentages, ordinals.
        ("3.14", "three point fourteen"),
        ("50%", "fifty percent"),
        ("2.5% more", "two point five percent more"),
        ("21st 2nd 100th", "twenty-first second one hundredth"),
        # Integers too big for inflect are read digit by digit instead of raising.
        ("1" + "0" * 40, "one " + " ".join(["zero"] * 40)),
        # Symbols the original ignored.
        ("Tom & Jerry", "Tom and Jerry"),
        ("me@example", "me at example"),
        ("#1 fan", "number one fan"),
        ("#tbt", "hash tbt"),
        ("25°C", "twenty-five degrees Celsius"),
        ("77 °F", "seventy-seven degrees Fahrenheit"),
        ("1°C", "one degree Celsius"),
        ("a 90° turn", "a ninety degrees turn"),
        ("2+2=4", "two plus two equals four"),
        ("2×3 and 6÷2", "two times three and six divided by two"),
        ("±5", "plus or minus five"),
        ("€20 or €1", "twenty euros or one euro"),
        ("~5 km", "about five km"),
        ("-5 and (−3)", "minus five and (minus three )"),  # number words are space-padded
        ("x-ray 5-10", "x-ray five - ten"),
        ("100 % and % sign", "one hundred percent and percent sign"),
        ("*very* good_idea 3*4", "very good idea three times four"),
        # Typography and whitespace.
        ("“Hi,” it’s me", '"Hi," it\'s me'),
        ("pages 10–20 – done", "pages ten to twenty — done"),
        ("  a \n\t b   c  ", "a b c"),
        ("", ""),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_abbreviations_apply_in_order_so_mrs_wins_over_mr() -> None:
    assert expand_abbreviations("Mrs Mr") == "misess mister"


def test_number_expansions_are_padded_with_spaces() -> None:
    # The original pads every number word with spaces; the whitespace pass of normalize_text removes them.
    assert normalize_numbers("a1b") == "a one b"
    assert normalize_numbers("$5") == "  five  dollars "


def test_normalize_text_is_deterministic_across_threads() -> None:
    texts = [f"{n} people paid ${n}.{n % 100:02d} on the {n}th of {1900 + n}" for n in range(1, 60)]
    expected = [normalize_text(text) for text in texts]
    results: dict[int, list[str]] = {}

    def work(worker: int) -> None:
        results[worker] = [normalize_text(text) for text in texts]

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == expected for result in results.values())
    assert len(results) == 6
