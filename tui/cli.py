"""The ``liudong`` command line (DESIGN §5). Users script against it: keep it stable.

Imports are lazy: ``liudong member list`` never loads Textual, FastAPI or httpx. Every error is
one line in Chinese and English and a non-zero exit; a traceback only with ``LIUDONG_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from store import Store

EXIT_USAGE = 2


class CliError(Exception):
    """A usage problem found after parsing; shown like any other error."""

    def __init__(self, zh: str, en: str, code: int = EXIT_USAGE) -> None:
        super().__init__(en)
        self.zh, self.en, self.code = zh, en, code


class Parser(argparse.ArgumentParser):
    """argparse, but its errors come out as one bilingual line like every other error."""

    def error(self, message: str) -> NoReturn:
        from store.errors import current_lang

        zh = f"用法有误：{message}（运行 {self.prog} --help 查看用法）"
        en = f"usage error: {message} (see {self.prog} --help)"
        self.exit(EXIT_USAGE, (f"{zh} | {en}" if current_lang() == "zh" else f"{en} | {zh}") + "\n")


# -- store and secrets -------------------------------------------------------------------------

def store_path(args: argparse.Namespace) -> Path:
    if args.store:
        return Path(args.store).expanduser()
    if os.environ.get("LIUDONG_STORE"):
        return Path(os.environ["LIUDONG_STORE"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("liudong", appauthor=False)) / "store"


def ask_secret(env: str, zh: str, en: str, confirm: bool = False) -> str:
    value = os.environ.get(env)
    if value:
        return value
    from tui.output import t

    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise CliError(f"需要{zh}：请设置 {env} 或在终端中运行",
                           f"a {en} is needed: set {env} or run in a terminal")
        return line.rstrip("\n")
    import getpass

    first = getpass.getpass(t(f"{zh}：", f"{en}: "))
    if confirm:
        again = getpass.getpass(t(f"再次输入{zh}：", f"{en} again: "))
        if again != first:
            raise CliError(f"两次输入的{zh}不一致", f"the two {en}s differ")
    return first


def unlock(args: argparse.Namespace) -> Store:
    from store import Store
    from store.errors import StoreNotFound

    path = store_path(args)
    if not (path / "keyslots").exists():
        raise StoreNotFound(str(path))
    if args.recovery:
        key = ask_secret("LIUDONG_RECOVERY_KEY", "恢复密钥", "recovery key")
        return Store.open(path, recovery_key=key)
    return Store.open(path, ask_secret("LIUDONG_PASSPHRASE", "口令", "passphrase"))


# -- schema-driven flags -----------------------------------------------------------------------

METAVAR = {"date": "YYYY-MM-DD", "month": "YYYY-MM", "year": "YYYY", "bool": "yes|no",
           "ref": "ID", "refs": "ID,ID", "phone": "PHONE", "id_number": "ID_NUMBER",
           "division_code": "CODE", "int": "N", "hours": "N", "money": "YUAN"}


def add_field_flags(parser: argparse.ArgumentParser, type_name: str, *, prefix: str = "",
                    exclude: Sequence[str] = (), required: Sequence[str] = ()) -> None:
    from store.schema import TYPES
    from tui.output import choices_help

    group = parser.add_argument_group(TYPES[type_name].zh + " / " + TYPES[type_name].en)
    for f in TYPES[type_name].fields:
        if f.name in exclude or f.kind == "absences":
            continue
        text = f"{f.zh} / {f.en}"
        metavar = METAVAR.get(f.kind, "TEXT")
        if f.choices:
            text += ": " + choices_help(f.choices)
        if f.ref == "org":
            metavar = "ORG" if f.kind == "ref" else "ORG,ORG"
            text += "（名称、名称的一部分或编号 / a name, part of one, or an id）"
        group.add_argument(f.flag, dest=prefix + f.name, default=argparse.SUPPRESS,
                           metavar=metavar, help=text, required=f.name in required)


def fields_of(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in vars(args).items() if k.startswith(prefix)}


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
        keys = [out[f.name]] if f.kind == "ref" else [
            k for k in str(out[f.name]).split(",") if k.strip()]
        found = []
        for key in keys:
            try:
                found.append(resolve_org(orgs, key))
            except NotFound:
                raise ValidationError([issue(f, "org_unknown", value=key)]) from None
        out[f.name] = found[0] if f.kind == "ref" else found
    return out


# -- commands ----------------------------------------------------------------------------------

def cmd_init(args: argparse.Namespace) -> int:
    from store import Store
    from store.errors import StoreExists
    from tui.output import t

    path = store_path(args)
    if (path / "keyslots").exists():
        raise StoreExists(str(path))
    org = {"name": args.org, "kind": args.org_kind}
    if args.division_code:
        org["division_code"] = args.division_code
    passphrase = ask_secret("LIUDONG_PASSPHRASE", "新口令", "new passphrase", confirm=True)
    print(t("正在根据本机性能设定密钥强度（约 2 秒）…", "Calibrating key strength to this machine (about 2 s)…"),
          file=sys.stderr)
    store, recovery = Store.create(path, passphrase, org=org)
    store.close()
    print(t(f"已创建加密存储：{path}", f"Created an encrypted store at {path}"))
    print()
    print(t("恢复密钥（只显示这一次，请抄写在纸上并妥善保管；忘记口令时用它打开存储）：",
            "Recovery key (shown this once: write it on paper and keep it safe; it opens the store "
            "if the passphrase is lost):"))
    print()
    print("    " + recovery)
    print()
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    from tui.output import t

    with unlock(args) as store:
        new = ask_secret("LIUDONG_NEW_PASSPHRASE", "新口令", "new passphrase", confirm=True)
        store.change_passphrase(new)
    print(t("口令已更改。", "Passphrase changed."))
    return 0


def cmd_recovery_key(args: argparse.Namespace) -> int:
    from tui.output import t

    with unlock(args) as store:
        key = store.new_recovery_key()
    print(t("新的恢复密钥（只显示这一次；旧的恢复密钥已作废）：",
            "New recovery key (shown this once; the old one no longer works):"))
    print()
    print("    " + key)
    print()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from store.errors import LiudongError
    from tui.output import print_json, t

    try:
        store = unlock(args)
    except LiudongError as exc:
        if exc.exit_code != 4:
            raise
        findings = [("error", exc.zh, exc.en)]
        code = exc.exit_code
    else:
        with store:
            findings = [(f.level, f.zh, f.en) for f in store.doctor()]
        code = 4 if any(level == "error" for level, _, _ in findings) else 0
    if args.json:
        print_json([{"level": lv, "zh": zh, "en": en} for lv, zh, en in findings])
        return code
    mark = {"ok": "✓", "warn": "!", "error": "✗"}
    for level, zh, en in findings:
        print(f"{mark[level]} {t(zh, en)}")
    print(t("存储完好。", "The store is sound.") if code == 0 else
          t("发现问题，请从备份恢复或联系县里。", "Problems found: restore from a backup or call the county."))
    return code


def member_json(store: Store, doc: dict[str, Any] | None) -> dict[str, Any]:
    """A member as ``--json`` prints it, with its mobility as this store's organization sees
    it (derived, never stored: DESIGN §2.2)."""
    from store.register import member_mobility

    assert doc is not None
    return {**{k: v for k, v in doc.items() if v is not None},
            "mobility": member_mobility(store, doc)}


def cmd_member_add(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import print_json, t

    with unlock(args) as store:
        values = with_org_ids(store.live("org"), "member", fields_of(args, "m_"))
        member_id = register.add_member(store, values)
        doc = member_json(store, store.get(member_id))
    if args.json:
        print_json(doc)
    else:
        print(t(f"已添加党员 {doc['name']}（编号 {member_id}）", f"Added member {doc['name']} (id {member_id})"))
    return 0


def cmd_member_edit(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import print_json, t

    values = fields_of(args, "m_")
    for name in args.clear or []:
        values[name] = None
    if not values:
        raise CliError("没有要修改的字段", "no field to change was given")
    with unlock(args) as store:
        member = register.resolve_member(store, args.member)
        register.edit_member(store, member["id"], with_org_ids(store.live("org"), "member",
                                                               values))
        doc = member_json(store, store.get(member["id"]))
    if args.json:
        print_json(doc)
    else:
        print(t(f"已更新 {doc['name']}", f"Updated {doc['name']}"))
    return 0


def cmd_member_show(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import print_json, record_lines, show_value, t

    with unlock(args) as store:
        member = register.resolve_member(store, args.member)
        flows = sorted(store.state.records_of(member["id"], "flow"), key=lambda f: f["left_on"],
                       reverse=True)
        contacts = sorted(store.state.records_of(member["id"], "contact"),
                          key=lambda c: c["on"], reverse=True)
        if args.json:
            print_json({"member": member_json(store, member), "flows": flows,
                        "contacts": contacts})
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
        shown = [member_json(store, m) for m in docs]
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
    from tui.output import print_json, t

    with unlock(args) as store:
        member = register.resolve_member(store, args.member)
        values = with_org_ids(store.live("org"), "flow", fields_of(args, "f_"))
        flow_id = register.flow_out(store, member["id"], values)
        flow = store.get(flow_id)
    if args.json:
        print_json(flow)
    else:
        print(t(f"已登记 {member['name']} 流出（流动登记 {flow_id}），状态：待报到" if flow and
                flow["status"] == "pending_report" else
                f"已登记 {member['name']} 流出（流动登记 {flow_id}），已报到",
                f"Registered the outflow of {member['name']} (flow {flow_id})"))
    return 0


def cmd_flow_in(args: argparse.Namespace) -> int:
    from store import register
    from tui.output import print_json, t

    with unlock(args) as store:
        flow_values = with_org_ids(store.live("org"), "flow", fields_of(args, "f_"))
        if args.member:
            existing = register.resolve_member(store, args.member)
            member_id, flow_id = register.flow_in(store, existing["id"], flow_values)
        else:
            values = fields_of(args, "m_")
            if "name" not in values:
                raise CliError("请用 --name 给出流入党员的姓名，或用 --member 指定已有党员",
                               "give the arriving member's --name, or --member for one on file")
            member_id, flow_id = register.flow_in(store, values, flow_values)
        member, flow = member_json(store, store.get(member_id)), store.get(flow_id)
    if args.json:
        print_json({"member": member, "flow": flow})
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
    from tui.output import print_json, t

    with unlock(args) as store:
        member = register.resolve_member(store, args.member)
        values = {"on": args.on, "channel": args.channel, "reached": args.reached,
                  "summary": args.note, "by": args.by}
        contact_id = register.log_contact(store, member["id"], values)
        contact = store.get(contact_id)
    if args.json:
        print_json(contact)
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


def cmd_demo(args: argparse.Namespace) -> int:
    from tui.demo import run_demo

    return run_demo(args)


def cmd_interface(args: argparse.Namespace) -> int:
    from tui.output import t

    print(t("终端界面尚在开发中；现在可以使用下列命令：", "The terminal interface is not built yet; "
            "these commands work today:"))
    build_parser().print_help()
    return 0


# -- the parser --------------------------------------------------------------------------------

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


def build_parser() -> Parser:
    from store import __version__
    from store.schema import CHOICES
    from tui.output import choices_help

    p = Parser(prog="liudong", description="流动党员管理 / register of mobile party members")
    p.add_argument("--version", action="version", version=f"liudong {__version__}",
                   help="显示版本并退出 / show the version and exit")
    p.add_argument("--store", metavar="DIR", help="存储目录（默认 LIUDONG_STORE 或用户数据目录）/ "
                   "store directory (default LIUDONG_STORE or the platform data dir)")
    p.add_argument("--lang", choices=["zh", "en"], help="界面语言 / language")
    p.add_argument("--recovery", action="store_true",
                   help="用恢复密钥而非口令打开（LIUDONG_RECOVERY_KEY 或提示输入）/ "
                        "open with the recovery key instead of the passphrase")
    p.set_defaults(func=cmd_interface)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(parent: Any, name: str, func: Callable[[argparse.Namespace], int], text: str,
                json_flag: bool = False) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=text, description=text)
        sp.set_defaults(func=func)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="以 JSON 输出 / output JSON")
        return sp

    sp = command(sub, "init", cmd_init, "新建加密存储并显示恢复密钥 / create a store")
    sp.add_argument("--org", default="本支部", help="本组织名称 / name of this organization")
    sp.add_argument("--org-kind", default="branch", choices=[c[0] for c in CHOICES["org_kind"]],
                    help="组织类别 / kind of organization")
    sp.add_argument("--division-code", help="行政区划代码 / GB/T 2260 division code")
    command(sub, "passwd", cmd_passwd, "更改口令（LIUDONG_NEW_PASSPHRASE）/ change the passphrase")
    command(sub, "recovery-key", cmd_recovery_key, "生成新的恢复密钥 / make a new recovery key")
    command(sub, "doctor", cmd_doctor, "逐字节校验存储 / verify every byte of the store", True)
    command(sub, "demo", cmd_demo, "演示 / run the demo").add_argument(
        "--members", type=int, default=200, help="演示党员人数 / demo members")

    org = sub.add_parser("org", help="组织 / organizations").add_subparsers(
        dest="org_command", metavar="ACTION", parser_class=Parser, required=True)
    command(org, "list", cmd_org_list, "本机已有的组织（* 为本组织）/ organizations this store "
            "holds (* marks its own)", True)

    member = sub.add_parser("member", help="党员 / members").add_subparsers(
        dest="member_command", metavar="ACTION", parser_class=Parser, required=True)
    sp = command(member, "add", cmd_member_add, "添加党员 / add a member", True)
    add_field_flags(sp, "member", prefix="m_", exclude=("archived",), required=("name",))
    sp = command(member, "edit", cmd_member_edit, "修改党员信息 / change a member", True)
    sp.add_argument("member", metavar="MEMBER", help="编号、编号末位或姓名 / id, end of id or name")
    add_field_flags(sp, "member", prefix="m_")
    sp.add_argument("--clear", action="append", metavar="FIELD",
                    help="清空字段（如 phone）/ clear a field")
    sp = command(member, "show", cmd_member_show, "查看党员 / show a member", True)
    sp.add_argument("member", metavar="MEMBER")
    sp.add_argument("--reveal", action="store_true", help="显示完整身份证号 / show the full ID number")
    sp = command(member, "list", cmd_member_list, "列出或检索党员 / list or search members", True)
    sp.add_argument("--search", metavar="TEXT",
                    help="姓名、拼音、首字母、手机号或身份证号末几位 / name, pinyin, initials, phone, ID suffix")
    sp.add_argument("--mobility", type=choice_of("mobility"), metavar="MOBILITY",
                    help="流动状态（由流动登记得出）/ mobility, derived from the open flow: "
                         + choices_help("mobility"))
    sp.add_argument("--all", action="store_true", help="含已归档 / include archived")
    sp.add_argument("--limit", type=int, metavar="N")

    flow = sub.add_parser("flow", help="流动登记 / flows").add_subparsers(
        dest="flow_command", metavar="ACTION", parser_class=Parser, required=True)
    sp = command(flow, "out", cmd_flow_out, "登记流出 / register an outflow", True)
    sp.add_argument("member", metavar="MEMBER")
    add_field_flags(sp, "flow", prefix="f_",
                    exclude=("member_id", "status", "ended_on", "end_reason"),
                    required=("left_on", "reason"))
    sp = command(flow, "in", cmd_flow_in, "登记流入 / register an inflow", True)
    sp.add_argument("--member", metavar="MEMBER", help="已在册党员 / a member already on file")
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
        dest="contact_command", metavar="ACTION", parser_class=Parser, required=True)
    sp = command(contact, "log", cmd_contact_log, "记录一次联系 / log a contact", True)
    sp.add_argument("member", metavar="MEMBER")
    sp.add_argument("--on", required=True, metavar="YYYY-MM-DD")
    sp.add_argument("--channel", required=True, metavar="CHANNEL",
                    help="方式 / channel: " + choices_help("channel"))
    sp.add_argument("--reached", required=True, metavar="yes|no", help="是否联系上 / 是|否")
    sp.add_argument("--note", metavar="TEXT")
    sp.add_argument("--by", metavar="NAME", help="联系人 / who made the contact")

    from tui.cli_sync import add_commands

    add_commands(sub, command, Parser)
    from tui.cli_backup import add_commands as add_backup_commands

    add_backup_commands(sub, command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --lang must take effect before argparse reports an error.
    for i, a in enumerate(argv):
        if a.startswith("--lang"):
            value = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            if value in ("zh", "en"):
                os.environ["LIUDONG_LANG"] = value
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except KeyboardInterrupt:
        print("已中断 | interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (``| head``) went away: stop quietly, as other Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except CliError as exc:
        _print_error(exc.zh, exc.en)
        return exc.code
    except Exception as exc:
        from store.errors import LiudongError

        if os.environ.get("LIUDONG_DEBUG"):
            raise
        if isinstance(exc, LiudongError):
            print("错误：" + exc.message() if _zh() else "error: " + exc.message(), file=sys.stderr)
            return exc.exit_code
        if isinstance(exc, OSError):
            _print_error(f"文件操作失败：{exc.strerror}（{exc.filename}）",
                         f"file operation failed: {exc.strerror} ({exc.filename})")
            return 1
        _print_error(f"内部错误：{type(exc).__name__}: {exc}（设 LIUDONG_DEBUG=1 可查看详情）",
                     f"internal error: {type(exc).__name__}: {exc} (set LIUDONG_DEBUG=1 for details)")
        return 1


def _zh() -> bool:
    from store.errors import current_lang

    return current_lang() == "zh"


def _print_error(zh: str, en: str) -> None:
    print(f"错误：{zh} | {en}" if _zh() else f"error: {en} | {zh}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
