"""Commands that reach the county: ``serve``, ``admin``, ``enroll``, ``sync``, ``conflict``.

``serve`` and ``admin`` never load Textual or the device store; ``enroll`` and ``sync`` never
load FastAPI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tui.cli import CliError, add_field_flags, fields_of, unlock

DEFAULT_PORT = 8470


# -- the county server -------------------------------------------------------------------------

def _engine(args: argparse.Namespace) -> Any:
    from sync.server import db

    engine = db.make_engine(args.db or os.environ.get("LIUDONG_DB"))
    db.migrate(engine)
    return engine


def cmd_serve(args: argparse.Namespace) -> int:
    import errno
    import socket

    from sync.errors import CannotListen
    from sync.server.app import create_app, tune_threads
    from sync.server.serving import make_server
    from tui.output import t

    if bool(args.tls_cert) != bool(args.tls_key):
        raise CliError("--tls-cert 与 --tls-key 须同时给出", "give both --tls-cert and --tls-key")
    if args.tls_cert and args.insecure_http:
        raise CliError("--insecure-http 与 --tls-cert 不能同时使用",
                       "--insecure-http and --tls-cert do not go together")
    if not 0 <= args.port <= 65535:
        raise CliError("--port 应在 0 到 65535 之间", "--port must be between 0 and 65535")
    # The listening sockets are bound here, before anything else, and handed to uvicorn: a taken
    # port is reported in one line with its own exit code, and nothing can take the port between
    # this check and the server starting. Like asyncio's create_server, every address the host
    # resolves to gets a socket (IPv6 ones IPv6-only), with SO_REUSEADDR on POSIX only.
    host = args.host
    where = f"[{host}]:{args.port}" if ":" in host else f"{host}:{args.port}"
    denied = ("没有权限（1024 以下的端口通常需要管理员权限）",
              "not permitted (ports below 1024 usually need administrator rights)")
    reasons = {
        errno.EADDRINUSE: ("端口已被占用（另一个程序正在使用它；换一个 --port，或先停止那个程序）",
                           "the port is in use (another program holds it: choose another "
                           "--port, or stop that program)"),
        errno.EACCES: denied, errno.EPERM: denied,
        errno.EADDRNOTAVAIL: ("本机没有这个地址（检查 --host）",
                              "this computer has no such address (check --host)"),
    }
    sockets: list[socket.socket] = []
    try:
        try:
            found = socket.getaddrinfo(host or None, args.port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise CannotListen(where, f"无法解析主机名（{exc.strerror}）",
                               f"unknown host ({exc.strerror})") from None
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        zh, en = reasons.get(exc.errno or 0, (exc.strerror or str(exc), exc.strerror or str(exc)))
        raise CannotListen(where, zh, en) from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise

    private = tempfile.TemporaryDirectory(prefix="liudong-tls-")
    try:
        engine = _engine(args)
        tune_threads()
        certfile, keyfile, fingerprint = _tls(engine, args, Path(private.name))
        scheme = "https" if certfile else "http"
        port = sockets[0].getsockname()[1]
        url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
        print(t(f"县级服务器已启动：{url}（数据库：{engine.url!r}）",
                f"County server at {url} (database {engine.url!r})"), flush=True)
        if fingerprint:
            print(t(f"  证书指纹（登记码携带它，各笔记本据此认出本服务器）：{fingerprint}",
                    f"  certificate fingerprint (enrollment codes carry it; laptops pin it): "
                    f"{fingerprint}"), flush=True)
        else:
            print(t("  警告：--insecure-http 以明文传输，链路上的人能读到党员信息",
                    "  warning: --insecure-http sends everything in the clear: anyone on the "
                    "link can read members' data"), file=sys.stderr, flush=True)
        # uvicorn with deadlines for a request's head and body and a cap on connections
        server = make_server(create_app(engine), ssl_certfile=certfile, ssl_keyfile=keyfile)
        try:
            server.run(sockets=sockets)
        except KeyboardInterrupt:  # Ctrl-C stops the server: as with uvicorn.run, not an error
            pass
        except SystemExit:  # uvicorn's failed startup exits 3, which is our "wrong passphrase"
            if server.started:
                raise
    finally:
        for sock in sockets:
            sock.close()
        private.cleanup()
    if not server.started:
        raise CliError("县级服务器未能启动（见上方日志）",
                       "the county server did not start (see the log above)", code=1)
    return 0


def _tls(engine: Any, args: argparse.Namespace, private: Path,
         ) -> tuple[str | None, str | None, str | None]:
    """(certificate file, key file, fingerprint) `serve` speaks TLS with (DESIGN §3.4): the one
    given, or else the one this server made for itself on its first run (kept in its database,
    so a restored server keeps it), written for uvicorn into a private directory that goes when
    `serve` stops. Plain HTTP only with --insecure-http."""
    from sync.server import identity

    if args.insecure_http:
        identity.record_served(engine, identity.INSECURE)
        return None, None, None
    if args.tls_cert:
        fingerprint = identity.pem_fingerprint(Path(args.tls_cert).read_text())
        identity.record_served(engine, fingerprint)
        return args.tls_cert, args.tls_key, fingerprint
    cert_pem, key_pem = identity.self_signed(engine)
    os.chmod(private, 0o700)
    files = []
    for name, pem in (("cert.pem", cert_pem), ("key.pem", key_pem)):
        fd = os.open(private / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
        files.append(str(private / name))
    fingerprint = identity.pem_fingerprint(cert_pem)
    identity.record_served(engine, fingerprint)
    return files[0], files[1], fingerprint


def _org_id(engine: Any, key: str) -> str:
    """An organization by id, the end of one, its name or a part of it (store/orgs.py)."""
    from store.orgs import resolve_org
    from sync.server.admin import list_orgs

    return resolve_org(list_orgs(engine), key)


def cmd_admin_org_add(args: argparse.Namespace) -> int:
    from sync.server.admin import add_org
    from tui.output import print_json, t

    engine = _engine(args)
    fields = fields_of(args, "o_")
    for name in ("parent_id", "approved_by_org_id"):  # M-4.1: the approving county committee
        if fields.get(name):
            fields[name] = _org_id(engine, fields[name])
    org_id = add_org(engine, fields)
    if args.json:
        print_json({"id": org_id, **fields})
    else:
        print(t(f"已添加组织 {fields['name']}（编号 {org_id}）", f"Added {fields['name']} (id {org_id})"))
    return 0


def cmd_admin_org_list(args: argparse.Namespace) -> int:
    from store.errors import current_lang
    from store.schema import choice_label
    from sync.server.admin import list_orgs
    from tui.output import print_json

    orgs = list_orgs(_engine(args))
    if args.json:
        print_json(orgs)
        return 0
    for o in orgs:
        kind = choice_label("org_kind", o["kind"], current_lang())
        print(f"{'  ' * o['depth']}{o['name']}（{kind}）  {o['id']}")
    return 0


def cmd_admin_enroll_code(args: argparse.Namespace) -> int:
    from sync.server import identity
    from sync.server.admin import make_enroll_code
    from tui.output import print_json, t

    engine = _engine(args)
    plain = identity.served(engine) == identity.INSECURE and not args.tls_cert
    url = args.server_url or os.environ.get("LIUDONG_SERVER_URL") or \
        f"{'http' if plain else 'https'}://127.0.0.1:{DEFAULT_PORT}"
    made = make_enroll_code(engine, _org_id(engine, args.org), url, args.hours, args.tls_cert)
    if args.json:
        print_json(made)
        return 0
    until = dt.datetime.fromtimestamp(made["expires_at"]).strftime("%Y-%m-%d %H:%M")
    print(t(f"登记码（一次有效，{until} 前使用）：", f"Enrollment code (one use, valid until {until}):"))
    print()
    print("    " + made["code"])
    print()
    print(t("在支部电脑上运行 liudong enroll，在提示处粘贴登记码（不回显，也不留在命令历史中）",
            "On the branch laptop run liudong enroll and paste the code at its prompt (not "
            "echoed, and kept out of the shell's history)"))
    print(t("登记码携带县级服务器的地址、公钥和证书指纹：笔记本只采纳能用此公钥核验的回应。",
            "The code carries the server's address, its public key and its certificate's "
            "fingerprint: the laptop acts only on answers that verify with that key."))
    if url.startswith("http://"):
        print(t("警告：此地址是明文 HTTP，链路上的人能读到党员信息（回应仍经签名核验）",
                "warning: this address is plain HTTP: anyone on the link can read members' "
                "data (answers are still verified by signature)"), file=sys.stderr)
    return 0


def cmd_admin_device_list(args: argparse.Namespace) -> int:
    from sync.server.admin import list_devices
    from tui.output import print_json, t, table

    rows = list_devices(_engine(args))
    if args.json:
        print_json(rows)
        return 0

    def when(ts: float | None) -> str:
        return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"

    print(table([t("设备", "device"), t("名称", "name"), t("组织", "organization"),
                 t("状态", "status"), t("最近同步", "last sync")],
                [[r["device_id"], r["name"], r["org_name"] or r["org_id"], r["status"],
                  when(r["last_seen"])] for r in rows]))
    return 0


def cmd_admin_device_revoke(args: argparse.Namespace) -> int:
    from sync.server.admin import revoke_device
    from tui.output import t

    revoke_device(_engine(args), args.device)
    print(t(f"已注销设备 {args.device}；它下次联网时将清除本机密钥",
            f"Revoked {args.device}; it erases its keys the next time it connects"))
    return 0


def cmd_admin_task_send(args: argparse.Namespace) -> int:
    from sync.server.admin import send_task
    from tui.output import print_json, t

    engine = _engine(args)
    fields: dict[str, Any] = {
        "issued_by_org_id": _org_id(engine, args.issuer),
        "target_org_ids": [_org_id(engine, o.strip()) for o in args.to.split(",") if o.strip()],
        "title": args.title, "body": args.body, "due_on": args.due}
    task_id = send_task(engine, {k: v for k, v in fields.items() if v is not None})
    if args.json:
        print_json({"id": task_id, **fields})
    else:
        print(t(f"已下发调度任务（编号 {task_id}）", f"Sent the task (id {task_id})"))
    return 0


def cmd_admin_stats(args: argparse.Namespace) -> int:
    from decimal import Decimal

    from store.stats import COLUMNS, percent, yuan
    from sync.server.admin import stats
    from tui.output import print_json, t, table

    engine = _engine(args)
    rows = stats(engine, _org_id(engine, args.org) if args.org else None)
    if args.json:
        print_json(rows)
        return 0

    def cell(row: dict[str, Any], key: str) -> str:
        value = row[key]
        if key.endswith("_rate"):
            return percent(value)
        if key == "fund_balance":
            return yuan(Decimal(value))
        return str(value)

    def synced(at: float | None) -> str:
        return dt.datetime.fromtimestamp(at).strftime("%m-%d %H:%M") if at else "—"

    print(table([t("组织", "organization"), *(t(zh, en) for _, zh, en, _ in COLUMNS),
                 t("设备", "devices"), t("最近同步", "last sync")],
                [["  " * r["depth"] + r["name"], *(cell(r, key) for key, *_ in COLUMNS),
                  str(r["devices"]), synced(r["last_sync"])] for r in rows]))
    return 0


def cmd_admin_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sync.server.admin import backup
    from sync.server.backup_crypto import check_out
    from sync.server.backup_keys import fingerprint, load_public_key
    from tui.cli import ask_secret
    from tui.output import t

    out = Path(args.out).expanduser()
    check_out(out)  # before a passphrase is asked for
    if args.recipient:
        public = load_public_key(Path(args.recipient).expanduser())
        counts = backup(_engine(args), out, recipient=public)
        how_zh = f"用公钥 {fingerprint(public)} 加密；恢复需要对应的私钥"
        how_en = f"encrypted to public key {fingerprint(public)}; restoring needs its private key"
    else:
        passphrase = ask_secret("LIUDONG_BACKUP_PASSPHRASE", "备份口令", "backup passphrase",
                                confirm=True)
        counts = backup(_engine(args), out, passphrase=passphrase)
        how_zh, how_en = "用备份口令加密", "encrypted with the backup passphrase"
    print(t(f"已备份到 {args.out}（{sum(counts.values())} 行，{how_zh}）",
            f"Backed up to {args.out} ({sum(counts.values())} rows, {how_en})"))
    return 0


def cmd_admin_backup_key(args: argparse.Namespace) -> int:
    from sync.server.backup_keys import write_key_pair
    from tui.output import t

    made = write_key_pair(os.path.expanduser(args.out))
    print(t(f"已生成备份密钥对（指纹 {made['fingerprint']}）：", f"Made a backup key pair "
            f"(fingerprint {made['fingerprint']}):"))
    print(t(f"  公钥 {made['public']}：放在服务器上，用于 liudong admin backup --recipient",
            f"  public key {made['public']}: keep it on the server, for liudong admin backup "
            "--recipient"))
    print(t(f"  私钥 {made['private']}：抄送到离线介质（如保险柜中的 U 盘）后从本机删除；"
            "恢复时用 liudong admin restore --identity，丢失则备份无法恢复",
            f"  private key {made['private']}: copy it to offline media (a USB stick in a "
            "safe) and delete it from this machine; liudong admin restore --identity needs it, "
            "and without it the backups cannot be restored"))
    return 0


def cmd_admin_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sync.server import db
    from sync.server.admin import restore
    from sync.server.backup_crypto import open_backup
    from sync.server.backup_keys import BackupKeyError, load_private_key
    from tui.cli import ask_secret
    from tui.output import t

    source = Path(args.file).expanduser()
    with open_backup(source) as sealed:  # a damaged file is reported before a secret is asked
        kind, recipient = sealed.key_type, sealed.recipient
    passphrase, private = None, None
    if args.identity:
        if kind != "x25519":
            raise BackupKeyError("这份备份是用口令加密的：不用 --identity，输入备份口令即可",
                                 "this backup was made with a passphrase: leave out "
                                 "--identity and give the backup passphrase")
        private = load_private_key(Path(args.identity).expanduser())
    elif kind == "x25519":
        raise BackupKeyError(f"这份备份是用公钥 {recipient} 加密的：请用 --identity 给出对应的私钥文件",
                             f"this backup was made to public key {recipient}: give its private "
                             "key file with --identity")
    else:
        passphrase = ask_secret("LIUDONG_BACKUP_PASSPHRASE", "备份口令", "backup passphrase")
    engine = db.make_engine(args.db or os.environ.get("LIUDONG_DB"))
    counts = restore(engine, source, passphrase=passphrase, private_key=private)
    print(t(f"已从 {args.file} 恢复（{sum(counts.values())} 行，每一块都已解密校验）；"
            "各设备下次同步时会补传服务器缺少的数据",
            f"Restored {args.file} ({sum(counts.values())} rows, every chunk decrypted and "
            "verified); devices send again what the server lacks when they next sync"))
    return 0


# -- the device --------------------------------------------------------------------------------

def cmd_enroll(args: argparse.Namespace) -> int:
    from sync.client import Device
    from sync.errors import SyncError
    from tui.cli import ASK, ask_value
    from tui.output import t

    with unlock(args) as store:
        # "-", a bare --code or none: asked for (after the passphrase), never in argv
        code = ask_value("登记码", "enrollment code") if args.code == ASK else args.code
        device = Device(store)
        try:
            answer = device.enroll(code, args.server, args.name)
            org = answer.get("org_name") or answer["org_id"]
            print(t(f"已登记到 {org}", f"Enrolled with {org}"))
            try:
                report = device.sync()
            except SyncError as exc:
                print(t(f"首次同步未完成：{exc.zh}；稍后运行 liudong sync",
                        f"the first sync did not finish: {exc.en}; run liudong sync later"),
                      file=sys.stderr)
            else:
                print(t(f"首次同步完成：发送 {report.sent} 个操作，收到 {report.received} 条记录",
                        f"First sync done: sent {report.sent} op(s), received {report.received} "
                        "record(s)"))
        finally:
            device.close()
    return 0


EXIT_REFUSED_WRITES = 11  # in sync, but the server refused some of this laptop's writes


def _refusal_line(r: dict[str, Any]) -> str:
    """One refused write as people read it: the member's name, then why (the message names the
    field by its label)."""
    from store.schema import TYPES
    from tui.output import t

    rtype = TYPES.get(str(r.get("type")))
    what = r.get("title") or (t(rtype.zh, rtype.en) if rtype else r.get("rec_id"))
    return f"{what}：{t(r['zh'], r['en'])}"


def cmd_sync(args: argparse.Namespace) -> int:
    from sync.client import Device
    from tui.output import print_json, t

    with unlock(args) as store:
        if args.rejected:
            rejected = store.meta.get("rejected", [])
            if args.json:
                print_json(rejected)
            for r in rejected if not args.json else []:
                print(_refusal_line(r))
            return 0
        device = Device(store)
        try:
            report = device.sync()
        finally:
            device.close()
        pending = store.state.pending_count()
    code = EXIT_REFUSED_WRITES if report.rejected else 0
    if args.json:
        print_json({"requests": report.requests, "sent": report.sent,
                    "received": report.received, "removed": report.removed,
                    "rejected": report.rejected, "conflicts": report.conflicts,
                    "pending": pending, "linked": report.linked,
                    "rewound": list(report.rewound) if report.rewound else None})
        return code
    if report.rewound:
        acked, moved = report.rewound
        print(t(f"注意：本机存储曾退回到较早的副本（或日志末尾丢失）。县级服务器已有本机到第 {acked} 号的操作；"
                f"本机未发送的 {moved} 个操作已重新编号并发送，服务器上本机此前的记录已取回，没有丢失。",
                f"Note: this store had gone back to an older copy (or lost the end of its "
                f"journal). The county server holds this laptop's ops up to #{acked}; the "
                f"{moved} op(s) not sent yet were renumbered and sent, and what this laptop had "
                "sent before came back from the server: nothing was lost."), file=sys.stderr)
    print(t(f"已同步：发送 {report.sent} 个操作，收到 {report.received} 条更新，"
            f"移出 {report.removed} 条（{report.requests} 次往返）",
            f"In sync: sent {report.sent} op(s), received {report.received} update(s), "
            f"removed {report.removed} ({report.requests} round trip(s))"))
    if report.linked:
        print(t(f"  {report.linked} 条登记与县里已有的记录合并（同一人只保留一条记录）",
                f"  {report.linked} record(s) linked to ones the county already had "
                "(one person, one record)"))
    if report.conflicts:
        print(t(f"  有 {report.conflicts} 个冲突待处理：liudong conflict list",
                f"  {report.conflicts} conflict(s) to resolve: liudong conflict list"))
    if report.rejected:
        print(t(f"县级服务器拒绝了 {len(report.rejected)} 项修改（未保存在县里）：",
                f"The county server refused {len(report.rejected)} change(s) (not kept there):"),
              file=sys.stderr)
        for r in report.rejected:
            print("  " + _refusal_line(r), file=sys.stderr)
        print(t("  全部列表：liudong sync --rejected", "  the full list: liudong sync --rejected"),
              file=sys.stderr)
    return code


def cmd_conflict_list(args: argparse.Namespace) -> int:
    from tui.output import print_json, show_value, t
    from tui.view import field_label, record_title

    with unlock(args) as store:
        open_ = [c for c in store.live("conflict") if c.get("status") == "open"]
        if args.json:
            print_json(open_)
            return 0
        if not open_:
            print(t("没有待处理的冲突", "No conflicts to resolve"))
        for c in open_:
            title = record_title(store, c["subject_id"], c["subject_type"])
            print(f"{c['id']}  {title}  {field_label(c['subject_type'], c['field'])}")
            for i, v in enumerate(c["values"], start=1):
                shown = show_value(c["subject_type"], c["field"], v.get("value"))
                print(f"    {i}. {shown}")
    return 0


def cmd_conflict_resolve(args: argparse.Namespace) -> int:
    from store.register import resolve_conflict
    from tui.output import t

    with unlock(args) as store:
        conflict = store.get(args.conflict.upper())
        if conflict is None or conflict["type"] != "conflict":
            from store.errors import NotFound

            raise NotFound("冲突", "conflict", args.conflict)
        if args.pick is not None:
            values = conflict["values"]
            if not 1 <= args.pick <= len(values):
                raise CliError(f"--pick 应在 1 到 {len(values)} 之间",
                               f"--pick must be between 1 and {len(values)}")
            value = values[args.pick - 1]["value"]
        elif args.value is not None:
            value = args.value
        else:
            raise CliError("请用 --pick N 或 --value 给出取值", "give --pick N or --value")
        resolve_conflict(store, conflict["id"], value)
    print(t("冲突已处理，下次同步时生效", "Resolved; it reaches the county with the next sync"))
    return 0


# -- the parser --------------------------------------------------------------------------------

def add_commands(sub: Any, command: Any, parser_class: type) -> None:
    sp = command(sub, "serve", cmd_serve, "运行县级服务器 / run the county server")
    sp.add_argument("--db", help="数据库 URL（默认 SQLite；postgresql://…）/ database URL")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=DEFAULT_PORT)
    sp.add_argument("--tls-cert", metavar="FILE",
                    help="证书（默认用本服务器首次运行时自签的证书）/ certificate (default: the "
                         "self-signed one this server made on its first run)")
    sp.add_argument("--tls-key", metavar="FILE")
    sp.add_argument("--insecure-http", action="store_true",
                    help="不加密，以明文 HTTP 服务（仅供测试）/ serve plain, unencrypted HTTP "
                         "(for tests only)")

    admin_parser = sub.add_parser("admin", help="县级管理 / county administration")
    admin_parser.add_argument("--db", help="数据库 URL（默认与 serve 相同）/ database URL")
    admin = admin_parser.add_subparsers(dest="admin_command", metavar="ACTION",
                                        parser_class=parser_class, required=True)
    org = admin.add_parser("org", help="组织 / organizations").add_subparsers(
        dest="org_command", metavar="ACTION", parser_class=parser_class, required=True)
    sp = command(org, "add", cmd_admin_org_add, "添加组织 / add an organization", True)
    add_field_flags(sp, "org", prefix="o_", required=("name", "kind"))
    command(org, "list", cmd_admin_org_list, "组织树 / the organization tree", True)
    sp = command(admin, "enroll-code", cmd_admin_enroll_code,
                 "生成一次性登记码 / make a one-time enrollment code", True)
    sp.add_argument("--org", required=True, help="组织编号或名称 / organization id or name")
    sp.add_argument("--hours", type=float, default=72, help="有效小时数 / hours valid")
    sp.add_argument("--server-url", help="设备访问本服务器的地址 / the address devices use")
    sp.add_argument("--tls-cert", metavar="FILE", help="serve 所用的证书（默认：serve 正在或将要使用"
                    "的证书），其指纹写入登记码 / the certificate serve uses (default: the one "
                    "serve uses or will make), whose fingerprint the code carries")
    device = admin.add_parser("device", help="设备 / devices").add_subparsers(
        dest="device_command", metavar="ACTION", parser_class=parser_class, required=True)
    command(device, "list", cmd_admin_device_list, "设备列表 / list devices", True)
    command(device, "revoke", cmd_admin_device_revoke, "注销设备 / revoke a device").add_argument(
        "device", metavar="DEVICE")
    task = admin.add_parser("task", help="工作调度 / tasks").add_subparsers(
        dest="task_command", metavar="ACTION", parser_class=parser_class, required=True)
    sp = command(task, "send", cmd_admin_task_send, "下发调度任务 / send a task", True)
    sp.add_argument("--from", dest="issuer", required=True, help="下发组织 / issuing org")
    sp.add_argument("--to", required=True, help="接收组织，逗号分隔 / target orgs, comma separated")
    sp.add_argument("--title", required=True)
    sp.add_argument("--body")
    sp.add_argument("--due", metavar="YYYY-MM-DD")
    command(admin, "stats", cmd_admin_stats, "统计 / statistics", True).add_argument(
        "--org", help="只看该组织及其下级，按该组织设备所见统计 / this organization and those "
        "below it, counted as its own devices count them")
    sp = command(admin, "backup", cmd_admin_backup,
                 "在线加密备份（口令取自 LIUDONG_BACKUP_PASSPHRASE 或提示输入）/ consistent, "
                 "encrypted backup (passphrase from LIUDONG_BACKUP_PASSPHRASE or asked for)")
    sp.add_argument("--out", required=True, metavar="FILE")
    sp.add_argument("--recipient", metavar="PUBKEYFILE",
                    help="用此公钥加密而不用口令（见 backup-key）/ encrypt to this public key "
                         "instead of a passphrase (see backup-key)")
    command(admin, "backup-key", cmd_admin_backup_key,
            "生成备份密钥对 PREFIX.pub 与 PREFIX.key / make a backup key pair PREFIX.pub and "
            "PREFIX.key").add_argument("--out", required=True, metavar="PREFIX")
    sp = command(admin, "restore", cmd_admin_restore,
                 "解密、校验备份并恢复到空数据库 / decrypt, verify and restore a backup into an "
                 "empty database")
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("--identity", metavar="PRIVATEKEYFILE",
                    help="备份用公钥加密时：对应的私钥文件 / for a backup made to a public key: "
                         "its private key file")

    sp = command(sub, "enroll", cmd_enroll, "登记到县级服务器 / enroll with the county server")
    sp.add_argument("--code", nargs="?", const="-", default="-", metavar="CODE|-",
                    help="县里给的登记码；给 - 或不给则提示输入（不回显）或从标准输入读一行，不留在命令行和历史中 / "
                         "the enrollment code; - or none: asked for without echo, or one line "
                         "of stdin, so it stays out of argv and shell history")
    sp.add_argument("--server", help="另一个服务器地址（登记码中已含；公钥和证书仍以登记码为准）/ "
                    "another address for the server (the code has one; its key and "
                    "certificate still come from the code)")
    sp.add_argument("--name", help="本设备名称 / a name for this computer")
    sp = command(sub, "sync", cmd_sync, "与县级服务器同步 / sync with the county", True)
    sp.add_argument("--rejected", action="store_true",
                    help="列出被服务器拒绝的操作 / list ops the server refused")
    conflict = sub.add_parser("conflict", help="同步冲突 / sync conflicts").add_subparsers(
        dest="conflict_command", metavar="ACTION", parser_class=parser_class, required=True)
    command(conflict, "list", cmd_conflict_list, "待处理的冲突 / open conflicts", True)
    sp = command(conflict, "resolve", cmd_conflict_resolve, "处理冲突 / resolve a conflict")
    sp.add_argument("conflict", metavar="ID")
    sp.add_argument("--pick", type=int, metavar="N", help="取第 N 个值 / keep value N")
    sp.add_argument("--value", help="另给一个值 / a value of your own")
