"""``liudong backup --out FILE`` and ``liudong restore FILE``: an encrypted copy of the store in
one file, for a USB stick (DESIGN §5, FORMAT.md "Backup file")."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tui.cli import ask_secret, store_path, unlock


def cmd_backup(args: argparse.Namespace) -> int:
    from store.backup import write_backup
    from tui.output import print_json, t

    with unlock(args) as store:
        info = write_backup(store, Path(args.out).expanduser())
    if args.json:
        print_json(info)
        return 0
    print(t(f"已写入备份：{info['path']}（{info['size']} 字节，第 {info['generation']} 代，"
            f"{info['files']} 个文件）",
            f"Backup written to {info['path']} ({info['size']} bytes, generation "
            f"{info['generation']}, {info['files']} files)"))
    print(t("恢复时需要现在的口令或恢复密钥。", "Restoring it needs the passphrase or the "
            "recovery key the store has now."))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from store.backup import check_target, inspect, restore_backup
    from tui.output import print_json, t

    backup_file = Path(args.file).expanduser()
    target = store_path(args)
    # A damaged file or a taken directory is reported before any secret is asked for.
    backup = inspect(backup_file)
    check_target(target)
    if args.recovery or args.restore_recovery:
        key = ask_secret("LIUDONG_RECOVERY_KEY", "恢复密钥", "recovery key")
        store = restore_backup(backup_file, target, recovery_key=key)
    else:
        passphrase = ask_secret("LIUDONG_PASSPHRASE", "口令", "passphrase")
        store = restore_backup(backup_file, target, passphrase=passphrase)
    with store:
        members = sum(1 for _ in store.live("member"))
        info = {"path": str(target), "store_id": store.store_id, "generation": store.gen,
                "created_at": backup.created_at, "members": members}
    if args.json:
        print_json(info)
        return 0
    print(t(f"已从备份恢复存储：{target}（备份时间 {backup.created_at}，第 {info['generation']} 代，"
            f"{members} 名党员，已逐字节校验）",
            f"Restored the store to {target} (backup of {backup.created_at}, generation "
            f"{info['generation']}, {members} member(s), every byte verified)"))
    print(t("恢复的存储停留在备份时的状态：此后所做的修改不在其中。",
            "The restored store is as it was when the backup was taken: later changes are not "
            "in it."))
    return 0


def add_commands(sub: Any, command: Any) -> None:
    sp = command(sub, "backup", cmd_backup,
                 "把存储加密备份为一个文件（如存到 U 盘）/ write an encrypted backup of the store "
                 "to one file (e.g. on a USB stick)", True)
    sp.add_argument("--out", required=True, metavar="FILE",
                    help="备份文件（已有的备份会被替换）/ the backup file (an older backup there "
                         "is replaced)")
    sp = command(sub, "restore", cmd_restore,
                 "把备份恢复到 --store 目录（须为新目录或空目录）/ restore a backup into the "
                 "--store directory (new or empty)", True)
    sp.add_argument("file", metavar="FILE", help="备份文件 / the backup file")
    sp.add_argument("--recovery", dest="restore_recovery", action="store_true",
                    help="用恢复密钥而非口令（LIUDONG_RECOVERY_KEY 或提示输入）/ "
                         "use the recovery key instead of the passphrase")
