"""The register's commands: ``member``, ``flow``, ``contact`` and ``org list`` on a laptop.

Every record goes through ``store.register``; organizations are named as people name them
(``store/orgs.py``); a member's mobility is derived where it is shown (DESIGN §2.2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tui.cli import CliError, add_field_flags, add_json_in, fields_of, unlock

if TYPE_CHECKING:
    from store import Store


def with_org_ids(orgs: Any, type_name: str, values: dict[str, Any]) -> dict[str, Any]:
    """Organization flags take an id, the end of one, a name or part of a name (DESIGN §5)."""
    from store.errors import NotFound, ValidationError
    from store.orgs import resolve_org
    from store.schema import TYPES
    from store.validate import issue

    orgs = list(orgs)
    out = dict(values)
    for f in TYPES[type_name].fields:
        if f.ref != "org" or not out.get(f.name):
            continue
        value = out[f.name]
        if f.kind == "ref":
            keys = [str(value)]
        elif isinstance(value, list):  # --json-in gives a list where a flag gives "a,b"
            keys = [str(k) for k in value if str(k).strip()]
        else:
            keys = [k for k in str(value).split(",") if k.strip()]
        found = []
        for key in keys:
            try:
                found.append(resolve_org(orgs, key))
            except NotFound:
                raise ValidationError([issue(f, "org_unknown", value=key)]) from None
        out[f.name] = found[0] if f.kind == "ref" else found
    return out


def member_json(store: Store, doc: dict[str, Any] | None, reveal: bool = False,
                ) -> dict[str, Any]:
    """A member as ``--json`` prints it, with its mobility as this store's organization sees
    it (derived, never stored: DESIGN §2.2); the ID number masked as on screen unless
    ``reveal``."""
    from store.register import member_mobility
    from tui.output import masked

    assert doc is not None
    return {**masked({k: v for k, v in doc.items() if v is not None}, reveal),
            "mobility": member_mobility(store, doc)}


def cmd_member_add(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import print_json, t

    with unlock(args) as store:
        values = with_org_ids(store.live("org"), "member", fields_of(args, "m_"))
        member_id = register.add_member(store, values)
        doc = member_json(store, store.get(member_id), args.reveal)
    if args.json:
        print_json(doc)
    else:
        print(t(f"已添加党员 {doc['name']}（编号 {member_id}）", f"Added member {doc['name']} (id {member_id})"))
    return 0


def cmd_member_edit(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import print_json, t

    nothing = CliError("没有要修改的字段", "no field to change was given")
    if not (args.clear or args.json_in or any(k.startswith("m_") for k in vars(args))):
        raise nothing
    with unlock(args) as store:
        values = fields_of(args, "m_")  # after unlocking: a passphrase on stdin comes first
        for name in args.clear or []:
            values[name] = None
        if not values:
            raise nothing
        member = register.resolve_member(store, args.member)
        register.edit_member(store, member["id"], with_org_ids(store.live("org"), "member",
                                                               values))
        doc = member_json(store, store.get(member["id"]), args.reveal)
    if args.json:
        print_json(doc)
    else:
        print(t(f"已更新 {doc['name']}", f"Updated {doc['name']}"))
    return 0


def cmd_member_show(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import masked, print_json, record_lines, show_value, t

    with unlock(args) as store:
        member = register.resolve_member(store, args.member)
        flows = sorted(store.state.records_of(member["id"], "flow"), key=lambda f: f["left_on"],
                       reverse=True)
        contacts = sorted(store.state.records_of(member["id"], "contact"),
                          key=lambda c: c["on"], reverse=True)
        if args.json:
            print_json({"member": member_json(store, member, args.reveal),
                        "flows": [masked(f, args.reveal) for f in flows],
                        "contacts": [masked(c, args.reveal) for c in contacts]})
            return 0
        mobility = register.member_mobility(store, member)
        extra = [(t("流动状态", "mobility"), show_value("member", "mobility", mobility))]
        print("\n".join(record_lines(member, store.get, reveal=args.reveal,
                                      extra=extra if mobility != "none" else ())))
        for flow in flows:
            print()
            print(t("【流动登记】", "[Flow]"))
            print("\n".join("  " + line for line in record_lines(flow, store.get)))
        if contacts:
            print()
            print(t("【联系记录】", "[Contacts]"))
            for c in contacts[:10]:
                reached = show_value("contact", "reached", c["reached"])
                channel = show_value("contact", "channel", c["channel"])
                by = c.get("by") or ""
                print(f"  {c['on']}  {channel}  {t('联系上', 'reached')}: {reached}  {by}  "
                      f"{c.get('summary') or ''}".rstrip())
    return 0


def cmd_member_list(args: argparse.Namespace) -> int:
    from tui.output import print_json, show_value, t, table

    with unlock(args) as store:
        docs = store.search_members(args.search) if args.search else sorted(
            store.live("member"), key=lambda m: m["id"])
        if not args.all:
            docs = [m for m in docs if not m.get("archived")]
        shown = [member_json(store, m, args.reveal) for m in docs]
        if args.mobility:
            shown = [m for m in shown if m["mobility"] == args.mobility]
        total = len(shown)
        if args.limit:
            shown = shown[:args.limit]
        if args.json:
            print_json(shown)
            return 0
        rows = []
        for m in shown:
            home = show_value("member", "home_org_id", m.get("home_org_id"), store.get) or \
                (m.get("external_home_org") or "")
            rows.append([m["id"][-8:], m["name"], show_value("member", "gender", m.get("gender")),
                         m.get("phone") or "", show_value("member", "mobility", m["mobility"]),
                         home])
    headers = [t("编号", "id"), t("姓名", "name"), t("性别", "gender"), t("手机号", "phone"),
               t("流动", "mobility"), t("所在党组织", "home organization")]
    print(table(headers, rows))
    shown = len(rows)
    print(t(f"共 {total} 人", f"{total} member(s)") +
          (t(f"，显示前 {shown} 人", f", first {shown} shown") if shown < total else ""))
    return 0


def cmd_flow_out(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import masked, print_json, t

    with unlock(args) as store:
        member = register.resolve_member(store, args.member)
        values = with_org_ids(store.live("org"), "flow", fields_of(args, "f_"))
        flow_id = register.flow_out(store, member["id"], values)
        flow = store.get(flow_id)
    if args.json:
        print_json(masked(flow, args.reveal))
    else:
        print(t(f"已登记 {member['name']} 流出（流动登记 {flow_id}），状态：待报到" if flow and
                flow["status"] == "pending_report" else
                f"已登记 {member['name']} 流出（流动登记 {flow_id}），已报到",
                f"Registered the outflow of {member['name']} (flow {flow_id})"))
    return 0


def cmd_flow_in(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import masked, print_json, t

    with unlock(args) as store:
        flow_values = with_org_ids(store.live("org"), "flow", fields_of(args, "f_"))
        if args.member:
            existing = register.resolve_member(store, args.member)
            member_id, flow_id = register.flow_in(store, existing["id"], flow_values)
        else:
            values = fields_of(args, "m_")
            if "name" not in values:
                raise CliError("请用 --name（或 --json-in 中的 name）给出流入党员的姓名，"
                               "或用 --member 指定已有党员",
                               "give the arriving member's --name (or name in --json-in), or "
                               "--member for one on file")
            member_id, flow_id = register.flow_in(store, values, flow_values)
        member = member_json(store, store.get(member_id), args.reveal)
        flow = store.get(flow_id)
    if args.json:
        print_json({"member": member, "flow": masked(flow, args.reveal)})
    else:
        assert member is not None
        print(t(f"已登记 {member['name']} 流入（流动登记 {flow_id}）",
                f"Registered the inflow of {member['name']} (flow {flow_id})"))
    return 0


def cmd_flow_report(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import t

    with unlock(args) as store:
        flow = register.resolve_flow(store, args.flow)
        register.report_in(store, flow["id"], args.on)
        member = store.get(flow["member_id"])
    name = member["name"] if member else flow["member_id"]
    print(t(f"已记录 {name} 于 {args.on} 报到", f"Recorded that {name} reported in on {args.on}"))
    return 0


def cmd_flow_end(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import t

    with unlock(args) as store:
        flow = register.resolve_flow(store, args.flow)
        register.end_flow(store, flow["id"], args.on, args.reason)
        member = store.get(flow["member_id"])
    name = member["name"] if member else flow["member_id"]
    print(t(f"已结束 {name} 的流动登记", f"Ended the flow of {name}"))
    return 0


def cmd_contact_log(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import masked, print_json, t

    with unlock(args) as store:
        member = register.resolve_member(store, args.member)
        values = {"on": args.on, "channel": args.channel, "reached": args.reached,
                  "summary": args.note, "by": args.by}
        contact_id = register.log_contact(store, member["id"], values)
        contact = store.get(contact_id)
    if args.json:
        print_json(masked(contact, args.reveal))
    else:
        print(t(f"已记录与 {member['name']} 的联系（{args.on}）",
                f"Logged a contact with {member['name']} on {args.on}"))
    return 0


def cmd_org_list(args: argparse.Namespace) -> int:
    """The organizations this store holds, as a tree; the store's own is marked."""
    from store.errors import current_lang
    from store.orgs import org_tree
    from store.schema import choice_label
    from tui.output import print_json

    with unlock(args) as store:
        own = store.meta.get("own_org_id")
        tree = org_tree(store.live("org"))
    if args.json:
        print_json([{"id": o["id"], "name": o["name"], "kind": o["kind"],
                     "parent_id": o.get("parent_id"), "depth": d, "own": o["id"] == own}
                    for d, o in tree])
        return 0
    for depth, o in tree:
        kind = choice_label("org_kind", o["kind"], current_lang())
        mark = " *" if o["id"] == own else ""
        print(f"{'  ' * depth}{o['name']}（{kind}）{mark}  …{o['id'][-8:]}")
    return 0


def choice_of(choices: str) -> Callable[[str], str]:
    """An argparse type for a choice list of the schema: the value or its label."""
    from store.validate import enum_value

    def parse(raw: str) -> str:
        found = enum_value(choices, raw)
        if found is None:
            from tui.output import choices_help

            raise argparse.ArgumentTypeError(choices_help(choices))
        return found

    return parse


REVEAL_HELP = ("--json 输出完整身份证号（默认与屏幕一样只显示前 4 位和后 4 位）/ full ID numbers in --json "
               "output (masked by default, as on screen)")


def add_reveal(parser: argparse.ArgumentParser, text: str = REVEAL_HELP) -> None:
    parser.add_argument("--reveal", action="store_true", help=text)


def add_commands(sub: Any, command: Any, parser_class: type) -> None:
    from tui.output import choices_help

    org = sub.add_parser("org", help="组织 / organizations").add_subparsers(
        dest="org_command", metavar="ACTION", parser_class=parser_class, required=True)
    command(org, "list", cmd_org_list, "本机已有的组织（* 为本组织）/ organizations this store "
            "holds (* marks its own)", True)

    member = sub.add_parser("member", help="党员 / members").add_subparsers(
        dest="member_command", metavar="ACTION", parser_class=parser_class, required=True)
    sp = command(member, "add", cmd_member_add, "添加党员 / add a member", True)
    add_reveal(sp)
    add_json_in(sp)
    add_field_flags(sp, "member", prefix="m_", exclude=("archived",), required=("name",))
    sp = command(member, "edit", cmd_member_edit, "修改党员信息 / change a member", True)
    sp.add_argument("member", metavar="MEMBER", help="编号、编号末位或姓名 / id, end of id or name")
    add_reveal(sp)
    add_json_in(sp)
    add_field_flags(sp, "member", prefix="m_")
    sp.add_argument("--clear", action="append", metavar="FIELD",
                    help="清空字段（如 phone）/ clear a field")
    sp = command(member, "show", cmd_member_show, "查看党员 / show a member", True)
    sp.add_argument("member", metavar="MEMBER")
    add_reveal(sp, "显示完整身份证号（屏幕与 --json）/ show the full ID number (on screen and in "
                   "--json)")
    sp = command(member, "list", cmd_member_list, "列出或检索党员 / list or search members", True)
    add_reveal(sp)
    sp.add_argument("--search", metavar="TEXT",
                    help="姓名、拼音、首字母、手机号或身份证号末几位 / name, pinyin, initials, phone, ID suffix")
    sp.add_argument("--mobility", type=choice_of("mobility"), metavar="MOBILITY",
                    help="流动状态（由流动登记得出）/ mobility, derived from the open flow: "
                         + choices_help("mobility"))
    sp.add_argument("--all", action="store_true", help="含已归档 / include archived")
    sp.add_argument("--limit", type=int, metavar="N")

    flow = sub.add_parser("flow", help="流动登记 / flows").add_subparsers(
        dest="flow_command", metavar="ACTION", parser_class=parser_class, required=True)
    sp = command(flow, "out", cmd_flow_out, "登记流出 / register an outflow", True)
    sp.add_argument("member", metavar="MEMBER")
    add_reveal(sp)
    add_json_in(sp)
    add_field_flags(sp, "flow", prefix="f_",
                    exclude=("member_id", "status", "ended_on", "end_reason"),
                    required=("left_on", "reason"))
    sp = command(flow, "in", cmd_flow_in, "登记流入 / register an inflow", True)
    sp.add_argument("--member", metavar="MEMBER", help="已在册党员 / a member already on file")
    add_reveal(sp)
    add_json_in(sp)
    add_field_flags(sp, "member", prefix="m_",
                    exclude=("home_org_id", "archived", "lost_contact_since"))
    add_field_flags(sp, "flow", prefix="f_",
                    exclude=("member_id", "status", "ended_on", "end_reason", "home_org_id"),
                    required=("left_on", "reason"))
    sp = command(flow, "report", cmd_flow_report, "记录报到 / record reporting in")
    sp.add_argument("flow", metavar="MEMBER|FLOW")
    sp.add_argument("--on", required=True, metavar="YYYY-MM-DD", help="报到日期 / date")
    sp = command(flow, "end", cmd_flow_end, "结束流动登记 / close a flow")
    sp.add_argument("flow", metavar="MEMBER|FLOW")
    sp.add_argument("--on", required=True, metavar="YYYY-MM-DD", help="结束日期 / date")
    sp.add_argument("--reason", required=True, metavar="REASON",
                    help="结束原因 / end reason: " + choices_help("end_reason"))

    contact = sub.add_parser("contact", help="联系记录 / contacts").add_subparsers(
        dest="contact_command", metavar="ACTION", parser_class=parser_class, required=True)
    sp = command(contact, "log", cmd_contact_log, "记录一次联系 / log a contact", True)
    sp.add_argument("member", metavar="MEMBER")
    add_reveal(sp)
    sp.add_argument("--on", required=True, metavar="YYYY-MM-DD")
    sp.add_argument("--channel", required=True, metavar="CHANNEL",
                    help="方式 / channel: " + choices_help("channel"))
    sp.add_argument("--reached", required=True, metavar="yes|no", help="是否联系上 / 是|否")
    sp.add_argument("--note", metavar="TEXT")
    sp.add_argument("--by", metavar="NAME", help="联系人 / who made the contact")

