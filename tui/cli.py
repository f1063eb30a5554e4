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
    from tui.output import t

    print(t("终端界面尚在开发中；现在可以使用下列命令：", "The terminal interface is not built yet; "
            "these commands work today:"))
    build_parser().print_help()
    return 0


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
    command(sub, "demo", cmd_demo, "演示 / run the demo").add_argument(
        "--members", type=int, default=200, help="演示党员人数 / demo members")

    from tui.cli_register import add_commands as add_register_commands

    add_register_commands(sub, command, Parser)
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
