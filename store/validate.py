"""Validation driven by the schema: field values, references, and the rules that join fields.

``coerce`` turns what a person typed (or a JSON value) into the stored form of a field, or an
:class:`Issue`. ``check_record`` checks a whole record as it would be after a change. Every issue
names the field and the rule, in Chinese and English.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from .errors import Issue
from .record import Rec
from .schema import CHOICES, TYPES, Field, RecordType

# rule id → (Chinese, English); {zh}/{en} are the field's labels, {name} its code name.
RULES: dict[str, tuple[str, str]] = {
    "required": ("「{zh}」为必填项", "{name} is required"),
    "too_long": ("「{zh}」过长（最多 {max} 个字符）", "{name} is too long (at most {max} characters)"),
    "not_text": ("「{zh}」应为文字", "{name} must be text"),
    "control_chars": ("「{zh}」含有不可见控制字符", "{name} contains control characters"),
    "date_format": ("「{zh}」应为 YYYY-MM-DD 格式的日期，如 2024-03-01",
                    "{name} must be a date as YYYY-MM-DD, e.g. 2024-03-01"),
    "date_exists": ("「{zh}」不是存在的日期：{value}", "{name} is not a real date: {value}"),
    "date_future": ("「{zh}」不能晚于今天", "{name} cannot be in the future"),
    "date_range": ("「{zh}」年份不合理：{value}", "{name} has an implausible year: {value}"),
    "month_format": ("「{zh}」应为 YYYY-MM 格式的月份", "{name} must be a month as YYYY-MM"),
    "year_format": ("「{zh}」应为四位年份", "{name} must be a four-digit year"),
    "number": ("「{zh}」应为不小于 0 的数字", "{name} must be a number not below 0"),
    "integer": ("「{zh}」应为不小于 0 的整数", "{name} must be a whole number not below 0"),
    "money": ("「{zh}」应为金额（元，最多两位小数）",
              "{name} must be an amount in yuan with at most two decimals"),
    "bool": ("「{zh}」应为 是/否（yes/no）", "{name} must be yes or no"),
    "enum": ("「{zh}」的取值应为：{allowed}", "{name} must be one of: {allowed}"),
    "org_unknown": ("「{zh}」：没有名称或编号为“{value}”的组织（liudong org list 列出本机已有的组织）",
                    "{name}: no organization is named or numbered {value!r} (liudong org list "
                    "shows those this store holds)"),
    "ref_missing": ("「{zh}」引用的记录不存在：{value}", "{name} refers to no existing record: {value}"),
    "ref_type": ("「{zh}」应引用{target_zh}，而 {value} 不是", "{name} must refer to a {target_en}; {value} is not one"),
    "refs_format": ("「{zh}」应为记录编号列表", "{name} must be a list of record ids"),
    "id_format": ("「{zh}」应为 18 位（末位可为 X）或 15 位数字",
                  "{name} must be 18 characters (digits, last may be X) or 15 digits"),
    "id_region": ("「{zh}」前两位不是有效的省级行政区划代码", "{name} does not start with a valid province code"),
    "id_birth_date": ("「{zh}」中的出生日期无效", "{name} holds no valid birth date"),
    "id_checksum": ("「{zh}」校验位不正确，请核对号码", "{name} fails its check character (GB 11643); check the number"),
    "id_birth_mismatch": ("「{zh}」与身份证号中的出生日期不一致",
                          "{name} differs from the birth date inside id_number"),
    "id_gender_mismatch": ("「{zh}」与身份证号顺序码表示的性别不一致",
                           "{name} differs from the gender coded in id_number"),
    "phone": ("「{zh}」应为 11 位手机号（1 开头，第二位 3–9）",
              "{name} must be an 11-digit mobile number starting 13–19"),
    "division_code": ("「{zh}」应为 6、9 或 12 位行政区划代码", "{name} must be a 6-, 9- or 12-digit division code"),
    "home_org": ("「{zh}」与「所在党组织（系统外）」须填写其一",
                 "give either {name} or external_home_org"),
    "joined_too_young": ("「{zh}」早于年满 18 周岁", "{name} is before the member turned 18"),
    "before_founding": ("「{zh}」不能早于 1921-07-01", "{name} cannot be before 1921-07-01"),
    "before_birth": ("「{zh}」不能早于党员的出生日期 {born}",
                     "{name} cannot be before the member's birth date {born}"),
    "id_duplicate": ("「{zh}」已登记：{holder_zh}", "{name} is already registered: {holder_en}"),
    "flow_overlap": ("该党员已有与此重叠的流动登记（{other_left} 至 {other_end_zh}），请先结束它或核对「{zh}」",
                     "the member already has a flow over this time ({other_left} to "
                     "{other_end_en}): end it first or check {name}"),
    "before": ("「{zh}」不能早于「{other_zh}」", "{name} cannot be before {other}"),
    "ended_needs": ("状态为“已结束”时须填写「{zh}」", "{name} is required once the flow has ended"),
    "reported_needs_date": ("状态为“已报到”时须填写「{zh}」", "{name} is required once reported"),
    "transfer_target": ("「{zh}」与「转入组织（系统外）」须填写其一", "give either {name} or to_org_text"),
    "step": ("「{zh}」不能从“{old_zh}”改为“{new_zh}”", "{name} cannot go from {old} to {new}"),
    "letter_fixed": ("介绍信已开具，「{zh}」不能再改；如需更正，请作废后重新开具",
                     "the letter has been issued: {name} can no longer change (cancel it and "
                     "issue a new one)"),
    "issued_needs": ("开具介绍信须填写「{zh}」", "{name} is required to issue the letter"),
    "received_needs": ("记录回执须填写「{zh}」", "{name} is required to record the receipt"),
    "transfer_same_org": ("「{zh}」不能是转出组织本身", "{name} cannot be the organization it leaves"),
    "transfer_from_home": ("「{zh}」应为该党员现在的所在党组织", "{name} must be the member's current "
                           "home organization"),
    "valid_days": ("「{zh}」应为 1 至 365 天", "{name} must be 1 to 365 days"),
    "decision_needs": ("作出转正决定须填写「{zh}」", "{name} is required with the decision"),
    "approver_rights": ("「{zh}」须为有审批预备党员权限的党委", "{name} must be a committee that may "
                        "approve probationary members"),
    "extension_limit": ("「{zh}」须晚于预备期满日期，且最多延长一年（至 {limit}）",
                        "{name} must be after the end of probation and at most one year later "
                        "({limit})"),
    "not_probationary": ("「{zh}」不是预备党员", "{name} is not a probationary member"),
    "approval_needed": ("流动党员党组织须经县级以上党委批准：请填写「{zh}」",
                        "a mobile-member organization needs the approval of a party committee at "
                        "county level or above: give {name}"),
    "approver_level": ("「{zh}」须为县级以上党委", "{name} must be a party committee at county level "
                       "or above"),
    "absence_format": ("「{zh}」每项须含党员编号和缺席原因", "each of {name} needs member_id and reason"),
    "unknown_field": ("没有名为「{name}」的字段", "there is no field {name}"),
}

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
# GB/T 2260 province-level codes (81/82/83: Hong Kong, Macao, Taiwan residence permits).
PROVINCES = frozenset(
    ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82", "83"]
)
# re.ASCII: \d must not match other scripts' digits; full-width ones are folded by NFKC first.
PHONE_RE = re.compile(r"1[3-9]\d{9}", re.ASCII)
DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
MONTH_RE = re.compile(r"(\d{4})-(\d{2})", re.ASCII)
TRUE_WORDS = {"yes", "y", "true", "1", "是", "对", "已联系上"}
FALSE_WORDS = {"no", "n", "false", "0", "否", "未联系上"}


def issue(f: Field | str, rule: str, **kw: Any) -> Issue:
    if isinstance(f, Field):
        names = {"zh": f.zh, "en": f.en, "name": f.name}
    else:
        names = {"zh": f, "en": f, "name": f}
    zh, en = RULES[rule]
    return Issue(names["name"], rule, zh.format(**names, **kw), en.format(**names, **kw))


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of a GB 11643 number."""
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def id_birth_date(number: str) -> dt.date | None:
    """The birth date embedded in an 18- or 15-digit ID number, or None if it is not a date."""
    try:
        if len(number) == 18:
            return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        if len(number) == 15:
            return dt.date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    except ValueError:
        return None
    return None


def id_gender(number: str) -> str:
    """GB 11643: the sequence code is odd for men and even for women."""
    digit = number[16] if len(number) == 18 else number[14]
    return "male" if int(digit) % 2 else "female"


def check_id_number(f: Field, raw: str, today: dt.date) -> str | Issue:
    number = raw.strip().replace(" ", "").upper()
    if (re.fullmatch(r"\d{17}[\dX]", number, re.ASCII) is None
            and re.fullmatch(r"\d{15}", number, re.ASCII) is None):
        return issue(f, "id_format")
    if number[:2] not in PROVINCES:
        return issue(f, "id_region")
    born = id_birth_date(number)
    if born is None or born > today or born.year < 1900:
        return issue(f, "id_birth_date")
    if len(number) == 18 and id_check_char(number[:17]) != number[17]:
        return issue(f, "id_checksum")
    return number


def parse_date(f: Field, raw: Any, today: dt.date) -> str | Issue:
    text = str(raw).strip()
    m = DATE_RE.fullmatch(text)
    if m is None:
        return issue(f, "date_format")
    try:
        value = dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return issue(f, "date_exists", value=text)
    if not 1900 <= value.year <= 2200:
        return issue(f, "date_range", value=text)
    if f.past and value > today:
        return issue(f, "date_future")
    return value.isoformat()


def _clean_text(f: Field, raw: Any) -> str | Issue:
    if not isinstance(raw, str):
        return issue(f, "not_text")
    text = unicodedata.normalize("NFC", raw).strip()
    allowed = "\n\t" if f.kind == "longtext" else ""
    # Cc: control characters; Cf: invisible format characters (zero-width space, bidi
    # overrides) that make a name look like 张三 without matching 张三.
    if any(unicodedata.category(c) in ("Cc", "Cf") and c not in allowed for c in text):
        return issue(f, "control_chars")
    if len(text) > f.max_len:
        return issue(f, "too_long", max=f.max_len)
    return text


def enum_value(choices: str, raw: str) -> str | None:
    """A choice as people type it: its value, its Chinese or English label, or the start of
    one Chinese label that no other label shares (务工 for 务工经商); None if none fits."""
    text = unicodedata.normalize("NFKC", raw).strip()
    options = CHOICES[choices]
    for v, zh, en in options:
        if text in (v, unicodedata.normalize("NFKC", zh), en):
            return v
    starts = [v for v, zh, _en in options if text and unicodedata.normalize(
        "NFKC", zh).startswith(text)]
    return starts[0] if len(starts) == 1 else None


def _cjk(c: str) -> bool:
    return unicodedata.east_asian_width(c) in "WF"


def normalize_name(text: str) -> str:
    """A person's name as stored and searched: spaces inside a Chinese name go (王 小明 is
    王小明); in a Latin-script name one space separates the words."""
    words = text.split()
    out = words[0] if words else ""
    for word in words[1:]:
        out += word if _cjk(out[-1]) or _cjk(word[0]) else " " + word
    return out


def _number(f: Field, raw: Any, integer: bool) -> int | float | Issue:
    if isinstance(raw, bool):
        return issue(f, "integer" if integer else "number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return issue(f, "integer" if integer else "number")
    if not value.is_finite() or value < 0 or value > 10**9:
        return issue(f, "integer" if integer else "number")
    if integer:
        if value != value.to_integral_value():
            return issue(f, "integer")
        return int(value)
    return float(value) + 0.0  # no -0.0


def coerce(f: Field, raw: Any, today: dt.date | None = None) -> Any:
    """The stored form of ``raw`` for field ``f``, or an Issue. ``None``/"" clears the field."""
    today = today or dt.date.today()
    if raw is None or (isinstance(raw, str) and raw.strip() == "") or raw == []:
        return None
    kind = f.kind
    if kind in ("text", "longtext"):
        return _clean_text(f, raw)
    if kind == "name":
        text = _clean_text(f, raw)
        return text if isinstance(text, Issue) else normalize_name(text)
    if isinstance(raw, str):
        # Chinese input methods type full-width digits and letters (１３８, Ｘ): fold them.
        raw = unicodedata.normalize("NFKC", raw)
    if kind == "date":
        return parse_date(f, raw, today)
    if kind == "month":
        text = str(raw).strip()
        m = MONTH_RE.fullmatch(text)
        if m is None or not 1 <= int(m[2]) <= 12 or not 1900 <= int(m[1]) <= 2200:
            return issue(f, "month_format")
        return text
    if kind == "year":
        text = str(raw).strip()
        if re.fullmatch(r"\d{4}", text, re.ASCII) is None or not 1921 <= int(text) <= today.year + 1:
            return issue(f, "year_format")
        return int(text)
    if kind == "int":
        return _number(f, raw, integer=True)
    if kind == "hours":
        return _number(f, raw, integer=False)
    if kind == "money":
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            return issue(f, "money")
        if (not value.is_finite() or value < 0 or value > 10**9
                or value != value.quantize(Decimal("0.01"))):
            return issue(f, "money")
        return f"{value:.2f}"
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        return issue(f, "bool")
    if kind == "enum":
        found = enum_value(f.choices or "", str(raw))
        if found is None:
            return issue(f, "enum", allowed=", ".join(
                f"{v}({zh})" for v, zh, _en in CHOICES[f.choices or ""]))
        return found
    if kind == "ref":
        if not isinstance(raw, str):
            return issue(f, "ref_missing", value=str(raw))
        return raw.strip()
    if kind == "refs":
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return issue(f, "refs_format")
        ids = [i.strip() for i in items if i.strip()]
        return list(dict.fromkeys(ids)) or None
    if kind == "id_number":
        if not isinstance(raw, str):
            return issue(f, "id_format")
        return check_id_number(f, raw, today)
    if kind == "phone":
        text = re.sub(r"[\s\-()]", "", str(raw))
        text = re.sub(r"^(\+86|0086)", "", text)
        if PHONE_RE.fullmatch(text) is None:
            return issue(f, "phone")
        return text
    if kind == "division_code":
        text = str(raw).strip()
        if (re.fullmatch(r"\d{6}(\d{3}(\d{3})?)?", text, re.ASCII) is None
                or text[:2] not in PROVINCES):
            return issue(f, "division_code")
        return text
    if kind == "absences":
        if not isinstance(raw, list):
            return issue(f, "absence_format")
        out = []
        for item in raw:
            if (not isinstance(item, dict) or not isinstance(item.get("member_id"), str)
                    or not isinstance(item.get("reason"), str) or not item["reason"].strip()):
                return issue(f, "absence_format")
            out.append({"member_id": item["member_id"], "reason": item["reason"].strip()[:200]})
        return out or None
    if kind == "json":
        try:
            json.dumps(raw)
        except (TypeError, ValueError):
            return issue(f, "not_text")
        return raw
    raise AssertionError(f"unknown field kind {kind}")


class Context(Protocol):
    """What the rules that join records read: the device's batch and the server's transaction
    both provide it."""

    def lookup(self, rec_id: str) -> Mapping[str, Any] | None:
        """A live record (with its ``type``) or None."""

    def flows_of(self, member_id: str) -> list[Rec]:
        """The member's live flows."""

    def stored(self, rec_id: str) -> Mapping[str, Any] | None:
        """The record before the change being judged: on a device, before the batch (which the
        server receives as one op per record); on the server, before the op."""

    def id_number_holder(self, number: str, rec_id: str) -> tuple[str, str] | None:
        """Another live member with this ID number, described for a message (zh, en): the
        device names the member; the server only the organization that holds it."""


def check_record(
    rtype: RecordType,
    record: Mapping[str, Any],
    ctx: Context,
    today: dt.date | None = None,
    rec_id: str | None = None,
) -> list[Issue]:
    """Every rule the record ``rec_id`` (as it would be after the change) breaks."""
    today = today or dt.date.today()
    issues: list[Issue] = []
    for f in rtype.fields:
        value = record.get(f.name)
        if value is None:
            if f.required:
                issues.append(issue(f, "required"))
            continue
        if f.kind in ("ref", "refs"):
            for ref_id in value if f.kind == "refs" else [value]:
                target = ctx.lookup(ref_id)
                if target is None:
                    issues.append(issue(f, "ref_missing", value=ref_id))
                elif target.get("type") != f.ref:
                    t = TYPES[f.ref or ""]
                    issues.append(issue(f, "ref_type", value=ref_id, target_zh=t.zh,
                                        target_en=t.en))
        elif f.kind == "absences":
            for item in value:
                target = ctx.lookup(item["member_id"])
                if target is None or target.get("type") != "member":
                    issues.append(issue(f, "ref_missing", value=item["member_id"]))
    issues.extend(_step_rules(rtype, record, ctx, rec_id))
    issues.extend(CROSS_RULES.get(rtype.name, _no_rules)(rtype, record, today, ctx, rec_id))
    if rtype.scope.kind == "member_record":
        issues.extend(_after_birth(rtype, record, ctx))
    return issues


def birth_of(member: Mapping[str, Any]) -> str | None:
    """A member's birth date: as recorded, else as the ID number has it."""
    if member.get("birth_date"):
        return str(member["birth_date"])
    coded = id_birth_date(member["id_number"]) if member.get("id_number") else None
    return coded.isoformat() if coded else None


def _after_birth(rtype: RecordType, r: Mapping[str, Any], ctx: Context) -> list[Issue]:
    """Nothing about a member happens before the member was born."""
    member = ctx.lookup(r.get("member_id") or "")
    born = birth_of(member) if member is not None else None
    if born is None:
        return []
    return [issue(f, "before_birth", born=born) for f in rtype.fields
            if f.kind == "date" and f.past and r.get(f.name) and r[f.name] < born]


def _no_rules(rtype: RecordType, r: Mapping[str, Any], today: dt.date, ctx: Context,
              rec_id: str | None) -> list[Issue]:
    return []


def _order(rtype: RecordType, r: Mapping[str, Any], first: str, later: str) -> list[Issue]:
    """``later`` may not fall before ``first`` when both are given."""
    a, b = r.get(first), r.get(later)
    if a is not None and b is not None and b < a:
        f, o = rtype[later], rtype[first]
        return [issue(f, "before", other_zh=o.zh, other=o.name)]
    return []


PARTY_FOUNDED = "1921-07-01"


def _member_rules(rtype: RecordType, r: Mapping[str, Any], today: dt.date, ctx: Context,
                  rec_id: str | None) -> list[Issue]:
    out: list[Issue] = []
    number, born = r.get("id_number"), r.get("birth_date")
    if number:
        coded = id_birth_date(number)
        if born and coded and coded.isoformat() != born:
            out.append(issue(rtype["birth_date"], "id_birth_mismatch"))
        if r.get("gender") and r["gender"] != id_gender(number):
            out.append(issue(rtype["gender"], "id_gender_mismatch"))
        holder = ctx.id_number_holder(number, rec_id or "")
        if holder is not None:
            out.append(issue(rtype["id_number"], "id_duplicate", holder_zh=holder[0],
                             holder_en=holder[1]))
    born = birth_of(r)
    if not r.get("home_org_id") and not r.get("external_home_org"):
        out.append(issue(rtype["home_org_id"], "home_org"))
    joined = r.get("joined_on")
    if joined and joined < PARTY_FOUNDED:
        out.append(issue(rtype["joined_on"], "before_founding"))
    if born and r.get("lost_contact_since") and r["lost_contact_since"] < born:
        out.append(issue(rtype["lost_contact_since"], "before_birth", born=born))
    if born and joined:
        b = dt.date.fromisoformat(born)
        try:
            adult = b.replace(year=b.year + 18)
        except ValueError:  # born on 29 February
            adult = dt.date(b.year + 18, 3, 1)
        if dt.date.fromisoformat(joined) < adult:
            out.append(issue(rtype["joined_on"], "joined_too_young"))
    out += _order(rtype, r, "joined_on", "probation_ends_on")
    return out


def _flow_rules(rtype: RecordType, r: Mapping[str, Any], today: dt.date, ctx: Context,
                rec_id: str | None) -> list[Issue]:
    out: list[Issue] = []
    out += _order(rtype, r, "left_on", "expected_until")
    out += _order(rtype, r, "left_on", "reported_on")
    out += _order(rtype, r, "left_on", "ended_on")
    if r.get("status") == "ended":
        for name in ("ended_on", "end_reason"):
            if r.get(name) is None:
                out.append(issue(rtype[name], "ended_needs"))
    if r.get("status") == "reported" and r.get("reported_on") is None:
        out.append(issue(rtype["reported_on"], "reported_needs_date"))
    # A member is in one place at a time: flows do not overlap, and at most one is open.
    start, end = r.get("left_on"), (r.get("ended_on") if r.get("status") == "ended" else None)
    for other in ctx.flows_of(r.get("member_id") or ""):
        if other.rec_id == rec_id or not start:
            continue
        o_start = other.fields.get("left_on") or ""
        o_end = other.fields.get("ended_on") if other.fields.get("status") == "ended" else None
        if (o_end is None or start < o_end) and (end is None or o_start < end):
            out.append(issue(rtype["left_on"], "flow_overlap", other_left=o_start,
                             other_end_zh=o_end or "今", other_end_en=o_end or "now"))
            break
    return out


def _before(ctx: Context, rec_id: str | None) -> Mapping[str, Any]:
    """The record as it is before the change ({} when it is being made)."""
    return (ctx.stored(rec_id) if rec_id else None) or {}


def _step_rules(rtype: RecordType, r: Mapping[str, Any], ctx: Context,
                rec_id: str | None) -> list[Issue]:
    """A workflow's state moves only along the steps the schema declares."""
    out: list[Issue] = []
    before: Mapping[str, Any] | None = None
    for f in rtype.fields:
        if not f.steps:
            continue
        if before is None:
            before = _before(ctx, rec_id)
        old, new = before.get(f.name) or "", r.get(f.name) or ""
        if old != new and (old, new) not in f.steps:
            out.append(issue(f, "step", old=old or "-", new=new or "-",
                             old_zh=_choice_zh(f, old), new_zh=_choice_zh(f, new)))
    return out


def _choice_zh(f: Field, value: str) -> str:
    for v, zh, _ in CHOICES[f.choices or ""]:
        if v == value:
            return zh
    return "（空）"


# What the printed letter says: fixed once it is issued (M-1.4).
LETTER_FIELDS = ("from_org_id", "to_org_id", "to_org_text", "letter_no", "dues_paid_until",
                 "valid_days", "issued_on", "receipt_due_on")
ISSUED = ("issued", "received", "returned")


def _transfer_rules(rtype: RecordType, r: Mapping[str, Any], today: dt.date, ctx: Context,
                    rec_id: str | None) -> list[Issue]:
    out: list[Issue] = []
    if not r.get("to_org_id") and not r.get("to_org_text"):
        out.append(issue(rtype["to_org_id"], "transfer_target"))
    if r.get("to_org_id") and r.get("to_org_id") == r.get("from_org_id"):
        out.append(issue(rtype["to_org_id"], "transfer_same_org"))
    out += _order(rtype, r, "issued_on", "received_on")
    out += _order(rtype, r, "issued_on", "receipt_due_on")
    days = r.get("valid_days")
    if days is not None and not 1 <= days <= 365:
        out.append(issue(rtype["valid_days"], "valid_days"))
    before = _before(ctx, rec_id)
    if not before:
        member = ctx.lookup(r.get("member_id") or "")
        if member is not None and member.get("home_org_id") and \
                r.get("from_org_id") != member["home_org_id"]:
            out.append(issue(rtype["from_org_id"], "transfer_from_home"))
    elif before.get("status") not in (None, "draft"):
        out += [issue(rtype[name], "letter_fixed") for name in LETTER_FIELDS
                if r.get(name) != before.get(name)]
    if r.get("status") in ISSUED:
        out += [issue(rtype[name], "issued_needs")
                for name in ("letter_no", "issued_on", "dues_paid_until", "valid_days",
                             "receipt_due_on") if r.get(name) is None]
    if r.get("status") == "received" and r.get("received_on") is None:
        out.append(issue(rtype["received_on"], "received_needs"))
    return out


def _probation_rules(rtype: RecordType, r: Mapping[str, Any], today: dt.date, ctx: Context,
                     rec_id: str | None) -> list[Issue]:
    """M-2.2c: the branch congress decides, a committee that may approve probationary members
    approves; probation is extended by one year at most."""
    out = _order(rtype, r, "meeting_on", "approved_on")
    if not _before(ctx, rec_id):
        member = ctx.lookup(r.get("member_id") or "")
        if member is not None and member.get("standing") != "probationary":
            out.append(issue(rtype["member_id"], "not_probationary"))
    if r.get("decision"):
        out += [issue(rtype[name], "decision_needs")
                for name in ("meeting_on", "approved_by_org_id", "approved_on")
                if r.get(name) is None]
    approver = ctx.lookup(r.get("approved_by_org_id") or "")
    if approver is not None and not approver.get("can_approve_probationary"):
        out.append(issue(rtype["approved_by_org_id"], "approver_rights"))
    if r.get("decision") == "extended":
        due, until = r.get("due_on"), r.get("extended_until")
        limit = _plus_year(due) if due else ""
        if until is None:
            out.append(issue(rtype["extended_until"], "decision_needs"))
        elif due and not due < until <= limit:
            out.append(issue(rtype["extended_until"], "extension_limit", limit=limit))
    return out


def _plus_year(iso: str) -> str:
    d = dt.date.fromisoformat(iso)
    try:
        return d.replace(year=d.year + 1).isoformat()
    except ValueError:  # 29 February
        return dt.date(d.year + 1, 2, 28).isoformat()


# Organizations that may approve a mobile-member organization (M-4.1).
COUNTY_OR_ABOVE = ("county", "city", "province")


def _org_rules(rtype: RecordType, r: Mapping[str, Any], today: dt.date, ctx: Context,
               rec_id: str | None) -> list[Issue]:
    """M-4.1: a mobile-member organization is set up with the approval of a party committee at
    county level or above, and its affiliation (parent) is recorded."""
    out = []
    if r.get("kind") == "mobile_branch":
        out += [issue(rtype[name], "approval_needed")
                for name in ("parent_id", "approved_by_org_id", "approved_on")
                if r.get(name) is None]
    approver = ctx.lookup(r.get("approved_by_org_id") or "")
    if approver is not None and approver.get("kind") not in COUNTY_OR_ABOVE:
        out.append(issue(rtype["approved_by_org_id"], "approver_level"))
    return out


def _span_rules(first: str, later: str) -> Callable[..., list[Issue]]:
    def rules(rtype: RecordType, r: Mapping[str, Any], today: dt.date, ctx: Context,
              rec_id: str | None) -> list[Issue]:
        return _order(rtype, r, first, later)

    return rules


CrossRule = Callable[[RecordType, Mapping[str, Any], dt.date, Context, str | None], list[Issue]]
CROSS_RULES: dict[str, CrossRule] = {
    "member": _member_rules,
    "flow": _flow_rules,
    "transfer": _transfer_rules,
    "vanguard": _span_rules("started_on", "ended_on"),
    "probation_review": _probation_rules,
    "org": _org_rules,
}
