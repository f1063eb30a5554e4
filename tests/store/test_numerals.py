"""Capital numerals: the bank's conventions, checked on worked examples and by reading every
written number back with a parser written here from the rules, not from the code under test."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.numerals import LIMIT, capital, capital_digits, capital_month, capital_month_number

DIGIT = {c: i for i, c in enumerate("零壹贰叁肆伍陆柒捌玖")}
UNIT = {"拾": 10, "佰": 100, "仟": 1000}


def read_group(text: str) -> int:
    """A group below 10,000: digit-unit pairs, 零 marking skipped places."""
    total, i = 0, 0
    while i < len(text):
        digit = DIGIT[text[i]]
        i += 1
        if digit == 0:
            continue
        unit = 1
        if i < len(text) and text[i] in UNIT:
            unit = UNIT[text[i]]
            i += 1
        total += digit * unit
    return total


def read_capital(text: str) -> int:
    high, sep, low = text.partition("万")
    return read_group(high) * 10000 + read_group(low) if sep else read_group(text)


@pytest.mark.parametrize(("n", "text"), [
    (0, "零"), (1, "壹"), (10, "壹拾"), (15, "壹拾伍"), (20, "贰拾"), (30, "叁拾"),
    (90, "玖拾"), (100, "壹佰"), (105, "壹佰零伍"), (110, "壹佰壹拾"), (1005, "壹仟零伍"),
    (1050, "壹仟零伍拾"), (1680, "壹仟陆佰捌拾"), (10000, "壹万"), (10500, "壹万零伍佰"),
    (100005, "壹拾万零伍"), (107000, "壹拾万柒仟"), (100700, "壹拾万零柒佰"),
    (110000, "壹拾壹万"), (20030010, "贰仟零叁万零壹拾"), (LIMIT - 1, "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖"),
])
def test_integers_follow_the_financial_convention(n: int, text: str) -> None:
    assert capital(n) == text


@pytest.mark.parametrize("bad", [-1, LIMIT, 1.5, True, "30"])
def test_numbers_outside_the_range_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        capital(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=LIMIT - 1))
def test_every_number_reads_back(n: int) -> None:
    text = capital(n)
    assert read_capital(text) == n
    assert "零零" not in text and not (n and text.endswith("零")) and not text.startswith("拾")
    assert set(text) <= set(DIGIT) | set(UNIT) | {"万"}


def test_a_year_is_written_digit_by_digit() -> None:
    assert capital_digits(2026) == "贰零贰陆"
    assert capital_digits("2000") == "贰零零零"
    with pytest.raises(ValueError):
        capital_digits("20２6")  # a full-width digit is not a digit here


@pytest.mark.parametrize(("month", "text"), [
    (1, "零壹"), (2, "零贰"), (3, "叁"), (9, "玖"), (10, "零壹拾"), (11, "壹拾壹"), (12, "壹拾贰"),
])
def test_months_one_two_and_ten_take_a_leading_zero(month: int, text: str) -> None:
    assert capital_month_number(month) == text


def test_a_dues_month() -> None:
    assert capital_month("2026-12") == "贰零贰陆年壹拾贰月"
    assert capital_month("2027-01") == "贰零贰柒年零壹月"
    assert capital_month("2026-07") == "贰零贰陆年柒月"
    for bad in ("2026-13", "2026-00", "2026-1", "202612", "2026/12", ""):
        with pytest.raises(ValueError):
            capital_month(bad)


@given(st.integers(min_value=1900, max_value=2199), st.integers(min_value=1, max_value=12))
def test_every_month_reads_back(year: int, month: int) -> None:
    text = capital_month(f"{year}-{month:02d}")
    year_text, month_text = text.removesuffix("月").split("年")
    assert "".join(str(DIGIT[c]) for c in year_text) == str(year)
    assert read_capital(month_text.removeprefix("零")) == month
