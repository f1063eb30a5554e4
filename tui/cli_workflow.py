"""The workflows on the command line: ``transfer`` (M-1.4), ``probation`` (M-2.2c) and
``record`` — every other record type of the schema (study, care, appraisal, commendation,
applications, the dues ledger, task replies…), with flags generated from the schema.

The steps themselves live in ``store/workflows.py``: a command here only finds the records it
names and prints what happened, so the interface and the command line cannot drift apart.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from tui.cli import CliError, add_field_flags, add_json_in, fields_of, unlock
from tui.cli_register import add_reveal, with_org_ids

if TYPE_CHECKING:
    from store import Store

# Types with commands of their own (or kept by the county and the server).
OWN_COMMANDS = ("org", "member", "flow", "contact", "conflict", "transfer", "probation_review",
                "task", "meeting")
RECORD_TYPES_HELP = "study, vanguard, care, appraisal, commendation, application, fund, task_reply"


def resolve_record(store: Store, type_name: str, key: str) -> dict[str, Any]:
    """A record by id or the end of one; a transfer also by its letter number, and either a
    transfer or a probation review by its member (the one under way)."""
    from store.errors import Ambiguous, NotFound
    from store.register import resolve_member
    from store.schema import TYPES

    rtype = TYPES[type_name]
    key = key.strip()
    doc = store.get(key.upper())
    if doc is not None and doc["type"] == type_name:
        return doc
    docs = list(store.live(type_name))
    found = [d for d in docs if len(key) >= 6 and d["id"].endswith(key.upper())]
    if not found and type_name == "transfer":
        found = [d for d in docs if d.get("letter_no") == key]
    if not found and type_name in ("transfer", "probation_review"):
        try:
            member = resolve_member(store, key)
        except NotFound:
            member = None
        if member is not None:
            mine = store.state.records_of(member["id"], type_name)
            under_way = [d for d in mine if (d.get("status") in ("draft", "issued")
                                             if type_name == "transfer" else not d.get("decision"))]
            found = under_way or sorted(mine, key=lambda d: d["id"])[-1:]
    if not found:
        raise NotFound(rtype.zh, rtype.en, key)
    if len(found) > 1:
        raise Ambiguous(key, [d["id"][-8:] for d in found])
    return found[0]


def _member_ref(store: Store, values: dict[str, Any]) -> dict[str, Any]:
    """``--member-id`` takes an id, its end or a name, as MEMBER arguments do."""
    from store.register import resolve_member

    if values.get("member_id"):
        values = {**values, "member_id": resolve_member(store, str(values["member_id"]))["id"]}
    return values


def _print_record(args: argparse.Namespace, store: Store, rec_id: str, zh: str, en: str) -> None:
    from tui.output import masked, print_json, record_lines, t

    doc = store.get(rec_id)
    if args.json:
        print_json(masked(doc, getattr(args, "reveal", False)))
        return
    print(t(zh, en))
    if doc is not None:
        print("\n".join("  " + line for line in record_lines(doc, store.get)))


def _member_name(store: Store, doc: dict[str, Any]) -> str:
    member = store.get(str(doc.get("member_id")))
    return member["name"] if member else str(doc.get("member_id"))


# -- transfer (M-1.4) -------------------------------------------------------------------------

def cmd_transfer_draft(args: argparse.Namespace) -> int:
    from store import workflows
    from store.register import resolve_member

    with unlock(args) as store:
        member = resolve_member(store, args.member)
        values = with_org_ids(store.live("org"), "transfer", fields_of(args, "t_"))
        rec_id = workflows.draft_transfer(store, member["id"], values)
        _print_record(args, store, rec_id, f"已为 {member['name']} 起草组织关系转接（{rec_id}）",
                      f"Drafted a transfer for {member['name']} ({rec_id})")
    return 0


def cmd_transfer_issue(args: argparse.Namespace) -> int:
    from store import workflows

    with unlock(args) as store:
        doc = resolve_record(store, "transfer", args.transfer)
        values = with_org_ids(store.live("org"), "transfer", fields_of(args, "t_"))
        workflows.issue_transfer(store, doc["id"], values)
        issued = store.get(doc["id"]) or {}
        name = _member_name(store, issued)
        _print_record(args, store, doc["id"],
                      f"已开具 {name} 的介绍信（编号 {issued.get('letter_no')}），回执期限 "
                      f"{issued.get('receipt_due_on')}；打印：liudong transfer letter "
                      f"{doc['id'][-8:]} --out 介绍信.pdf",
                      f"Issued the letter for {name} (no. {issued.get('letter_no')}), receipt due "
                      f"{issued.get('receipt_due_on')}; print it: liudong transfer letter "
                      f"{doc['id'][-8:]} --out letter.pdf")
    return 0


def cmd_transfer_step(args: argparse.Namespace) -> int:
    from store import workflows

    with unlock(args) as store:
        doc = resolve_record(store, "transfer", args.transfer)
        name = _member_name(store, doc)
        if args.step == "receive":
            workflows.receive_transfer(store, doc["id"], args.on)
            zh, en = (f"已记录回执：{name} 的组织关系已转出", f"Receipt recorded: the membership of "
                      f"{name} has moved")
        elif args.step == "return":
            workflows.return_transfer(store, doc["id"])
            zh, en = f"已记录 {name} 的介绍信退回", f"Recorded the return of {name}'s letter"
        else:
            workflows.cancel_transfer(store, doc["id"])
            zh, en = f"已作废 {name} 的组织关系转接", f"Cancelled the transfer of {name}"
        _print_record(args, store, doc["id"], zh, en)
    return 0


def cmd_transfer_letter(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tui.letter import letter_data, write_letter
    from tui.output import t

    out = Path(args.out)
    with unlock(args) as store:
        doc = resolve_record(store, "transfer", args.transfer)
        if doc.get("status") not in ("issued", "received", "returned"):
            raise CliError("介绍信尚未开具：先运行 liudong transfer issue",
                           "the letter has not been issued: run liudong transfer issue first")
        data = letter_data(store, doc["id"])
    write_letter(data, out)
    print(t(f"已写出介绍信：{out}（含身份证号，请妥善保管）",
            f"Wrote the letter: {out} (it holds the ID number: keep it safe)"))
    return 0


def cmd_transfer_list(args: argparse.Namespace) -> int:
    from store.errors import current_lang
    from store.schema import choice_label
    from tui.output import print_json, t, table

    with unlock(args) as store:
        docs = sorted(store.live("transfer"), key=lambda d: d.get("issued_on") or "9999")
        if not args.all:
            docs = [d for d in docs if d.get("status") in ("draft", "issued")]
        if args.json:
            print_json(docs)
            return 0
        rows = [[d["id"][-8:], _member_name(store, d), d.get("letter_no") or "",
                 choice_label("transfer_status", d["status"], current_lang()),
                 d.get("issued_on") or "", d.get("receipt_due_on") or "",
                 (store.get(d["to_org_id"]) or {}).get("name", "") if d.get("to_org_id")
                 else d.get("to_org_text") or ""] for d in docs]
    print(table([t("编号", "id"), t("党员", "member"), t("介绍信编号", "letter no."),
                 t("状态", "status"), t("开具日期", "issued"), t("回执期限", "receipt due"),
                 t("转入组织", "to")], rows))
    print(t(f"共 {len(rows)} 件", f"{len(rows)} transfer(s)"))
    return 0


# -- probation (M-2.2c) -----------------------------------------------------------------------

def cmd_probation_review(args: argparse.Namespace) -> int:
    from store import workflows
    from store.register import resolve_member

    with unlock(args) as store:
        member = resolve_member(store, args.member)
        rec_id = workflows.open_review(store, member["id"], fields_of(args, "p_"))
        _print_record(args, store, rec_id, f"已建立 {member['name']} 的转正审查",
                      f"Opened the probation review of {member['name']}")
    return 0


def cmd_probation_report(args: argparse.Namespace) -> int:
    with unlock(args) as store:
        doc = resolve_record(store, "probation_review", args.review)
        store.put("probation_review", {"host_conduct_report": args.text}, doc["id"])
        _print_record(args, store, doc["id"], "已记录流入地现实表现",
                      "Recorded the host's conduct report")
    return 0


def cmd_probation_decide(args: argparse.Namespace) -> int:
    from store import workflows

    with unlock(args) as store:
        doc = resolve_record(store, "probation_review", args.review)
        values = with_org_ids(store.live("org"), "probation_review", fields_of(args, "p_"))
        workflows.decide_probation(store, doc["id"], values)
        _print_record(args, store, doc["id"], f"已记录 {_member_name(store, doc)} 的转正决定",
                      f"Recorded the decision on {_member_name(store, doc)}")
    return 0


# -- any other record type --------------------------------------------------------------------

def cmd_record_add(args: argparse.Namespace) -> int:
    from store.schema import TYPES

    rtype = TYPES[args.type_name]
    with unlock(args) as store:
        values = _member_ref(store, with_org_ids(store.live("org"), rtype.name,
                                                 fields_of(args, "r_")))
        rec_id = store.put(rtype.name, values)
        _print_record(args, store, rec_id, f"已添加{rtype.zh}（{rec_id}）",
                      f"Added a {rtype.en} ({rec_id})")
    return 0


def cmd_record_edit(args: argparse.Namespace) -> int:
    from store.schema import TYPES

    rtype = TYPES[args.type_name]
    with unlock(args) as store:
        doc = resolve_record(store, rtype.name, args.record)
        values = _member_ref(store, with_org_ids(store.live("org"), rtype.name,
                                                 fields_of(args, "r_")))
        for name in args.clear or []:
            values[name] = None
        if not values:
            raise CliError("没有要修改的字段", "no field to change was given")
        store.put(rtype.name, values, doc["id"])
        _print_record(args, store, doc["id"], f"已更新{rtype.zh}", f"Updated the {rtype.en}")
    return 0


def cmd_record_list(args: argparse.Namespace) -> int:
    from store.register import resolve_member
    from store.schema import TYPES
    from tui.output import masked, print_json, show_value, t, table

    rtype = TYPES[args.type_name]
    with unlock(args) as store:
        if args.member:
            member = resolve_member(store, args.member)
            docs = store.state.records_of(member["id"], rtype.name)
        else:
            docs = list(store.live(rtype.name))
        docs = sorted(docs, key=lambda d: d["id"])
        if args.json:
            print_json([masked(d, args.reveal) for d in docs])
            return 0
        shown = [f for f in rtype.fields if f.kind not in ("longtext", "json", "absences")][:6]
        rows = [[d["id"][-8:]] + [show_value(rtype.name, f.name, d.get(f.name), store.get) or ""
                                  for f in shown] for d in docs]
    print(table([t("编号", "id")] + [t(f.zh, f.en) for f in shown], rows))
    print(t(f"共 {len(rows)} 条", f"{len(rows)} record(s)"))
    return 0


def add_commands(sub: Any, command: Any, parser_class: type) -> None:
    from store.schema import TYPES
    from tui.output import choices_help

    transfer = sub.add_parser("transfer", help="组织关系转接 / transfers of membership").add_subparsers(
        dest="transfer_command", metavar="ACTION", parser_class=parser_class, required=True)
    sp = command(transfer, "draft", cmd_transfer_draft, "起草组织关系转接 / draft a transfer", True)
    sp.add_argument("member", metavar="MEMBER", help="编号、编号末位或姓名 / id, end of id or name")
    add_field_flags(sp, "transfer", prefix="t_", exclude=(
        "member_id", "status", "issued_on", "receipt_due_on", "received_on", "from_org_id"))
    sp = command(transfer, "issue", cmd_transfer_issue,
                 "开具介绍信（编号、日期、回执期限自动填写）/ issue the letter", True)
    sp.add_argument("transfer", metavar="TRANSFER",
                    help="编号末位、介绍信编号或党员姓名 / id, its end, letter number or member")
    add_field_flags(sp, "transfer", prefix="t_", exclude=(
        "member_id", "status", "received_on", "from_org_id"))
    for step, zh, en in (("receive", "记录回执：组织关系转入对方", "record the receipt: the "
                          "membership moves"),
                         ("return", "介绍信被退回", "the letter came back unused"),
                         ("cancel", "作废", "cancel the transfer")):
        sp = command(transfer, step, cmd_transfer_step, f"{zh} / {en}", True)
        sp.set_defaults(step=step)
        sp.add_argument("transfer", metavar="TRANSFER")
        if step == "receive":
            sp.add_argument("--on", metavar="YYYY-MM-DD", help="回执日期（默认今天）/ date")
    sp = command(transfer, "letter", cmd_transfer_letter,
                 "打印介绍信（PDF：存根、介绍信、回执）/ print the letter as PDF")
    sp.add_argument("transfer", metavar="TRANSFER")
    sp.add_argument("--out", required=True, metavar="FILE.pdf")
    sp = command(transfer, "list", cmd_transfer_list, "转接清单 / list transfers", True)
    sp.add_argument("--all", action="store_true", help="含已办结 / include finished ones")

    probation = sub.add_parser("probation", help="预备党员转正 / probation").add_subparsers(
        dest="probation_command", metavar="ACTION", parser_class=parser_class, required=True)
    sp = command(probation, "review", cmd_probation_review,
                 "建立转正审查（期满日期取自党员记录）/ open a probation review", True)
    sp.add_argument("member", metavar="MEMBER")
    add_field_flags(sp, "probation_review", prefix="p_", exclude=(
        "member_id", "decision", "meeting_on", "approved_by_org_id", "approved_on",
        "extended_until", "host_conduct_report"))
    sp = command(probation, "report", cmd_probation_report,
                 "流入地党组织提交现实表现 / the host's conduct report", True)
    sp.add_argument("review", metavar="REVIEW", help="编号末位或党员姓名 / id end or member")
    sp.add_argument("--text", required=True, metavar="TEXT")
    sp = command(probation, "decide", cmd_probation_decide,
                 "记录转正决定 / record the decision: " + choices_help("probation_decision"),
                 True)
    sp.add_argument("review", metavar="REVIEW")
    add_field_flags(sp, "probation_review", prefix="p_",
                    exclude=("member_id", "due_on", "host_conduct_report"),
                    required=("decision",))

    record = sub.add_parser("record", help="其他记录：" + RECORD_TYPES_HELP + " / other records"
                            ).add_subparsers(dest="record_command", metavar="ACTION",
                                             parser_class=parser_class, required=True)
    types = [t for t in TYPES.values() if t.name not in OWN_COMMANDS]
    for action, func, text in (("add", cmd_record_add, "添加 / add"),
                               ("edit", cmd_record_edit, "修改 / change"),
                               ("list", cmd_record_list, "列出 / list")):
        per_type = record.add_parser(action, help=text).add_subparsers(
            dest="type_name", metavar="TYPE", parser_class=parser_class, required=True)
        for rtype in types:
            sp = command(per_type, rtype.name, func, f"{rtype.zh} / {rtype.en}", True)
            add_reveal(sp)
            if action == "list":
                sp.add_argument("--member", metavar="MEMBER")
                continue
            if action == "edit":
                sp.add_argument("record", metavar="RECORD", help="编号或编号末位 / id or its end")
                sp.add_argument("--clear", action="append", metavar="FIELD")
            add_json_in(sp)
            required = () if action == "edit" else tuple(
                f.name for f in rtype.fields if f.required)
            add_field_flags(sp, rtype.name, prefix="r_", required=required,
                            exclude=("notified_home_on",))
