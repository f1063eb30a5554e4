"""``liudong import`` and ``liudong export``: rosters in, ledgers out (DESIGN §5; M-1.2 the
register of mobile members, M-5.1 statistics, M-6 the information system).

Import is all rows or none: every row is validated by the store in one batch, and the batch is
committed only when no row has an error (``tui.roster.plan_import``). Export writes the ledgers a
branch or county prints and files: outflow (流出党员台账), inflow (流入党员台账), the contact log and
the statistics per organization; the file appears only complete, readable by its owner alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.cli import CliError, unlock

if TYPE_CHECKING:
    from store import Store
    from tui.roster import ImportPlan, Ledger

WHAT = ("outflow", "inflow", "contacts", "stats")
FORMATS = ("xlsx", "csv", "json")


# -- import ------------------------------------------------------------------------------------

def cmd_import(args: argparse.Namespace) -> int:
    from store.errors import current_lang
    from store.orgs import resolve_org
    from tui.output import print_json, t
    from tui.roster import plan_import, read_sheet

    sheet = read_sheet(Path(args.file).expanduser())  # a bad file is refused before unlocking
    with unlock(args) as store:
        org = resolve_org(store.live("org"), args.org) if args.org else None
        plan = plan_import(store, sheet, org, commit=not args.dry_run)
        if args.json:
            print_json({"file": Path(args.file).name, **plan.to_json(args.dry_run)})
        else:
            _print_plan(store, plan, args.dry_run, current_lang())
    if plan.errors:
        raise CliError(f"{len(plan.errors)} 处错误，未导入任何记录（全部改正后重新导入）",
                       f"{len(plan.errors)} error(s): nothing was imported (correct them all and "
                       "import again)")
    if not args.json and not plan.members and not args.dry_run:
        print(t("没有新的党员需要导入：文件中的人员都已在登记中。",
                "Nothing new to import: everyone in the file is already registered."))
    return 0


def _print_plan(store: Store, plan: ImportPlan, dry_run: bool, lang: str) -> None:
    from tui.output import mask_id, t, table
    from tui.view import org_name

    if plan.ignored_columns:
        cols = "、".join(plan.ignored_columns)
        print(t(f"提示：以下列无法识别，已忽略：{cols}",
                f"note: these columns are not recognised and were ignored: {cols}"))
    for d in plan.duplicates:
        if d.member_id:
            print(t(f"重复：第 {d.row} 行 {d.name} 已在登记中（…{d.member_id[-8:]}），跳过",
                    f"duplicate: row {d.row}, {d.name}, is already registered "
                    f"(…{d.member_id[-8:]}); skipped"))
        else:
            print(t(f"重复：第 {d.row} 行 {d.name} 与第 {d.same_as_row} 行是同一人，只导入一次",
                    f"duplicate: row {d.row}, {d.name}, is the same person as row "
                    f"{d.same_as_row}; imported once"))
    for e in plan.errors:
        print(e.text(lang))
    if dry_run and plan.members and not plan.errors:
        print(t("将导入：", "Would import:"))
        rows = [(str(row), str(v.get("name") or ""), mask_id(str(v.get("id_number") or "")),
                 org_name(store, v.get("home_org_id"), str(v.get("external_home_org") or "")))
                for row, v in plan.members]
        print(table([t("行", "row"), t("姓名", "name"), t("身份证号", "ID number"),
                     t("所在党组织", "home organization")], rows))
    n, d, e = len(plan.imported), len(plan.duplicates), len(plan.errors)
    if dry_run:
        print(t(f"试运行（未写入）：可导入 {len(plan.members)} 人，重复 {d} 人，错误 {e} 处",
                f"dry run (nothing written): would import {len(plan.members)}, duplicates {d}, "
                f"errors {e}"))
    else:
        print(t(f"已导入 {n} 人，重复 {d} 人，错误 {e} 处",
                f"imported {n}, duplicates {d}, errors {e}"))


# -- the ledgers -------------------------------------------------------------------------------

# (key, record type, field): a column named by the schema's label. Types "member" and "flow"
# read the member and its flow; "org:<field>" the flow's organization or the text beside it.
OUTFLOW = (
    ("name", "member", "name"), ("gender", "member", "gender"),
    ("birth_date", "member", "birth_date"), ("id_number", "member", "id_number"),
    ("phone", "member", "phone"), ("home_org", "flow", "home_org_id"),
    ("host_org", "flow", "host_org_id"), ("destination_address", "flow", "destination_address"),
    ("employer", "flow", "destination_employer"), ("reason", "flow", "reason"),
    ("left_on", "flow", "left_on"), ("expected_until", "flow", "expected_until"),
    ("reported_on", "flow", "reported_on"), ("home_contact", "flow", "home_contact"),
    ("certificate_no", "flow", "certificate_no"), ("status", "flow", "status"),
    ("last_contact", "", "last_contact"),
)
INFLOW = (
    ("name", "member", "name"), ("gender", "member", "gender"),
    ("birth_date", "member", "birth_date"), ("id_number", "member", "id_number"),
    ("phone", "member", "phone"), ("home_org", "flow", "home_org_id"),
    ("host_org", "flow", "host_org_id"), ("destination_address", "flow", "destination_address"),
    ("employer", "flow", "destination_employer"), ("reason", "flow", "reason"),
    ("left_on", "flow", "left_on"), ("reported_on", "flow", "reported_on"),
    ("host_contact", "flow", "host_contact"), ("certificate_no", "flow", "certificate_no"),
    ("status", "flow", "status"), ("last_contact", "", "last_contact"),
)
CONTACTS = (
    ("name", "member", "name"), ("on", "contact", "on"), ("by", "contact", "by"),
    ("channel", "contact", "channel"), ("reached", "contact", "reached"),
    ("summary", "contact", "summary"),
)
# Labels of what is not a schema field.
EXTRA_LABELS = {"last_contact": ("最近联系", "last contact")}
STATS = (  # OrgStats attribute, Chinese, English
    ("name", "组织", "organization"), ("kind", "类别", "kind"), ("members", "党员", "members"),
    ("outflow", "流出", "outflow"), ("inflow", "流入", "inflow"),
    ("reported", "已报到", "reported"), ("pending", "待报到", "pending report"),
    ("report_overdue", "逾期未报到", "report overdue"), ("contact_due", "应联系", "contact due"),
    ("lost", "失联", "lost contact"), ("appraisal_due", "应评议", "appraisal due"),
    ("appraised", "已评议", "appraised"), ("reported_rate", "报到率", "reported rate"),
    ("appraisal_rate", "评议率", "appraisal rate"), ("meetings", "近一年组织生活", "meetings (12 months)"),
    ("attendance_rate", "参会率", "attendance rate"), ("fund_balance", "经费结余（元）", "fund balance (yuan)"),
    ("tasks_overdue", "逾期任务", "tasks overdue"),
)
TITLES = {
    "outflow": ("流出党员台账", "Outflow ledger"),
    "inflow": ("流入党员台账", "Inflow ledger"),
    "contacts": ("联系记录", "Contact log"),
    "stats": ("流动党员统计", "Statistics"),
}


def _heading(source: str, name: str) -> str:
    from store.schema import TYPES
    from tui.output import t

    if not source:
        return t(*EXTRA_LABELS[name])
    return t(TYPES[source][name].zh, TYPES[source][name].en)


def _cell(store: Store, source: str, name: str, docs: dict[str, Any]) -> Any:
    from tui.output import show_value
    from tui.view import last_contact

    if not source:
        found = last_contact(store, docs["member"]["id"])
        return str(found.get("on") or "") if found else ""
    doc = docs[source]
    value = doc.get(name)
    if source == "flow" and name == "host_org_id" and not value:
        return str(doc.get("external_host") or "")
    if source == "flow" and name == "home_org_id" and not value:
        return str(docs["member"].get("external_home_org") or "")
    return show_value(source, name, value, store.get, reveal=True)


def _member_ledger(store: Store, key: str, columns: Any, flows: list[Any],
                   title: str) -> Ledger:
    from tui.output import t
    from tui.roster import Ledger

    rows = []
    for flow in flows:
        member = store.get(flow["member_id"])
        if member is None:
            continue
        docs = {"member": member, "flow": flow}
        rows.append([_cell(store, s, n, docs) for _, s, n in columns])
    zh, en = TITLES[key]
    return Ledger(key, t(zh, en), title.format(t(zh, en)), [_heading(s, n) for _, s, n in columns],
                  rows, [k for k, _, _ in columns])


def build_ledgers(store: Store, what: list[str], today: dt.date) -> list[Ledger]:
    """The ledgers of the store's own subtree as of ``today``, members in list order."""
    from tui.county_stats import org_stats
    from tui.output import show_value, t
    from tui.roster import Ledger
    from tui.view import org_name

    own = store.meta.get("own_org_id")
    subtree = store.state.own_subtree()
    title = "{} · " + org_name(store, own, t("本组织", "this organization")) + " · " + t(
        f"截至 {today.isoformat()}", f"as of {today.isoformat()}")
    members = store.member_order()
    order = {member_id: i for i, member_id in enumerate(members)}
    flows = [f for f in map(store.open_flow_of, members) if f is not None]  # the store's index
    out = []
    for key in what:
        if key == "outflow":
            out.append(_member_ledger(store, key, OUTFLOW, [
                f for f in flows if f.get("home_org_id") in subtree], title))
        elif key == "inflow":
            out.append(_member_ledger(store, key, INFLOW, [
                f for f in flows if f.get("host_org_id") in subtree], title))
        elif key == "contacts":
            contacts = sorted(store.live("contact"), key=lambda c: (
                str(c.get("on") or ""), order.get(c.get("member_id"), len(order)), c["id"]))
            rows = []
            for c in contacts:
                member = store.get(c["member_id"])
                if member is not None:
                    docs = {"member": member, "contact": c}
                    rows.append([_cell(store, s, n, docs) for _, s, n in CONTACTS])
            zh, en = TITLES[key]
            out.append(Ledger(key, t(zh, en), title.format(t(zh, en)),
                              [_heading(s, n) for _, s, n in CONTACTS], rows,
                              [k for k, _, _ in CONTACTS]))
        else:
            rows = []
            for r in org_stats(store, today):
                row: list[Any] = []
                for name, _, _ in STATS:
                    value = getattr(r, name)
                    if name == "name":
                        value = "  " * r.depth + value  # the tree, as the county view shows it
                    elif name == "kind":
                        value = show_value("org", "kind", value)
                    elif name.endswith("_rate"):
                        value = None if value is None else round(value, 4)
                    elif name == "fund_balance":
                        value = float(value)
                    row.append(value)
                rows.append(row)
            zh, en = TITLES[key]
            out.append(Ledger(key, t(zh, en), title.format(t(zh, en)),
                              [t(z, e) for _, z, e in STATS], rows, [k for k, _, _ in STATS]))
    return out


def ledgers_json(ledgers: list[Ledger], store: Store, today: dt.date) -> bytes:
    """All ledgers in one object: ``{"as_of", "org", "<ledger>": [{key: value}, …]}``; values
    as the sheets show them (labels, names; null where the sheet is blank), keys stable (the
    schema's field names)."""
    import json

    from tui.view import org_name

    data: dict[str, Any] = {"as_of": today.isoformat(),
                            "org": org_name(store, store.meta.get("own_org_id"))}
    for ledger in ledgers:
        data[ledger.key] = [{k: None if v == "" else v for k, v in zip(ledger.keys, row)}
                            for row in ledger.rows]
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.out).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise CliError("请用 --format 指定格式：xlsx、csv 或 json",
                   "give the format with --format: xlsx, csv or json")


def _as_of(text: str | None) -> dt.date:
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CliError(f"--today 应为 YYYY-MM-DD 格式的日期：{text}",
                       f"--today must be a date as YYYY-MM-DD: {text}") from None


def cmd_export(args: argparse.Namespace) -> int:
    from tui.output import t
    from tui.roster import BadRoster, csv_bytes, write_private, xlsx_bytes

    fmt = _format(args)
    what = list(dict.fromkeys(args.what or ()))
    if fmt == "csv":
        if len(what) > 1:
            raise CliError("CSV 文件只能放一个台账：请只给一个 --what",
                           "a CSV file holds one ledger: give one --what")
        what = what or ["outflow"]
    what = what or list(WHAT)
    out = Path(args.out).expanduser()
    if not out.parent.is_dir():  # before unlocking: nothing to ask for if it cannot be written
        raise BadRoster(f"输出目录不存在：{out.parent}", f"the output directory does not exist: "
                        f"{out.parent}")
    today = _as_of(args.today)
    with unlock(args) as store:
        ledgers = build_ledgers(store, what, today)
        writers: dict[str, Callable[[], bytes]] = {
            "xlsx": lambda: xlsx_bytes(ledgers), "csv": lambda: csv_bytes(ledgers[0]),
            "json": lambda: ledgers_json(ledgers, store, today)}
        data = writers[fmt]()
    write_private(out, data)
    counts = "、".join(f"{ledger.sheet_name} {len(ledger.rows)} 行" for ledger in ledgers)
    counts_en = ", ".join(f"{ledger.sheet_name}: {len(ledger.rows)} rows" for ledger in ledgers)
    print(t(f"已导出 {counts} 到 {out}", f"Exported {counts_en} to {out}"))
    return 0


def add_commands(sub: Any, command: Any) -> None:
    sp = command(sub, "import", cmd_import,
                 "从 Excel（.xlsx）或 CSV 导入党员名册：全部导入或全部不导入，逐行列出错误 / import "
                 "members from an .xlsx or .csv roster: all rows or none, every bad row listed",
                 True)
    sp.add_argument("file", metavar="FILE", help="名册文件（.xlsx 或 .csv，UTF-8 或 GBK）/ the "
                    "roster (.xlsx, or .csv in UTF-8 or GBK)")
    sp.add_argument("--dry-run", action="store_true",
                    help="只校验、列出将导入的人员，不写入 / validate and list, write nothing")
    sp.add_argument("--org", metavar="ORG",
                    help="没有“所在党支部”列或该列为空时的组织（默认本组织）/ the organization for "
                         "rows without one (default: this store's own)")
    sp = command(sub, "export", cmd_export,
                 "导出台账（流出、流入、联系记录、统计）为 xlsx、csv 或 json / export the ledgers "
                 "(outflow, inflow, contacts, statistics) as xlsx, csv or json")
    sp.add_argument("--format", choices=FORMATS,
                    help="格式（默认按 --out 的扩展名）/ format (default: from --out's suffix)")
    sp.add_argument("--out", required=True, metavar="FILE", help="输出文件 / output file")
    sp.add_argument("--what", action="append", choices=WHAT, metavar="WHAT",
                    help="导出哪个台账（可重复；xlsx、json 默认全部，csv 只能一个、默认流出）/ which "
                         "ledger (repeatable; xlsx and json: all by default; csv: one, outflow by "
                         "default): " + ", ".join(WHAT))
    sp.add_argument("--today", metavar="YYYY-MM-DD",
                    help="统计截至这一天（默认今天）/ as of this day (default: today)")
