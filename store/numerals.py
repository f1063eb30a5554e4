"""Chinese capital numerals (大写数字) as written on forms that must resist alteration.

An introduction letter for a transfer of membership writes the month the dues are paid to and the
letter's validity in capital numerals, as a cheque does, so that 壹 cannot become 壹拾.

The conventions are the bank's (中国人民银行《支付结算办法》附件一, 正确填写票据和结算凭证的基本规定):
- integers: 拾 always carries its digit (15 → 壹拾伍, 110000 → 壹拾壹万); one 零 stands for
  any run of zeros inside the number (105 → 壹佰零伍, 1005 → 壹仟零伍); zeros at the end of a
  group are not written (1050 → 壹仟零伍拾, 107000 → 壹拾万柒仟), but a lower group that
  begins with zeros is joined with 零 (100700 → 壹拾万零柒佰);
- a year digit by digit, 0 as 零 (2026 → 贰零贰陆, 2000 → 贰零零零);
- a month: 壹, 贰 and 壹拾 take a leading 零 (零壹月, 零贰月, 零壹拾月), 11 and 12 are 壹拾壹月 and
  壹拾贰月, the others stand alone (叁月 … 玖月).
"""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
UNITS = ("", "拾", "佰", "仟")
LIMIT = 10**8  # up to 玖仟玖佰玖拾玖万玖仟玖佰玖拾玖: days, years and counts, not money


def _group(n: int) -> str:
    """0 < n < 10000, without leading 零; inner runs of zeros as one 零, trailing zeros dropped."""
    out: list[str] = []
    zero = False
    for power in (3, 2, 1, 0):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[digit] + UNITS[power])
    return "".join(out)


def capital(n: int) -> str:
    """``n`` (0 ≤ n < 10⁸) in capital numerals: 30 → 叁拾, 15 → 壹拾伍, 105 → 壹佰零伍."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < LIMIT:
        raise ValueError(f"capital numerals are written here for 0 ≤ n < {LIMIT}: {n!r}")
    if n == 0:
        return "零"
    high, low = divmod(n, 10000)
    if not high:
        return _group(low)
    text = _group(high) + "万"
    if low:
        text += ("零" if low < 1000 else "") + _group(low)
    return text


def capital_digits(number: int | str) -> str:
    """Digit by digit, as a year is written: 2026 → 贰零贰陆."""
    text = str(number)
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"not a number to write digit by digit: {number!r}")
    return "".join(DIGITS[int(c)] for c in text)


def capital_month_number(month: int) -> str:
    """A month of the year: 零壹, 零贰, 叁 … 玖, 零壹拾, 壹拾壹, 壹拾贰 (without 月)."""
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise ValueError(f"not a month: {month!r}")
    return ("零" if month in (1, 2, 10) else "") + capital(month)


def capital_month(month: str) -> str:
    """A month ``YYYY-MM`` as the dues line writes it: 2026-12 → 贰零贰陆年壹拾贰月."""
    year, sep, mm = month.partition("-")
    if not sep or len(year) != 4 or len(mm) != 2 or not mm.isascii() or not mm.isdigit():
        raise ValueError(f"not a month YYYY-MM: {month!r}")
    return f"{capital_digits(year)}年{capital_month_number(int(mm))}月"
