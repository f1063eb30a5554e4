"""Validation rules (DESIGN §2.2): bad input is refused with a message naming the field and the
rule, in Chinese and English; good input is stored in one normal form.

Field values go through ``coerce``, whole records through ``check_record``; references and the
all-or-nothing batch go through a real encrypted store. Policy ids (M-x.y) refer to
``domain/MANDATE.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import TEST_KDF, Batch, Store, ValidationError
from store.errors import Issue
from store.ids import new_ulid
from store.schema import CHOICES, TYPES, Field
from store.validate import RULES, check_record, coerce

TODAY = dt.date(2025, 6, 1)
PASSPHRASE = "passphrase-123"
ORG = {"name": "城关村党支部", "kind": "branch"}

MEMBER, FLOW, TRANSFER = TYPES["member"], TYPES["flow"], TYPES["transfer"]


# -- GB 11643 numbers, built from the standard rather than from the code under test -------------

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = {0: "1", 1: "0", 2: "X", 3: "9", 4: "8", 5: "7", 6: "6", 7: "5", 8: "4", 9: "3", 10: "2"}
# GB/T 2260 province-level codes (71 Taiwan; 81/82 Hong Kong/Macao; 83 Taiwan residence permits).
PROVINCE_CODES = (
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83",
)


def check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643 §5 writes it."""
    assert len(first17) == 17
    return CHECK[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


def id_number(region: str = "110105", birth: str = "19491231", seq: str = "002") -> str:
    body = region + birth + seq
    return body + check_char(body)


def test_helper_reproduces_the_standards_example() -> None:
    assert id_number() == "11010519491231002X"


# -- helpers ----------------------------------------------------------------------------------

def refused(f: Field, raw: Any, rule: str, today: dt.date = TODAY) -> Issue:
    result = coerce(f, raw, today=today)
    assert isinstance(result, Issue), f"{f.name}={raw!r} was accepted as {result!r}"
    assert (result.field, result.rule) == (f.name, rule), result
    assert result.zh and result.en
    return result


def accepted(f: Field, raw: Any, today: dt.date = TODAY) -> Any:
    result = coerce(f, raw, today=today)
    assert not isinstance(result, Issue), f"{f.name}={raw!r} refused: {result.en}"
    return result


ORG_ID = new_ulid()
OTHER_ORG = {"id": ORG_ID, "type": "org", "name": "上级党委", "kind": "committee"}


class Alone:
    """A register holding only ``OTHER_ORG``, as ``check_record`` reads it (validate.Context):
    no other records, flows or ID numbers to collide with."""

    def lookup(self, rec_id: str) -> dict[str, Any] | None:
        return {ORG_ID: OTHER_ORG}.get(rec_id)

    def stored(self, rec_id: str) -> dict[str, Any] | None:
        return self.lookup(rec_id)

    def flows_of(self, member_id: str) -> list[Any]:
        return []

    def id_number_holder(self, number: str, rec_id: str) -> tuple[str, str] | None:
        return None


def rules(type_name: str, record: dict[str, Any]) -> set[tuple[str, str]]:
    """The (field, rule) pairs ``check_record`` reports for a record."""
    return {(i.field, i.rule) for i in check_record(TYPES[type_name], record, Alone(), TODAY)}


def member(**values: Any) -> dict[str, Any]:
    return {"name": "张三", "home_org_id": ORG_ID, **values}


def flow(**values: Any) -> dict[str, Any]:
    return {"member_id": None, "reason": "work", "left_on": "2025-01-10",
            "status": "pending_report", **values}


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Store]:
    s, _ = Store.create(tmp_path / "s", PASSPHRASE, kdf=TEST_KDF, org=dict(ORG))
    yield s
    s.close()


def own(s: Store) -> str:
    return str(s.meta["own_org_id"])


# -- resident identity number (GB 11643) ------------------------------------------------------

ID = MEMBER["id_number"]


def test_id_number_valid_example_accepted() -> None:
    """DESIGN §2.2: ID numbers are checksum-validated."""
    assert accepted(ID, "11010519491231002X") == "11010519491231002X"


def test_id_number_lowercase_x_normalised_to_upper() -> None:
    assert accepted(ID, "11010519491231002x") == "11010519491231002X"


def test_id_number_spaces_removed() -> None:
    assert accepted(ID, " 110105 19491231 002X ") == "11010519491231002X"


def test_id_number_every_wrong_check_char_refused() -> None:
    """DESIGN §2.2: a mistyped number fails the ISO 7064 MOD 11-2 check (rule id_checksum)."""
    body = "11010519491231002"
    wrong = [c for c in "0123456789X" if c != "X"]
    assert len(wrong) == 10
    for c in wrong:
        refused(ID, body + c, "id_checksum")


@pytest.mark.parametrize("raw", [
    "1101051949123100",  # 16
    "11010519491231002",  # 17
    "11010519491231002X1",  # 19
    "11010519491231002Y",  # last char neither digit nor X
    "X10105194912310021",  # X not last
    "110105194912X1002X",
    "11010519491231002A",
    "ABCDEFGHIJKLMNOPQR",
    "11010549123100X",  # 15 characters with X
    "1101054912310",  # 13
    "11010519491231002XX",
])
def test_id_number_wrong_length_or_letters_refused(raw: str) -> None:
    refused(ID, raw, "id_format")


@pytest.mark.parametrize("region", ["000000", "100000", "160000", "200000", "390000", "470000",
                                    "550000", "660000", "700000", "800000", "900000", "990000"])
def test_id_number_invalid_province_code_refused(region: str) -> None:
    refused(ID, id_number(region=region), "id_region")


@pytest.mark.parametrize("code", PROVINCE_CODES)
def test_id_number_every_province_code_accepted(code: str) -> None:
    number = id_number(region=code + "0101")
    assert accepted(ID, number) == number


@pytest.mark.parametrize("birth", [
    "19490230",  # 30 February
    "19490229",  # not a leap year
    "19491301",  # month 13
    "19490001",  # month 0
    "19490100",  # day 0
    "19490431",  # 31 April
    "18991231",  # before 1900
    "20250602",  # tomorrow
    "20990101",  # future
])
def test_id_number_impossible_or_future_birth_date_refused(birth: str) -> None:
    """DESIGN §2.2: the birth date embedded in the number must be real and not in the future."""
    refused(ID, id_number(birth=birth), "id_birth_date")


def test_id_number_born_today_and_on_29_february_accepted() -> None:
    accepted(ID, id_number(birth=TODAY.strftime("%Y%m%d")))
    accepted(ID, id_number(birth="20000229"))


def test_id_number_old_15_digit_form_accepted() -> None:
    """First-generation cards (GB 11643-1989): 15 digits, two-digit year 19yy, no check char."""
    assert accepted(ID, "110105491231002") == "110105491231002"


def test_id_number_old_15_digit_form_with_bad_date_refused() -> None:
    refused(ID, "110105490230002", "id_birth_date")
    refused(ID, "990105491231002", "id_region")


def test_id_number_not_text_refused() -> None:
    refused(ID, 11010519491231002, "id_format")


def test_id_number_empty_clears() -> None:
    assert coerce(ID, "", today=TODAY) is None
    assert coerce(ID, "   ", today=TODAY) is None


def test_id_birth_mismatch_refused() -> None:
    """DESIGN §2.2: the birth date inside the number must equal birth_date."""
    assert ("birth_date", "id_birth_mismatch") in rules(
        "member", member(id_number="11010519491231002X", birth_date="1949-12-30"))
    assert ("birth_date", "id_birth_mismatch") in rules(
        "member", member(id_number="110105491231002", birth_date="1949-12-30"))


def test_id_birth_match_accepted() -> None:
    assert rules("member", member(id_number="11010519491231002X", birth_date="1949-12-31")) == set()
    assert rules("member", member(id_number="110105491231002", birth_date="1949-12-31")) == set()


@pytest.mark.parametrize("digit", range(10))
def test_id_gender_follows_sequence_code_parity(digit: int) -> None:
    """GB 11643: the 17th character (sequence code's last digit) is odd for men, even for women."""
    number = id_number(seq=f"00{digit}")
    coded, other = ("male", "female") if digit % 2 else ("female", "male")
    assert rules("member", member(id_number=number, gender=coded)) == set()
    assert rules("member", member(id_number=number, gender=other)) == {
        ("gender", "id_gender_mismatch")}


def test_id_gender_parity_of_15_digit_number_uses_last_digit() -> None:
    assert rules("member", member(id_number="110105491231002", gender="female")) == set()
    assert rules("member", member(id_number="110105491231001", gender="female")) == {
        ("gender", "id_gender_mismatch")}


valid_numbers = st.builds(
    lambda province, county, born, seq: id_number(
        province + f"{county:04d}", born.strftime("%Y%m%d"), f"{seq:03d}"),
    st.sampled_from(PROVINCE_CODES),
    st.integers(0, 9999),
    st.dates(dt.date(1900, 1, 1), TODAY),
    st.integers(0, 999),
)


@settings(max_examples=300)
@given(valid_numbers, st.booleans())
def test_any_valid_id_number_accepted(number: str, lower: bool) -> None:
    raw = number.lower() if lower else number
    assert coerce(ID, raw, today=TODAY) == number


def _plausible(number: str) -> bool:
    """Province and birth date are valid, so only the check character can refuse it."""
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return number[:2] in PROVINCE_CODES and dt.date(1900, 1, 1) <= born <= TODAY


@settings(max_examples=300)
@given(valid_numbers, st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_refused(number: str, position: int, delta: int) -> None:
    """MOD 11-2 catches every single-digit error: 11 is prime and no weight is 0 mod 11."""
    digit = (int(number[position]) + delta) % 10
    changed = number[:position] + str(digit) + number[position + 1:]
    result = coerce(ID, changed, today=TODAY)
    assert isinstance(result, Issue), changed
    assert result.rule in ("id_checksum", "id_region", "id_birth_date")
    if _plausible(changed):
        assert result.rule == "id_checksum"


@settings(max_examples=100)
@given(st.sampled_from(PROVINCE_CODES), st.dates(dt.date(1900, 1, 1), dt.date(1999, 12, 31)),
       st.integers(0, 999))
def test_any_valid_15_digit_number_accepted(province: str, born: dt.date, seq: int) -> None:
    number = f"{province}0101{born:%y%m%d}{seq:03d}"
    assert coerce(ID, number, today=TODAY) == number


# -- mobile numbers ---------------------------------------------------------------------------

PHONE = MEMBER["phone"]


@pytest.mark.parametrize("second", "3456789")
def test_phone_every_mobile_prefix_accepted(second: str) -> None:
    """DESIGN §2.2: 11-digit mainland mobile numbers 1[3-9]xxxxxxxxx."""
    number = f"1{second}012345678"
    assert accepted(PHONE, number) == number


@pytest.mark.parametrize("raw", [
    "138 0013 8000", "138-0013-8000", " 13800138000 ", "+86 138 0013 8000", "+8613800138000",
    "+86-138-0013-8000", "0086 13800138000", "(+86) 138 0013 8000",
])
def test_phone_spaces_hyphens_and_country_code_normalised(raw: str) -> None:
    assert accepted(PHONE, raw) == "13800138000"


@pytest.mark.parametrize("raw", [
    "12012345678", "12912345678",  # 12x: not a mobile range
    "11012345678", "10012345678", "23800138000",
    "1380013800",  # 10 digits
    "138001380001",  # 12 digits
    "+86 1380013800",
    "1380013800a", "phone", "010-12345678",
])
def test_phone_bad_numbers_refused(raw: str) -> None:
    refused(PHONE, raw, "phone")


def test_phone_refused_on_application_too() -> None:
    refused(TYPES["application"]["phone"], "12345678901", "phone")


# -- dates, months, years ---------------------------------------------------------------------

BIRTH = MEMBER["birth_date"]  # past=True
EXPECTED = FLOW["expected_until"]  # may lie in the future


def test_date_leap_day_accepted_only_in_leap_years() -> None:
    assert accepted(EXPECTED, "2024-02-29") == "2024-02-29"
    assert accepted(EXPECTED, "2000-02-29") == "2000-02-29"
    refused(EXPECTED, "2023-02-29", "date_exists")
    refused(EXPECTED, "1900-02-29", "date_exists")


@pytest.mark.parametrize("raw", ["2024-02-30", "2024-04-31", "2024-13-01", "2024-00-10",
                                 "2024-01-00", "2024-01-32"])
def test_date_that_does_not_exist_refused(raw: str) -> None:
    issue = refused(EXPECTED, raw, "date_exists")
    assert raw in issue.zh and raw in issue.en


@pytest.mark.parametrize("raw", ["2024/01/01", "2024-1-1", "20240101", "01-01-2024",
                                 "2024-01-01T08:00", "2024.01.01", "2024年1月1日", "yesterday",
                                 "24-01-01"])
def test_date_in_other_formats_refused(raw: str) -> None:
    refused(EXPECTED, raw, "date_format")


def test_date_stripped_and_iso() -> None:
    assert accepted(EXPECTED, " 2024-03-01 ") == "2024-03-01"


def test_date_past_field_refuses_the_future() -> None:
    """DESIGN §2.2: real dates, not in the future where that makes no sense."""
    assert accepted(BIRTH, TODAY.isoformat()) == TODAY.isoformat()
    refused(BIRTH, (TODAY + dt.timedelta(days=1)).isoformat(), "date_future")
    refused(FLOW["reported_on"], "2030-01-01", "date_future")
    refused(FLOW["left_on"], "2030-01-01", "date_future")


def test_date_future_allowed_where_it_makes_sense() -> None:
    assert accepted(EXPECTED, "2030-01-01") == "2030-01-01"
    assert accepted(MEMBER["probation_ends_on"], "2026-03-01") == "2026-03-01"
    assert accepted(TRANSFER["receipt_due_on"], "2025-07-01") == "2025-07-01"


def test_date_implausible_year_refused() -> None:
    refused(BIRTH, "1899-12-31", "date_range")
    refused(EXPECTED, "2201-01-01", "date_range")


def test_date_every_past_field_refuses_tomorrow() -> None:
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    past = [f for t in TYPES.values() for f in t.fields if f.kind == "date" and f.past]
    assert len(past) > 10
    for f in past:
        refused(f, tomorrow, "date_future")


MONTH = TRANSFER["dues_paid_until"]


def test_month_accepted() -> None:
    assert accepted(MONTH, "2024-03") == "2024-03"
    assert accepted(MONTH, " 2024-12 ") == "2024-12"


@pytest.mark.parametrize("raw", ["2024-3", "2024-13", "2024-00", "202403", "2024-03-01",
                                 "2024/03", "1899-12", "03-2024"])
def test_month_bad_refused(raw: str) -> None:
    refused(MONTH, raw, "month_format")


YEAR = TYPES["appraisal"]["year"]


def test_year_accepted() -> None:
    """M-2.3e: democratic appraisal per calendar year."""
    assert accepted(YEAR, "2024") == 2024
    assert accepted(YEAR, 2024) == 2024
    assert accepted(YEAR, "1921") == 1921
    assert accepted(YEAR, str(TODAY.year + 1)) == TODAY.year + 1


@pytest.mark.parametrize("raw", ["24", "1920", str(TODAY.year + 2), "二〇二四", "2024年",
                                 "20245", "abcd"])
def test_year_bad_refused(raw: str) -> None:
    refused(YEAR, raw, "year_format")


# -- enums, booleans, numbers, division codes, text -------------------------------------------

ENUM_FIELDS = [(t.name, f.name) for t in TYPES.values() for f in t.fields if f.kind == "enum"]


@pytest.mark.parametrize(("type_name", "field_name"), ENUM_FIELDS)
def test_enum_values_and_chinese_labels_accepted(type_name: str, field_name: str) -> None:
    """DESIGN §2.2: enum values; people type the Chinese label (男, 务工经商, 电话) too."""
    f = TYPES[type_name][field_name]
    for value, zh, _en in CHOICES[f.choices or ""]:
        assert accepted(f, value) == value
        assert accepted(f, zh) == value
        assert accepted(f, f" {zh} ") == value


@pytest.mark.parametrize(("type_name", "field_name"), ENUM_FIELDS)
def test_enum_other_values_refused(type_name: str, field_name: str) -> None:
    f = TYPES[type_name][field_name]
    issue = refused(f, "nonsense", "enum")
    # the message lists what is allowed
    for value in f.choice_values():
        assert value in issue.en and value in issue.zh


@pytest.mark.parametrize("raw", ["Male", "MALE", "m", "男性", "man", 1])
def test_enum_gender_near_misses_refused(raw: Any) -> None:
    refused(MEMBER["gender"], raw, "enum")


REACHED = TYPES["contact"]["reached"]


@pytest.mark.parametrize(("raw", "value"), [
    ("yes", True), ("YES", True), (" y ", True), ("true", True), ("1", True), ("是", True),
    (True, True), ("no", False), ("No", False), ("n", False), ("false", False), ("0", False),
    ("否", False), (False, False),
])
def test_bool_words_accepted(raw: Any, value: bool) -> None:
    assert accepted(REACHED, raw) is value


@pytest.mark.parametrize("raw", ["maybe", "ok", "2", "好", "yess", "-1"])
def test_bool_other_words_refused(raw: str) -> None:
    refused(REACHED, raw, "bool")


MONEY = TYPES["fund"]["amount_yuan"]


@pytest.mark.parametrize(("raw", "value"), [
    ("12.5", "12.50"), ("12.50", "12.50"), ("0", "0.00"), (100, "100.00"), ("1234.56", "1234.56"),
    (" 3 ", "3.00"), (0.1, "0.10"), ("1000000000", "1000000000.00"),
])
def test_money_two_decimals(raw: Any, value: str) -> None:
    """M-5.3: the funding ledger keeps yuan with fen, as text, never binary floats."""
    assert accepted(MONEY, raw) == value


@pytest.mark.parametrize("raw", ["12.345", "0.001", "-1", "-0.01", "abc", "NaN", "Infinity",
                                 "1e10", "¥12", "12,5", "1000000000.01"])
def test_money_bad_refused(raw: str) -> None:
    refused(MONEY, raw, "money")


VALID_DAYS = TRANSFER["valid_days"]
HOURS = TYPES["study"]["hours"]


@pytest.mark.parametrize(("raw", "value"), [("30", 30), (30, 30), ("0", 0), ("3.0", 3), (" 7 ", 7)])
def test_int_accepted(raw: Any, value: int) -> None:
    result = accepted(VALID_DAYS, raw)
    assert result == value and isinstance(result, int)


@pytest.mark.parametrize("raw", ["-1", -1, "3.5", "abc", True, "inf", "NaN", "10000000000"])
def test_int_bad_refused(raw: Any) -> None:
    refused(VALID_DAYS, raw, "integer")


@pytest.mark.parametrize(("raw", "value"), [("1.5", 1.5), (2, 2.0), ("0", 0.0), ("0.25", 0.25)])
def test_hours_accepted(raw: Any, value: float) -> None:
    """M-3.1: study hours per member."""
    assert accepted(HOURS, raw) == value


@pytest.mark.parametrize("raw", ["-0.5", -1, "abc", "inf", "nan", False, "1,5"])
def test_hours_bad_refused(raw: Any) -> None:
    refused(HOURS, raw, "number")


DIVISION = TYPES["org"]["division_code"]


@pytest.mark.parametrize("raw", ["330106", "330106001", "330106001001", "110000", "650000"])
def test_division_code_accepted(raw: str) -> None:
    """DESIGN §2.1: GB/T 2260 codes, 6 digits, or 9/12 for township/village level."""
    assert accepted(DIVISION, raw) == raw


@pytest.mark.parametrize("raw", ["33010", "3301060", "33010600", "3301060010", "33010600100",
                                 "3301060010011", "000000", "990000", "100000", "33010a",
                                 "330 106"])
def test_division_code_bad_refused(raw: str) -> None:
    refused(DIVISION, raw, "division_code")


NAME = MEMBER["name"]  # text, max 50
NOTES = MEMBER["notes"]  # longtext, max 2000


def test_text_stripped_and_nfc() -> None:
    assert accepted(NAME, "  张三  ") == "张三"
    assert accepted(NAME, "Ame\u0301lie") == "Am\u00e9lie"


def test_text_length_limit() -> None:
    assert accepted(NAME, "张" * 50) == "张" * 50
    issue = refused(NAME, "张" * 51, "too_long")
    assert "50" in issue.zh and "50" in issue.en
    assert accepted(NAME, " " + "张" * 50 + " ") == "张" * 50  # counted after stripping
    assert accepted(NOTES, "记" * 2000) == "记" * 2000
    refused(NOTES, "记" * 2001, "too_long")
    refused(TYPES["org"]["name"], "x" * 201, "too_long")


@pytest.mark.parametrize("raw", ["张\x00三", "张\x1b[31m三", "张\n三", "张\t三", "张\r三", "张\x7f三",
                                 "张\x85三"])
def test_text_control_characters_refused(raw: str) -> None:
    refused(NAME, raw, "control_chars")


def test_longtext_allows_newlines_and_tabs_but_not_other_controls() -> None:
    assert accepted(NOTES, "第一行\n\t第二行") == "第一行\n\t第二行"
    refused(NOTES, "响铃\x07", "control_chars")
    refused(NOTES, "a\x00b", "control_chars")


def test_text_not_a_string_refused() -> None:
    refused(NAME, 123, "not_text")
    refused(NAME, ["张三"], "not_text")


def test_empty_values_clear_the_field() -> None:
    for f in (NAME, BIRTH, PHONE, MONEY, REACHED, MEMBER["gender"]):
        assert coerce(f, None, today=TODAY) is None
        assert coerce(f, "", today=TODAY) is None
        assert coerce(f, "  ", today=TODAY) is None


def test_refs_split_stripped_and_deduplicated() -> None:
    targets = TYPES["task"]["target_org_ids"]
    assert accepted(targets, "A, B,A,,") == ["A", "B"]
    assert accepted(targets, ["A", "B", "A"]) == ["A", "B"]
    refused(targets, [1, 2], "refs_format")


def test_absences_need_member_and_reason() -> None:
    """M-3.2: meeting absences are recorded with reasons."""
    absences = TYPES["meeting"]["absences"]
    assert accepted(absences, [{"member_id": "M1", "reason": " 外出务工 "}]) == [
        {"member_id": "M1", "reason": "外出务工"}]
    refused(absences, [{"member_id": "M1"}], "absence_format")
    refused(absences, [{"member_id": "M1", "reason": "  "}], "absence_format")
    refused(absences, ["M1"], "absence_format")
    refused(absences, "M1", "absence_format")


@pytest.mark.parametrize(("f", "raw"), [
    (PHONE, "138００１３８０００"),
    (ID, "11０105194912310０2X"),
    (DIVISION, "33０１０６"),
    (MONTH, "２０２４-０３"),
], ids=["phone", "id_number", "division_code", "month"])
def test_digits_typed_in_full_width_are_normalised_or_refused(f: Field, raw: str) -> None:
    """A Chinese input method in full-width mode types ０-９. Such a value must be stored with
    ASCII digits or refused: stored as typed, the phone and ID suffix are never found by search
    and the national system's import rejects them."""
    result = coerce(f, raw, today=TODAY)
    assert isinstance(result, Issue) or result.isascii(), f"{f.name} stored as {result!r}"


def test_full_width_date_normalised() -> None:
    assert accepted(EXPECTED, "２０２４-０１-０１") == "2024-01-01"


# -- required fields --------------------------------------------------------------------------

def test_required_fields_reported() -> None:
    found = rules("flow", {})
    assert {("member_id", "required"), ("reason", "required"), ("left_on", "required"),
            ("status", "required")} <= found
    assert ("name", "required") in rules("member", {"home_org_id": ORG_ID})
    assert ("amount_yuan", "required") in rules(
        "fund", {"org_id": ORG_ID, "on": "2025-01-01", "kind": "expense", "purpose": "education"})


def test_every_required_field_of_every_type_reported_when_missing() -> None:
    for rtype in TYPES.values():
        found = {i.field for i in check_record(rtype, {}, Alone(), TODAY) if i.rule == "required"}
        assert found == {f.name for f in rtype.fields if f.required}, rtype.name


def test_required_missing_through_the_store(reg: Store) -> None:
    with pytest.raises(ValidationError) as exc:
        reg.put("member", {"home_org_id": own(reg), "phone": "13800138000"})
    assert (exc.value.field, exc.value.rule) == ("name", "required")


def test_clearing_a_required_field_refused(reg: Store) -> None:
    mid = reg.put("member", {"name": "张三", "home_org_id": own(reg)})
    with pytest.raises(ValidationError) as exc:
        reg.put("member", {"name": None}, mid)
    assert (exc.value.field, exc.value.rule) == ("name", "required")
    with pytest.raises(ValidationError) as exc:
        reg.put("member", {"name": "   "}, mid)
    assert exc.value.rule == "required"
    assert reg.get(mid)["name"] == "张三"  # type: ignore[index]


# -- references (through a real store) --------------------------------------------------------

def test_reference_to_own_org_accepted(reg: Store) -> None:
    mid = reg.put("member", {"name": "张三", "home_org_id": own(reg)})
    assert reg.get(mid)["home_org_id"] == own(reg)  # type: ignore[index]


def test_reference_to_missing_record_refused(reg: Store) -> None:
    """DESIGN §2.2: references to records that exist."""
    ghost = new_ulid()
    with pytest.raises(ValidationError) as exc:
        reg.put("member", {"name": "张三", "home_org_id": ghost})
    assert (exc.value.field, exc.value.rule) == ("home_org_id", "ref_missing")
    assert ghost in exc.value.en and ghost in exc.value.zh
    assert list(reg.live("member")) == []


def test_reference_to_record_of_wrong_type_refused(reg: Store) -> None:
    with pytest.raises(ValidationError) as exc:
        reg.put("flow", {"member_id": own(reg), "reason": "work", "left_on": "2025-01-10",
                         "status": "pending_report"})
    assert (exc.value.field, exc.value.rule) == ("member_id", "ref_type")
    assert "党员" in exc.value.zh and "member" in exc.value.en
    mid = reg.put("member", {"name": "张三", "home_org_id": own(reg)})
    with pytest.raises(ValidationError) as exc:
        reg.put("member", {"name": "李四", "home_org_id": mid})
    assert (exc.value.field, exc.value.rule) == ("home_org_id", "ref_type")


def test_reference_to_deleted_record_refused(reg: Store) -> None:
    mid = reg.put("member", {"name": "张三", "home_org_id": own(reg)})
    reg.delete(mid)
    with pytest.raises(ValidationError) as exc:
        reg.put("contact", {"member_id": mid, "on": "2025-01-10", "channel": "phone",
                            "reached": "yes"})
    assert (exc.value.field, exc.value.rule) == ("member_id", "ref_missing")


def test_reference_to_record_made_earlier_in_the_same_batch_accepted(reg: Store) -> None:
    with reg.batch() as b:
        mid = b.put("member", {"name": "张三", "home_org_id": own(reg)})
        fid = b.put("flow", {"member_id": mid, "reason": "work", "left_on": "2025-01-10",
                             "status": "pending_report"})
    assert reg.get(fid)["member_id"] == mid  # type: ignore[index]


def test_refs_list_with_one_missing_id_refused(reg: Store) -> None:
    """M-5.4: a county task goes to organizations that exist."""
    ghost = new_ulid()
    with pytest.raises(ValidationError) as exc:
        reg.put("task", {"issued_by_org_id": own(reg), "target_org_ids": [own(reg), ghost],
                         "title": "摸排流动党员"})
    assert (exc.value.field, exc.value.rule) == ("target_org_ids", "ref_missing")
    assert ghost in exc.value.en


def test_meeting_absence_of_a_non_member_refused(reg: Store) -> None:
    """M-3.2: absences name members."""
    with pytest.raises(ValidationError) as exc:
        reg.put("meeting", {"org_id": own(reg), "kind": "theme_day", "held_on": "2025-01-10",
                            "absences": [{"member_id": own(reg), "reason": "外出"}]})
    assert (exc.value.field, exc.value.rule) == ("absences", "ref_missing")


def test_batch_lookup_sees_pending_deletions(reg: Store) -> None:
    mid = reg.put("member", {"name": "张三", "home_org_id": own(reg)})
    b = Batch(reg, TODAY)
    b.delete(mid)
    with pytest.raises(ValidationError) as exc:
        b.put("study", {"member_id": mid, "on": "2025-01-10", "kind": "online"})
    assert exc.value.rule == "ref_missing"


# -- rules that join fields -------------------------------------------------------------------

def test_member_needs_home_org_or_external_home_org() -> None:
    """M-1.1 / vocabulary: the formal membership is held somewhere (home_org_id), or outside the
    system for an inflow member (external_home_org)."""
    assert ("home_org_id", "home_org") in rules("member", {"name": "张三"})
    assert rules("member", {"name": "张三", "external_home_org": "某省某村党支部"}) == set()
    assert rules("member", {"name": "张三", "home_org_id": ORG_ID}) == set()


def test_joined_before_18th_birthday_refused() -> None:
    """Party Constitution art. 1: members are 18 or older when they join."""
    assert ("joined_on", "joined_too_young") in rules(
        "member", member(birth_date="2000-05-10", joined_on="2018-05-09"))
    assert rules("member", member(birth_date="2000-05-10", joined_on="2018-05-10")) == set()


def test_joined_too_young_uses_birth_date_inside_id_number() -> None:
    number = id_number(birth="20000510")
    assert ("joined_on", "joined_too_young") in rules(
        "member", member(id_number=number, joined_on="2018-05-09"))
    assert rules("member", member(id_number=number, joined_on="2018-05-10")) == set()


def test_joined_too_young_born_on_29_february() -> None:
    assert ("joined_on", "joined_too_young") in rules(
        "member", member(birth_date="2000-02-29", joined_on="2018-02-28"))
    assert rules("member", member(birth_date="2000-02-29", joined_on="2018-03-01")) == set()


def test_probation_ends_before_joining_refused() -> None:
    assert ("probation_ends_on", "before") in rules(
        "member", member(joined_on="2024-07-01", probation_ends_on="2024-06-30"))


def test_flow_reported_before_leaving_refused() -> None:
    """M-1.2: the member reports to the host organization after leaving (reported_on)."""
    assert ("reported_on", "before") in rules(
        "flow", flow(member_id=None, reported_on="2025-01-09"))
    assert ("reported_on", "before") not in rules("flow", flow(reported_on="2025-01-10"))
    assert ("reported_on", "before") not in rules("flow", flow(reported_on="2025-02-01"))


def test_flow_expected_until_and_ended_on_not_before_leaving() -> None:
    assert ("expected_until", "before") in rules("flow", flow(expected_until="2024-12-31"))
    assert ("ended_on", "before") in rules(
        "flow", flow(status="ended", ended_on="2024-12-31", end_reason="returned"))


def test_ended_flow_needs_end_date_and_reason() -> None:
    """M-1.3/M-1.4: a flow ends because the member returned or transferred membership."""
    found = rules("flow", flow(status="ended"))
    assert {("ended_on", "ended_needs"), ("end_reason", "ended_needs")} <= found
    assert ("end_reason", "ended_needs") in rules("flow", flow(status="ended",
                                                              ended_on="2025-03-01"))
    assert ("ended_on", "ended_needs") in rules("flow", flow(status="ended", end_reason="returned"))
    done = rules("flow", flow(status="ended", ended_on="2025-03-01", end_reason="returned"))
    assert not {r for r in done if r[1] == "ended_needs"}


def test_reported_flow_needs_reported_on() -> None:
    """M-1.2: a report is tracked by its date."""
    assert ("reported_on", "reported_needs_date") in rules("flow", flow(status="reported"))
    assert ("reported_on", "reported_needs_date") not in rules(
        "flow", flow(status="reported", reported_on="2025-01-20"))


def test_transfer_needs_a_target() -> None:
    """M-1.4: a transfer letter names the receiving organization, in the system or not."""
    base = {"member_id": None, "from_org_id": ORG_ID, "status": "draft"}
    assert ("to_org_id", "transfer_target") in rules("transfer", base)
    assert ("to_org_id", "transfer_target") not in rules("transfer", {**base, "to_org_id": ORG_ID})
    assert ("to_org_id", "transfer_target") not in rules(
        "transfer", {**base, "to_org_text": "某市某街道党工委"})


def test_transfer_received_before_issued_refused() -> None:
    base = {"from_org_id": ORG_ID, "to_org_id": ORG_ID, "status": "received"}
    assert ("received_on", "before") in rules(
        "transfer", {**base, "issued_on": "2025-03-01", "received_on": "2025-02-28"})


def test_spans_end_after_they_start() -> None:
    assert ("ended_on", "before") in rules(
        "vanguard", {"kind": "volunteer", "title": "义务巡河", "started_on": "2025-03-01",
                     "ended_on": "2025-02-01"})
    assert ("approved_on", "before") in rules(
        "probation_review", {"due_on": "2025-03-01", "meeting_on": "2025-03-01",
                             "approved_on": "2025-02-01"})


def test_cross_rules_through_the_store(reg: Store) -> None:
    """M-1.2: a flow whose report precedes the departure is refused by the store."""
    mid = reg.put("member", {"name": "张三", "home_org_id": own(reg)})
    with pytest.raises(ValidationError) as exc:
        reg.put("flow", {"member_id": mid, "reason": "work", "left_on": "2025-01-10",
                         "reported_on": "2025-01-01", "status": "reported"})
    assert (exc.value.field, exc.value.rule) == ("reported_on", "before")
    assert "外出日期" in exc.value.zh and "left_on" in exc.value.en


# -- the error people see ---------------------------------------------------------------------

def _base(s: Store, type_name: str) -> dict[str, Any]:
    org = own(s)
    return {
        "member": {"name": "张三", "home_org_id": org},
        "flow": {"reason": "work", "left_on": "2025-01-10", "status": "pending_report"},
        "transfer": {"from_org_id": org, "to_org_id": org, "status": "draft"},
        "fund": {"org_id": org, "on": "2025-01-10", "kind": "expense", "purpose": "education",
                 "amount_yuan": "10"},
        "appraisal": {"year": "2024", "by_org_id": org, "result": "qualified"},
    }[type_name]


CASES = [
    # type, bad values, field, rule
    ("member", {"id_number": "11010519491231002"}, "id_number", "id_format"),
    ("member", {"id_number": "110105194912310021"}, "id_number", "id_checksum"),
    ("member", {"id_number": id_number(region="990000")}, "id_number", "id_region"),
    ("member", {"id_number": id_number(birth="19490230")}, "id_number", "id_birth_date"),
    ("member", {"id_number": "11010519491231002X", "birth_date": "1950-01-01"}, "birth_date",
     "id_birth_mismatch"),
    ("member", {"id_number": "11010519491231002X", "gender": "男"}, "gender",
     "id_gender_mismatch"),
    ("member", {"phone": "12345678901"}, "phone", "phone"),
    ("member", {"birth_date": "2023-02-29"}, "birth_date", "date_exists"),
    ("member", {"birth_date": "2024/01/01"}, "birth_date", "date_format"),
    ("member", {"birth_date": "2099-01-01"}, "birth_date", "date_future"),
    ("member", {"standing": "candidate"}, "standing", "enum"),
    ("member", {"name": "张" * 51}, "name", "too_long"),
    ("member", {"name": "张\x1b三"}, "name", "control_chars"),
    ("member", {"home_org_id": None}, "home_org_id", "home_org"),
    ("member", {"birth_date": "2000-05-10", "joined_on": "2018-05-09"}, "joined_on",
     "joined_too_young"),
    ("member", {"nickname": "小张"}, "nickname", "unknown_field"),
    ("flow", {"status": "ended"}, "ended_on", "ended_needs"),
    ("flow", {"reported_on": "2025-01-01", "status": "reported"}, "reported_on", "before"),
    ("transfer", {"to_org_id": None}, "to_org_id", "transfer_target"),
    ("transfer", {"dues_paid_until": "2024-13"}, "dues_paid_until", "month_format"),
    ("transfer", {"valid_days": "-3"}, "valid_days", "integer"),
    ("fund", {"amount_yuan": "1.005"}, "amount_yuan", "money"),
    ("appraisal", {"year": "1900"}, "year", "year_format"),
]


@pytest.mark.parametrize(("type_name", "bad", "field_name", "rule"), CASES,
                         ids=[f"{c[0]}.{c[2]}.{c[3]}" for c in CASES])
def test_validation_error_names_field_and_rule_in_both_languages(
        reg: Store, type_name: str, bad: dict[str, Any], field_name: str, rule: str) -> None:
    """DESIGN §2.2: bad input is refused with a message naming the field and the rule, in the
    user's language (STYLE: every error in Chinese and English)."""
    values = _base(reg, type_name)
    if "member_id" in TYPES[type_name].by_name:
        values["member_id"] = reg.put("member", {"name": "王五", "home_org_id": own(reg)})
    values.update(bad)
    seq = reg.meta["dev_seq"]
    with pytest.raises(ValidationError) as info:
        reg.put(type_name, values)
    exc = info.value
    assert (exc.field, exc.rule) == (field_name, rule)
    assert exc.zh.strip() and exc.en.strip()
    assert re.search(r"[\u4e00-\u9fff]", exc.zh), exc.zh
    assert exc.zh != exc.en
    f = TYPES[type_name].by_name.get(field_name)
    assert field_name in exc.en, exc.en  # the English message uses the code name
    assert (f.zh if f else field_name) in exc.zh, exc.zh  # the Chinese one the Chinese label
    assert exc.message("zh").startswith(exc.zh) and exc.en in exc.message("zh")
    assert exc.message("en").startswith(exc.en) and exc.zh in exc.message("en")
    assert exc.exit_code != 0
    assert reg.meta["dev_seq"] == seq


def test_validation_error_carries_every_issue(reg: Store) -> None:
    with pytest.raises(ValidationError) as info:
        reg.put("member", {"name": "张三", "home_org_id": own(reg), "phone": "123",
                           "birth_date": "2024/01/01", "gender": "X"})
    exc = info.value
    assert {(i.field, i.rule) for i in exc.issues} == {
        ("phone", "phone"), ("birth_date", "date_format"), ("gender", "enum")}
    assert "（另有 2 处问题）" in exc.zh
    assert "(and 2 more)" in exc.en


def test_every_rule_message_names_the_field() -> None:
    for rule, (zh, en) in RULES.items():
        assert "{name}" in en, rule
        assert "{zh}" in zh or "{name}" in zh, rule
        assert re.search(r"[\u4e00-\u9fff]", zh), rule


def test_bad_value_in_a_batch_writes_nothing(tmp_path: Path) -> None:
    """DESIGN §7: bad input leaves nothing half-written, in memory or on disk."""
    path = tmp_path / "s"
    s, _ = Store.create(path, PASSPHRASE, kdf=TEST_KDF, org=dict(ORG))
    kept = s.put("member", {"name": "李四", "home_org_id": own(s)})
    seq = s.meta["dev_seq"]
    outbox = len(s.state.outbox)
    good_id = ""
    with pytest.raises(ValidationError) as info, s.batch() as b:
        good_id = b.put("member", {"name": "张三", "home_org_id": own(s)})
        b.put("flow", {"member_id": good_id, "reason": "work", "left_on": "2025-01-10",
                       "status": "pending_report"})
        b.put("member", {"phone": "1234"}, kept)
    assert (info.value.field, info.value.rule) == ("phone", "phone")
    assert good_id
    assert s.meta["dev_seq"] == seq
    assert len(s.state.outbox) == outbox
    assert s.get(good_id) is None
    assert list(s.live("flow")) == []
    assert "phone" not in s.get(kept)  # type: ignore[operator]
    s.close()
    with Store.open(path, PASSPHRASE) as again:
        assert again.meta["dev_seq"] == seq
        assert again.get(good_id, include_deleted=True) is None
        assert [m["name"] for m in again.live("member")] == ["李四"]
        assert list(again.live("flow")) == []
        # the store still takes good writes after the refusal
        again.put("member", {"phone": "13800138000"}, kept)
        assert again.meta["dev_seq"] == seq + 1
