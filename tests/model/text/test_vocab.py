from __future__ import annotations

import pytest

from model.text.vocab import PAD_ID, SYMBOL_TO_ID, SYMBOLS, TAG_REPEAT, TAGS, VOCAB_SIZE, decode_ids, tag_id

# Ids 1-14 and 67-174 of spec model.md §2.4, transcribed as code points independently of the vocabulary source.
SPEC_PUNCTUATION = "003B 003A 002C 002E 0021 003F 00A1 00BF 2014 2026 0022 00AB 00BB 0020"
SPEC_IPA = (
    "0251 0250 0252 00E6 0253 0299 03B2 0254 0255 00E7 0257 0256 00F0 02A4 0259 0258 025A 025B 025C 025D 025E "
    "025F 0284 0261 0260 0262 029B 0266 0267 0127 0265 029C 0268 026A 029D 026D 026C 026B 026E 029F 0271 026F "
    "0270 014B 0273 0272 0274 00F8 0275 0278 03B8 0153 0276 0298 0279 027A 027E 027B 0280 0281 027D 0282 0283 "
    "0288 02A7 0289 028A 028B 2C71 028C 0263 0264 028D 03C7 028E 028F 0291 0290 0292 0294 02A1 0295 02A2 01C0 "
    "01C1 01C2 01C3 02C8 02CC 02D0 02D1 02BC 02B4 02B0 02B1 02B2 02B7 02E0 02E4 02DE 2193 2191 2192 2197 2198 "
    "0027 0329 1D7B"
)
SPEC_TAGS = (
    "babble boo burp chant cheer cough cry gargle gasp groan grunt hiccup hum laughter moan shout sigh sing "
    "sneeze sniff snore whisper whistle"
).split()


def _chars(code_points: str) -> tuple[str, ...]:
    return tuple(chr(int(code_point, 16)) for code_point in code_points.split())


@pytest.mark.parametrize(
    ("symbol", "expected_id"),
    [
        ("ɑ", 67),
        ("ə", 81),
        ("\u0261", 90),
        ("ɪ", 100),
        ("ŋ", 110),
        ("ɹ", 121),
        ("ʃ", 129),
        ("ʊ", 133),
        ("ʌ", 136),
        ("ʒ", 145),
        ("ʔ", 146),
        ("ˈ", 154),
        ("ˌ", 155),
        ("ː", 156),
        ("'", 172),
        ("\u0329", 173),
        ("ᵻ", 174),
        (";", 1),
        (":", 2),
        (" ", 14),
        ("A", 15),
        ("Z", 40),
        ("a", 41),
        ("z", 66),
        ("[babble]", 175),
        ("[laughter]", 188),
        ("[whistle]", 197),
    ],
)
def test_anchor_ids(symbol: str, expected_id: int) -> None:
    assert SYMBOL_TO_ID[symbol] == expected_id


def test_size_and_padding() -> None:
    assert VOCAB_SIZE == 198
    assert len(SYMBOLS) == 197
    assert PAD_ID == 0
    assert PAD_ID not in SYMBOL_TO_ID.values()
    assert sorted(SYMBOL_TO_ID.values()) == list(range(1, 198))


def test_whole_table_in_spec_order() -> None:
    expected = (
        _chars(SPEC_PUNCTUATION)
        + tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        + _chars(SPEC_IPA)
        + tuple(f"[{tag}]" for tag in SPEC_TAGS)
    )
    assert expected == SYMBOLS


def test_script_g_is_not_ascii_g() -> None:
    assert SYMBOL_TO_ID["g"] == 47
    assert SYMBOL_TO_ID["\u0261"] == 90


def test_all_23_tags_in_id_order() -> None:
    assert list(TAGS) == SPEC_TAGS
    assert [tag_id(tag) for tag in TAGS] == list(range(175, 198))
    assert TAG_REPEAT == 4


@pytest.mark.parametrize("label", ["laughter", "Laughter", "LAUGHTER", "lAuGhTeR"])
def test_tag_id_ignores_case(label: str) -> None:
    assert tag_id(label) == 188


@pytest.mark.parametrize("label", ["foo", "laugh", "[laughter]", ""])
def test_unknown_tag_has_no_id(label: str) -> None:
    assert tag_id(label) is None


def test_decode_ids_inverts_the_table() -> None:
    assert decode_ids([48, 81, 52, 154, 55, 133, 14, 188, 188, 5]) == "həlˈoʊ [laughter][laughter]!"
    assert decode_ids([0, 41, 0]) == "a"
    assert decode_ids(range(1, 198)) == "".join(SYMBOLS)


@pytest.mark.parametrize("bad_id", [-1, 198, 10_000])
def test_decode_ids_refuses_ids_outside_the_vocabulary(bad_id: int) -> None:
    with pytest.raises(ValueError, match="outside the vocabulary"):
        decode_ids([41, bad_id])
