"""Rosters in and out: reading a spreadsheet of members, mapping its columns to the schema,
planning an import that is all rows or none, and writing ledgers as xlsx, csv or json.

The columns are derived from the schema (``store.schema.TYPES["member"]``: field names, Chinese
and English labels) plus ``ALIASES``, the one table of the headings that the national party-member
information system and other exports use. Rows are validated by the store itself
(``Batch.put``: coerce and check_record), never by a second validator here.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import Ambiguous, Forbidden, Issue, LiudongError, NotFound, ValidationError
from store.schema import TYPES

if TYPE_CHECKING:
    from store import Store

MEMBER = TYPES["member"]
# 转正日期 has no field of its own: see ``row_values``.
CONVERTED = "_converted_on"

# Headings of the national party-member information system's roster exports (and of common
# county spreadsheets) that are not already a field's label or name: heading → field.
ALIASES: dict[str, str] = {
    "公民身份号码": "id_number", "身份证号码": "id_number", "身份证": "id_number",
    "证件号码": "id_number",
    "联系电话": "phone", "手机号码": "phone", "手机": "phone", "电话": "phone",
    "移动电话": "phone",
    "人员类别": "standing", "党员身份": "standing",
    "所在党支部": "home_org_id", "所属党支部": "home_org_id", "所属党组织": "home_org_id",
    "党组织名称": "home_org_id",
    "文化程度": "education", "学历学位": "education",
    "入党时间": "joined_on", "出生年月日": "birth_date", "转正日期": CONVERTED,
    "转正时间": CONVERTED, "预备期满时间": "probation_ends_on",
}
# Values those exports write that are not a choice's label (store.validate.enum_value takes the
# value, either label, or the unique start of a Chinese label).
VALUE_ALIASES: dict[str, dict[str, str]] = {
    "education": {"大学本科": "bachelor", "大学专科": "college", "中专": "senior",
                  "中等专科": "senior", "研究生": "master", "博士研究生": "doctor",
                  "硕士研究生": "master"},
}
# Dates as spreadsheets write them: 1985-03-15, 1985/3/15, 1985.03.15, 1985年3月15日, 19850315.
DATE_FORMS = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?|(\d{4})(\d{2})(\d{2})",
                        re.ASCII)
HEADER_SEARCH_ROWS = 5  # a title row or two above the headings is common in exports


class BadRoster(LiudongError):
    """A file that cannot be read as a roster: missing, of another kind, empty, corrupt."""

    exit_code = 2


def _key(heading: str) -> str:
    """Headings compare without case, width, spaces, underscores or a trailing colon."""
    text = unicodedata.normalize("NFKC", heading).strip().lower().rstrip(":")
    return re.sub(r"[\s_*]+", "", text)


def heading_map() -> dict[str, str]:
    """Every heading a member column may have, normalized → field name."""
    out: dict[str, str] = {}
    for f in MEMBER.fields:
        if f.kind in ("absences", "json"):
            continue
        for text in (f.name, f.zh, f.en, f.name.replace("_", " ")):
            out.setdefault(_key(text), f.name)
    for text, name in ALIASES.items():
        out.setdefault(_key(text), name)
    out.setdefault(_key("converted on"), CONVERTED)
    return out


# -- reading -----------------------------------------------------------------------------------

@dataclass
class Sheet:
    """The cells of a roster: its heading row and its data rows, each with its row number in the
    spreadsheet (the first row is 1)."""

    headings: list[str]
    header_row: int
    rows: list[tuple[int, list[Any]]]


def read_sheet(path: Path) -> Sheet:
    """The first sheet of an xlsx file, or a csv file (UTF-8 with or without BOM, UTF-16 with
    BOM, GBK/GB18030)."""
    if not path.exists():
        raise BadRoster(f"找不到文件：{path}", f"no such file: {path}")
    if not path.is_file():
        raise BadRoster(f"不是文件：{path}", f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".xlsx" or suffix == ".xlsm":
        rows = _xlsx_rows(path)
    elif suffix in (".csv", ".txt"):
        rows = _csv_rows(path)
    elif suffix in (".xls", ".et", ".wps"):
        raise BadRoster(f"不支持旧版 Excel 格式（{suffix}）：请在 Excel 或 WPS 中另存为 .xlsx 或 .csv",
                        f"the old Excel format ({suffix}) is not supported: save it as .xlsx or "
                        ".csv in Excel or WPS")
    else:
        raise BadRoster(f"只能导入 .xlsx 或 .csv 文件：{path.name}",
                        f"only .xlsx and .csv files can be imported: {path.name}")
    return _find_header(rows, path)


def _xlsx_rows(path: Path) -> Iterable[tuple[int, list[Any]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise BadRoster(f"无法读取 Excel 文件（文件已损坏或不是 .xlsx）：{path.name}",
                        f"cannot read the Excel file (damaged, or not .xlsx): {path.name} "
                        f"({type(exc).__name__})") from None
    except Exception as exc:  # openpyxl raises many kinds on a malformed workbook
        raise BadRoster(f"无法读取 Excel 文件（文件已损坏）：{path.name}",
                        f"cannot read the Excel file (damaged): {path.name} "
                        f"({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            return []
        out = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = list(values)
            if any(c is not None and str(c).strip() for c in cells):
                out.append((number, cells))
        return out
    except Exception as exc:
        raise BadRoster(f"无法读取 Excel 文件（文件已损坏）：{path.name}",
                        f"cannot read the Excel file (damaged): {path.name} "
                        f"({type(exc).__name__})") from None
    finally:
        book.close()


def decode_text(data: bytes, name: str) -> str:
    """Text of a csv file: a BOM says its encoding; else UTF-8 if it decodes, else GB18030 (a
    superset of GBK and GB2312, what Chinese Excel and WPS write)."""
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]
    else:
        encodings = ["utf-8", "gb18030"]
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise BadRoster(f"无法识别文件的字符编码（应为 UTF-8 或 GBK）：{name}",
                    f"cannot tell the file's text encoding (expected UTF-8 or GBK): {name}")


def _csv_rows(path: Path) -> list[tuple[int, list[Any]]]:
    text = decode_text(path.read_bytes(), path.name)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    out = []
    try:
        for number, cells in enumerate(csv.reader(io.StringIO(text, newline=""),
                                                  delimiter=delimiter), start=1):
            if any(c.strip() for c in cells):
                out.append((number, list(cells)))
    except csv.Error as exc:
        raise BadRoster(f"CSV 文件格式有误：{path.name}（{exc}）",
                        f"the CSV file is malformed: {path.name} ({exc})") from None
    return out


def _find_header(rows: Iterable[tuple[int, list[Any]]], path: Path) -> Sheet:
    """The heading row is the first one naming the 姓名/name column, among the first few rows
    (an export may put a title above it)."""
    rows = list(rows)
    if not rows:
        raise BadRoster(f"文件中没有数据：{path.name}", f"the file holds no data: {path.name}")
    known = heading_map()
    for i, (number, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        headings = ["" if c is None else str(c).strip() for c in cells]
        if any(known.get(_key(h)) == "name" for h in headings):
            return Sheet(headings, number, rows[i + 1:])
    raise BadRoster(f"找不到“姓名”列：{path.name} 的表头应含 姓名（或 name）",
                    f"no name column: the headings of {path.name} must include 姓名 (or name)")


# -- mapping rows to member fields -------------------------------------------------------------

@dataclass
class Columns:
    """Which spreadsheet column feeds which field, and the headings that feed none."""

    by_field: dict[str, list[int]]
    headings: list[str]
    ignored: list[str]

    def heading(self, name: str) -> str:
        """The heading as written in the file for a field (its label when it has no column)."""
        if name == "birth_date" and name not in self.by_field and "id_number" in self.by_field:
            name = "id_number"  # a birth date taken from the ID number
        cols = self.by_field.get(name)
        if cols:
            return self.headings[cols[0]]
        if name == "probation_ends_on" and CONVERTED in self.by_field:
            return self.headings[self.by_field[CONVERTED][0]]
        f = MEMBER.by_name.get(name)
        return f.zh if f is not None else name


def map_columns(headings: Sequence[str]) -> Columns:
    known = heading_map()
    by_field: dict[str, list[int]] = {}
    ignored = []
    for i, heading in enumerate(headings):
        name = known.get(_key(heading)) if heading else None
        if name is None:
            if heading:
                ignored.append(heading)
            continue
        by_field.setdefault(name, []).append(i)
    return Columns(by_field, list(headings), ignored)


def _cell_text(value: Any, kind: str) -> Any:
    """A cell as the store's ``coerce`` takes it: dates as ISO text, whole numbers without
    ``.0`` (Excel keeps phone numbers as numbers)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if kind == "date" else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if kind == "date":
        m = DATE_FORMS.fullmatch(unicodedata.normalize("NFKC", text))
        if m is not None:
            y, mo, d = (m[1], m[2], m[3]) if m[1] else (m[4], m[5], m[6])
            return f"{y}-{int(mo):02d}-{int(d):02d}"
    return text


def row_values(columns: Columns, cells: Sequence[Any]) -> dict[str, Any]:
    """A row's fields as typed (the first non-empty column when several feed one field).

    转正日期 (the day probation ends or ended): for a probationary member it is
    ``probation_ends_on``; a full member's conversion date has no field in the register, so it is
    kept in the notes ("转正日期：…") rather than lost."""
    out: dict[str, Any] = {}
    for name, cols in columns.by_field.items():
        kind = "date" if name == CONVERTED else MEMBER[name].kind
        for i in cols:
            value = _cell_text(cells[i], kind) if i < len(cells) else None
            if value not in (None, ""):
                out[name] = value
                break
    education = out.get("education")
    if isinstance(education, str):
        out["education"] = VALUE_ALIASES["education"].get(education.strip(), education)
    converted = out.pop(CONVERTED, None)
    if converted is not None:
        from store.validate import enum_value

        standing = enum_value("standing", str(out.get("standing") or "")) or "full"
        if standing == "probationary":
            out.setdefault("probation_ends_on", converted)
        else:
            note = f"转正日期：{converted}"
            out["notes"] = f"{out['notes']}\n{note}" if out.get("notes") else note
    return out


# -- the import plan ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    field: str
    rule: str
    zh: str
    en: str

    def text(self, lang: str) -> str:
        zh = f"第 {self.row} 行「{self.column}」：{self.zh}"
        en = f"row {self.row}, column {self.column!r}: {self.en}"
        return f"{zh} | {en}" if lang == "zh" else f"{en} | {zh}"

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "field": self.field, "rule": self.rule,
                "zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class Duplicate:
    """A row not imported because the person is already there: in the store (``member_id``)
    or in an earlier row of the file (``same_as_row``)."""

    row: int
    name: str
    member_id: str | None = None
    same_as_row: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "name": self.name, "member_id": self.member_id,
                "same_as_row": self.same_as_row,
                "reason": "in_store" if self.member_id else "in_file"}


@dataclass
class ImportPlan:
    """What importing a roster does: the members to add (row, fields), the duplicates skipped
    and every row's errors. ``imported`` holds the new ids once committed."""

    rows: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    members: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)

    def to_json(self, dry_run: bool) -> dict[str, Any]:
        return {"dry_run": dry_run, "rows": self.rows, "imported": len(self.imported),
                "valid": len(self.members),
                "duplicates": [d.to_json() for d in self.duplicates],
                "errors": [e.to_json() for e in self.errors],
                "ignored_columns": self.ignored_columns, "ids": self.imported}


class _Abandon(Exception):
    """Leaves ``store.batch()`` without committing (any exception inside it does)."""


def _issue_errors(row: int, columns: Columns, issues: Iterable[Issue]) -> list[RowError]:
    return [RowError(row, columns.heading(i.field), i.field, i.rule, i.zh, i.en) for i in issues]


def _resolve_home(values: dict[str, Any], orgs: list[Any], own: str | None, row: int,
                  columns: Columns) -> list[RowError]:
    """The row's 所在党支部 as an organization id (by id, its tail or its name), or ``own``
    when the row names none; an unknown or ambiguous name is the row's error (the row's other
    cells are then still checked, against ``own``)."""
    from store.orgs import resolve_org
    from store.validate import issue

    key = values.pop("home_org_id", None)
    if own:
        values["home_org_id"] = own
    if key is None:
        return []
    try:
        values["home_org_id"] = resolve_org(orgs, str(key))
    except Ambiguous as exc:
        return [RowError(row, columns.heading("home_org_id"), "home_org_id", "org_ambiguous",
                         exc.zh, exc.en)]
    except NotFound:
        found = issue(MEMBER["home_org_id"], "org_unknown", value=str(key))
        return [RowError(row, columns.heading("home_org_id"), "home_org_id", found.rule,
                         found.zh, found.en)]
    return []


def plan_import(store: Store, sheet: Sheet, default_org: str | None, commit: bool,
                today: dt.date | None = None) -> ImportPlan:
    """Validate every row through one batch of the store; commit it only when ``commit`` and no
    row has an error (all rows or none). A row whose ID number the store holds already is a
    duplicate, skipped; two rows with one ID number are one person (skipped, reported) when
    they agree and an error naming both rows when they do not."""
    from store.validate import coerce

    columns = map_columns(sheet.headings)
    plan = ImportPlan(rows=len(sheet.rows), ignored_columns=columns.ignored)
    orgs = list(store.live("org"))
    own = default_org or store.meta.get("own_org_id")
    seen: dict[str, tuple[int, dict[str, Any]]] = {}  # ID number → first row with it, its fields
    try:
        with store.batch(today) as b:
            for row, cells in sheet.rows:
                values = row_values(columns, cells)
                if not values:
                    continue
                errors = _resolve_home(values, orgs, own, row, columns)
                values.setdefault("standing", "full")
                number = coerce(MEMBER["id_number"], values.get("id_number"), b.today)
                if isinstance(number, str):
                    holder = store.state.by_id_number.get(number)
                    if holder is not None and store.get(holder) is not None:
                        plan.duplicates.append(Duplicate(row, str(values.get("name") or ""),
                                                         member_id=holder))
                        continue
                    if number in seen:
                        first_row, first = seen[number]
                        if first == values:
                            plan.duplicates.append(Duplicate(row, str(values.get("name") or ""),
                                                             same_as_row=first_row))
                            continue
                        f = MEMBER["id_number"]
                        errors.append(RowError(
                            row, columns.heading("id_number"), "id_number", "id_duplicate_in_file",
                            f"与第 {first_row} 行的「{f.zh}」相同，但两行其他信息不一致",
                            f"the same {f.name} as row {first_row}, but the two rows differ"))
                    else:
                        seen[number] = (row, values)
                if any(e.field == "id_number" for e in errors):
                    plan.errors += errors  # put would only say the same number again
                    continue
                try:
                    b.put("member", values)
                except ValidationError as exc:
                    errors += _issue_errors(row, columns, exc.issues)
                except Forbidden as exc:
                    errors.append(RowError(row, columns.heading(exc.field or "home_org_id"),
                                           exc.field or "", exc.code, exc.zh, exc.en))
                if errors:
                    plan.errors += errors
                else:
                    plan.members.append((row, values))
            if plan.errors or not commit:
                raise _Abandon
            plan.imported = [rec_id for rec_id, _, _, _ in b.changes()]
    except _Abandon:
        pass
    return plan


# -- writing -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ledger:
    """One table of an export: a sheet of an xlsx file, a csv file, a list in the json."""

    key: str  # outflow | inflow | contacts | stats
    sheet_name: str
    title: str
    headings: list[str]
    rows: list[list[Any]]
    keys: list[str]  # stable names of the columns (the json's keys)


def display_width(text: str) -> int:
    from tui.output import width

    return width(text)


def xlsx_bytes(ledgers: Sequence[Ledger]) -> bytes:
    """A workbook ready to print: one sheet per ledger, a title row, bold headings, frozen and
    repeated on every page, column widths fitted (CJK characters count double), landscape A4
    fitted to the page width."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for ledger in ledgers:
        ws = book.create_sheet(ledger.sheet_name[:31])
        ncols = max(1, len(ledger.headings))
        ws.append([ledger.title])
        ws.cell(1, 1).font = Font(bold=True, size=14)
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)
        ws.append(ledger.headings)
        for c in range(1, ncols + 1):
            cell = ws.cell(2, c)
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDDDDD")
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.border = border
        widths = [display_width(h) for h in ledger.headings]
        measured: dict[str, int] = {}
        # Data cells get no style of their own (per-cell borders cost openpyxl ~2 ms a cell,
        # 20 s for 10,000 rows): the grid is printed instead.
        for r, row in enumerate(ledger.rows, start=3):
            for c, value in enumerate(row, start=1):
                cell = ws.cell(r, c, value)
                if isinstance(value, str) and value.startswith("="):
                    cell.data_type = "s"  # text a person typed, never a formula
                elif isinstance(value, float):
                    cell.number_format = "0.0%"
                shown = f"{value:.1%}" if isinstance(value, float) else _shown(value)
                w = measured.get(shown)
                if w is None:
                    w = measured[shown] = display_width(shown)
                if w > widths[c - 1]:
                    widths[c - 1] = w
        for c, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(c)].width = min(max(w + 2, 6), 50)
        ws.freeze_panes = "A3"
        if ledger.rows:
            ws.auto_filter.ref = f"A2:{get_column_letter(ncols)}{len(ledger.rows) + 2}"
        ws.print_title_rows = "1:2"
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.horizontalCentered = True
        ws.print_options.gridLines = True
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def _csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = _shown(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_bytes(ledger: Ledger) -> bytes:
    """One ledger as csv: UTF-8 with a BOM (so Excel reads it as UTF-8), CRLF lines, the
    headings first (no title row: a csv is read by programs as often as by people)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ledger.headings)
    for row in ledger.rows:
        writer.writerow([_csv_safe(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` appears only complete: a temp file beside it (mode 0600:
    it holds personal data), fsynced, renamed over, the directory fsynced."""
    from store.fsutil import fsync_dir, fsync_fd

    parent = path.parent
    if not parent.is_dir():
        raise BadRoster(f"目录不存在：{parent}", f"no such directory: {parent}")
    if path.is_dir():
        raise BadRoster(f"输出路径是一个目录：{path}", f"the output path is a directory: {path}")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            fsync_fd(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(parent)
