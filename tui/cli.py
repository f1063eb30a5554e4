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


def ask_value(zh: str, en: str) -> str:
    """A sensitive value given as ``-`` (or a flag without a value): asked for without echo on a
    terminal, else one line of stdin. Either way it never shows in argv or shell history."""
    from tui.output import t

    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(t(f"{zh}（输入时不显示）：", f"{en} (not echoed): "))
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise CliError(f"没有读到{zh}：请在终端中输入，或在标准输入中给出一行",
                       f"no {en} was read: type it in a terminal or give it as a line on stdin")
    return value


def unlock(args: argparse.Namespace) -> Store:
    from store import Store
    from store.errors import StoreNotFound

    check_required(args)  # a usage problem is reported before any secret is asked for
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


ASK = "-"  # a sensitive field's value, or the enrollment code, to be asked for (ask_value)
FIELDSET = "_fieldset_"  # namespace key: prefix → (record type, field names, required names)
JSON_IN_HELP = ("从文件或标准输入（-）读取记录字段，JSON 对象，字段名同 store/schema.py / the record's "
                "fields as a JSON object (names as in store/schema.py) from FILE or stdin (-)")


def add_json_in(parser: argparse.ArgumentParser) -> None:
    """``--json-in FILE|-``; call before add_field_flags, whose required flags then become
    "required as a flag or in the JSON"."""
    parser.add_argument("--json-in", metavar="FILE|-", help=JSON_IN_HELP)
    parser.set_defaults(_takes_json_in=True)


def add_field_flags(parser: argparse.ArgumentParser, type_name: str, *, prefix: str = "",
                    exclude: Sequence[str] = (), required: Sequence[str] = ()) -> None:
    from store.schema import TYPES
    from tui.output import choices_help

    json_in = bool(parser.get_default("_takes_json_in"))
    group = parser.add_argument_group(TYPES[type_name].zh + " / " + TYPES[type_name].en)
    names = []
    for f in TYPES[type_name].fields:
        if f.name in exclude or f.kind == "absences":
            continue
        names.append(f.name)
        text = f"{f.zh} / {f.en}"
        metavar = METAVAR.get(f.kind, "TEXT")
        extra: dict[str, Any] = {}
        if f.choices:
            text += ": " + choices_help(f.choices)
        if f.ref == "org":
            metavar = "ORG" if f.kind == "ref" else "ORG,ORG"
            text += "（名称、名称的一部分或编号 / a name, part of one, or an id）"
        if f.sensitive:
            # personal data: "-" or no value keeps it out of argv and shell history
            extra = {"nargs": "?", "const": ASK}
            text += ("（给 - 或不给值则提示输入、不回显；非终端时从标准输入读一行 / - or no value: "
                     "asked for without echo, or one line of stdin when it is not a terminal)")
        group.add_argument(f.flag, dest=prefix + f.name, default=argparse.SUPPRESS,
                           metavar=metavar, help=text,
                           required=f.name in required and not json_in, **extra)
    parser.set_defaults(**{FIELDSET + prefix: (type_name, tuple(names), tuple(required))})


def _fieldsets(args: argparse.Namespace) -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return {k[len(FIELDSET):]: v for k, v in vars(args).items() if k.startswith(FIELDSET)}


def _flag_values(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in vars(args).items() if k.startswith(prefix)}


def check_required(args: argparse.Namespace, given: dict[str, dict[str, Any]] | None = None,
                   ) -> None:
    """Fields required as flags, when --json-in may give them instead: checked like argparse
    would (before unlocking when there is no JSON, after reading it when there is)."""
    if given is None:
        if getattr(args, "json_in", None):
            return
        given = {p: _flag_values(args, p) for p in _fieldsets(args)}
    missing = [name for p, (_, _, required) in _fieldsets(args).items()
               for name in required if given.get(p, {}).get(name) in (None, "")]
    if missing:
        flags = ", ".join("--" + n.replace("_", "-") for n in missing)
        raise CliError(f"缺少必需的参数：{flags}（或在 --json-in 中给出 {', '.join(missing)}）",
                       f"the following arguments are required: {flags} (or "
                       f"{', '.join(missing)} in --json-in)")


def _read_json_in(source: str) -> dict[str, Any]:
    import json

    from tui.output import t

    if source == ASK:
        if sys.stdin.isatty():
            print(t("请输入 JSON 对象，以 Ctrl-D 结束：", "Type the JSON object, then Ctrl-D:"),
                  file=sys.stderr)
        text = sys.stdin.read()
        where = "标准输入", "stdin"
    else:
        text = Path(source).expanduser().read_text(encoding="utf-8")
        where = source, source
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--json-in（{where[0]}）不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列",
                       f"--json-in ({where[1]}) is not valid JSON: {exc.msg} at line "
                       f"{exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise CliError(f"--json-in（{where[0]}）嵌套过深", f"--json-in ({where[1]}) is nested too "
                       "deeply") from None
    if not isinstance(data, dict):
        raise CliError(f"--json-in（{where[0]}）应为一个 JSON 对象（{{\"字段名\": 值, …}}）",
                       f"--json-in ({where[1]}) must be one JSON object "
                       f"({{\"field\": value, …}})")
    return data


def read_fields(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every record's fields this command was given, by flag prefix: the flags, sensitive ones
    given as ``-`` asked for (in schema order), then the fields of ``--json-in`` (validated like
    flags: a field the command has no flag for is an ``unknown_field``). Read once, after the
    store is unlocked, so a passphrase on stdin comes first."""
    cached = vars(args).get("_fields_read")
    if cached is not None:
        return cached
    from store.errors import ValidationError
    from store.schema import TYPES
    from store.validate import issue

    sets = _fieldsets(args)
    given = {p: _flag_values(args, p) for p in sets}
    json_in = getattr(args, "json_in", None)
    asks = [(p, f) for p, (type_name, _, _) in sets.items() for f in TYPES[type_name].fields
            if f.sensitive and given[p].get(f.name) == ASK]
    if asks and json_in == ASK:
        f = asks[0][1]
        raise CliError(f"--json-in - 已占用标准输入：请把 {f.name} 写在 JSON 中",
                       f"--json-in - takes stdin: put {f.name} in the JSON instead of {f.flag} -")
    for p, f in asks:
        given[p][f.name] = ask_value(f.zh, f.en)
    if json_in:
        unknown = []
        for name, value in _read_json_in(json_in).items():
            prefix = next((p for p, (_, names, _) in sets.items() if name in names), None)
            if prefix is None:
                unknown.append(issue(name, "unknown_field"))
            elif name in given[prefix]:
                flag = "--" + name.replace("_", "-")
                raise CliError(f"{name} 同时由 {flag} 和 --json-in 给出，只能给一次",
                               f"{name} is given both as {flag} and in --json-in: give it once")
            else:
                given[prefix][name] = value
        if unknown:
            raise ValidationError(unknown)
        check_required(args, given)
    args._fields_read = given
    return given


def fields_of(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The fields given for one record (add_field_flags' prefix); see read_fields."""
    if FIELDSET + prefix in vars(args):
        return dict(read_fields(args)[prefix])
    return _flag_values(args, prefix)


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


def cmd_demo(args: argparse.Namespace) -> int:
    from tui.demo import run_demo

    return run_demo(args)


def cmd_interface(args: argparse.Namespace) -> int:
    from tui.app import run_interface

    path = store_path(args)
    return run_interface(path, lang=args.lang, recovery=args.recovery)


# -- the parser --------------------------------------------------------------------------------

def build_parser() -> Parser:
    from store import __version__
    from store.schema import CHOICES

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
    sp = command(sub, "demo", cmd_demo, "演示：本机上的县级服务器、演示数据和终端界面 / the demo: a "
                 "county server on loopback, demo data and the interface")
    sp.add_argument("--members", type=int, default=200,
                    help="演示支部的党员人数 / members of the demo branch")
    sp.add_argument("--dir", default=".", metavar="DIR",
                    help="演示文件所在目录（demo-store 等；默认当前目录）/ where the demo's files "
                         "go (demo-store and the rest; default: here)")
    sp.add_argument("--no-interface", action="store_true",
                    help="不打开界面，只显示概况 / print a summary instead of opening the "
                         "interface")

    from tui.cli_register import add_commands as add_register_commands

    add_register_commands(sub, command, Parser)
    from tui.cli_workflow import add_commands as add_workflow_commands

    add_workflow_commands(sub, command, Parser)
    from tui.cli_sync import add_commands

    add_commands(sub, command, Parser)
    from tui.cli_backup import add_commands as add_backup_commands

    add_backup_commands(sub, command)
    from tui.cli_worklist import add_commands as add_worklist_commands

    add_worklist_commands(sub, command)
    from tui.cli_io import add_commands as add_io_commands

    add_io_commands(sub, command)
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
