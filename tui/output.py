"""Text output for the command line: the user's language, CJK-aware columns, masked ID numbers."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any

from store.errors import current_lang
from store.schema import CHOICES, TYPES, choice_label


def t(zh: str, en: str) -> str:
    return zh if current_lang() == "zh" else en


def width(text: str) -> int:
    """Columns a string takes in a terminal: East Asian wide and fullwidth characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c)
               else 1 for c in text)


def pad(text: str, cols: int) -> str:
    return text + " " * max(0, cols - width(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cols = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(pad(h, c) for h, c in zip(headers, cols)).rstrip()]
    lines.append("  ".join("-" * c for c in cols))
    lines += ["  ".join(pad(v, c) for v, c in zip(r, cols)).rstrip() for r in rows]
    return "\n".join(lines)


def mask_id(number: str) -> str:
    """On screen an ID number shows its region and its last four characters only."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def masked(doc: dict[str, Any] | None, reveal: bool = False) -> Any:
    """A record as ``--json`` prints it: its sensitive fields masked exactly as on screen
    (``mask_id``), unless ``reveal``. A sync conflict about a sensitive field has its values
    masked too. The record's shape is unchanged."""
    if reveal or not doc or doc.get("type") not in TYPES:
        return doc
    out = dict(doc)
    for f in TYPES[doc["type"]].fields:
        if f.sensitive and out.get(f.name) is not None:
            out[f.name] = mask_id(str(out[f.name]))
    subject = TYPES.get(str(doc.get("subject_type")))
    field = subject.by_name.get(str(doc.get("field"))) if subject else None
    if doc["type"] == "conflict" and field is not None and field.sensitive and \
            isinstance(doc.get("values"), list):
        out["values"] = [{**v, "value": mask_id(str(v["value"]))}
                         if isinstance(v, dict) and v.get("value") is not None else v
                         for v in doc["values"]]
    return out


def show_value(type_name: str, name: str, value: Any, lookup: Any = None,
               reveal: bool = False) -> str:
    """A stored value as a person reads it: enum labels, yes/no, names of referenced records."""
    if value is None:
        return ""
    f = TYPES[type_name].by_name.get(name)
    lang = current_lang()
    if f is None:
        # derived, not stored: a member's mobility (DESIGN §2.2)
        return choice_label(name, value, lang) if name in CHOICES else str(value)
    if f.kind == "enum" and f.choices:
        return choice_label(f.choices, value, lang)
    if f.kind == "bool":
        return t("是", "yes") if value else t("否", "no")
    if f.sensitive and not reveal:
        return mask_id(str(value))
    if f.kind == "ref" and lookup is not None:
        target = lookup(value)
        if target is not None:
            title = TYPES[target["type"]].title
            return str(target.get(title) or value)
    if f.kind == "refs":
        return ", ".join(str(v) for v in value)
    return str(value)


def record_lines(doc: dict[str, Any], lookup: Any = None, reveal: bool = False,
                 extra: Sequence[tuple[str, str]] = ()) -> list[str]:
    """``label: value`` lines for every field that has a value, in schema order, then
    ``extra`` ones (derived values, already in the user's language)."""
    rtype = TYPES[doc["type"]]
    lang = current_lang()
    rows = [(f.label(lang), show_value(doc["type"], f.name, doc[f.name], lookup, reveal))
            for f in rtype.fields if doc.get(f.name) is not None]
    rows += list(extra)
    cols = max([width(label) for label, _ in rows] + [4])
    out = [f"{pad(t('编号', 'id'), cols)}  {doc['id']}"]
    out += [f"{pad(label, cols)}  {value}" for label, value in rows]
    return out


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def choices_help(key: str) -> str:
    return ", ".join(f"{v}({zh})" for v, zh, _ in CHOICES[key])
