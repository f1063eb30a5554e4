"""Backup files: a whole store in one file, for a USB stick (FORMAT.md "Backup file").

The store's files are sealed already (``keyslots`` wraps the master key; the snapshot and the
journal are AEAD-sealed and chained), so a backup copies their bytes as they are into one
container and authenticates the container as a whole:

    prefix    magic "LDBACK\\0\\1" ‖ version u16 ‖ header length u32
    header    canonical JSON: store id, key id, generation, time, the files and their sizes
    files     keyslots ‖ snapshot-<gen> ‖ journal-<gen>
    mac       HMAC-SHA256(backup MAC key, everything above)
    checksum  SHA-256(everything above)

The checksum, checked first and before any key derivation, reports a damaged file as damaged
rather than as a wrong passphrase; the MAC, keyed from the master key, detects edits and parts
taken from another backup or store. Restoring needs the passphrase or the recovery key that the
store had when the backup was taken, exactly as opening that store would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import crypto
from .errors import (
    BadBackup,
    BadBackupTarget,
    Corrupted,
    Locked,
    RestoreTargetTaken,
    StoreFailed,
)
from .fsutil import DirLock, fsync_dir, fsync_fd, open_regular, read_file
from .ids import ULID_RE
from .keyslots import MAX_FILE as MAX_KEYSLOTS
from .keyslots import KeySlots
from .store import GEN_RE, Store

FORMAT = "liudong-backup"
VERSION = 1
MAGIC = b"LDBACK\x00\x01"
PREFIX = struct.Struct(">8sHI")  # magic, version, header length
MAC_LEN = 32
SUM_LEN = 32
MAX_HEADER = 64 * 1024
MAX_BACKUP = 4 << 30
HEADER_KEYS = {"format", "version", "store_id", "key_id", "gen", "created_at", "files"}

# Flags for every file this module creates: never an existing file, never through a symlink.
_NEW_FILE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


# -- the container -----------------------------------------------------------------------------

def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def file_names(gen: int) -> list[str]:
    """The files a backup of generation ``gen`` holds, in their order in the container."""
    return ["keyslots", f"snapshot-{gen:08d}", f"journal-{gen:08d}"]


@dataclass
class Backup:
    """A parsed backup whose checksum holds; its MAC is checked once the master key is known."""

    header: dict[str, Any]
    files: list[tuple[str, bytes]]
    signed: bytes  # everything the MAC covers
    mac: bytes
    size: int
    where: str

    @property
    def store_id(self) -> str:
        return str(self.header["store_id"])

    @property
    def gen(self) -> int:
        return int(self.header["gen"])

    @property
    def created_at(self) -> str:
        return str(self.header["created_at"])

    def data(self, name: str) -> bytes:
        return next(data for n, data in self.files if n == name)

    def verify(self, master: bytes) -> None:
        expected = crypto.mac(crypto.hkdf(master, crypto.BACKUP_MAC_LABEL), self.signed)
        if not hmac.compare_digest(expected, self.mac):
            raise BadBackup(self.where, "完整性校验失败（被修改，或混入了另一份备份或另一个存储的内容）",
                            "fails its MAC (altered, or holds parts of another backup or store)")


def parse(data: bytes, where: str = "backup") -> Backup:
    """Check the structure and the checksum of a backup (no key needed)."""
    def bad(zh: str, en: str) -> BadBackup:
        return BadBackup(where, zh, en)

    if not data:
        raise bad("是空文件", "is empty")
    if len(data) < PREFIX.size + MAC_LEN + SUM_LEN:
        if not MAGIC.startswith(data[:len(MAGIC)]):
            raise bad("不是流动备份文件", "is not a Liudong backup")
        raise bad("不完整（被截断）", "is truncated")
    magic, version, header_len = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise bad("不是流动备份文件", "is not a Liudong backup")
    if hashlib.sha256(data[:-SUM_LEN]).digest() != data[-SUM_LEN:]:
        raise bad("已损坏或不完整（校验和不符）", "is damaged or truncated (fails its checksum)")
    if version != VERSION:
        raise bad(f"版本不受支持：{version}", f"has unsupported version {version}")
    end = PREFIX.size + header_len
    if header_len > MAX_HEADER or end > len(data) - MAC_LEN - SUM_LEN:
        raise bad("文件头长度异常", "has a bad header length")
    raw = data[PREFIX.size:end]
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad("文件头无法解析", "has an unreadable header") from None
    if not _header_ok(header) or canonical(header) != raw:
        raise bad("文件头结构有误", "has a malformed header")
    files, offset = [], end
    for entry in header["files"]:
        files.append((entry["name"], data[offset:offset + entry["size"]]))
        offset += entry["size"]
    if offset != len(data) - MAC_LEN - SUM_LEN:
        raise bad("长度与文件头不符", "does not have the length its header gives")
    mac = data[offset:offset + MAC_LEN]
    return Backup(header, files, data[:offset], mac, len(data), where)


def _header_ok(header: Any) -> bool:
    if not isinstance(header, dict) or set(header) != HEADER_KEYS:
        return False
    gen, files = header["gen"], header["files"]
    if header["format"] != FORMAT or header["version"] != VERSION:
        return False
    if not isinstance(gen, int) or isinstance(gen, bool) or not 1 <= gen < 10**8:
        return False
    if not isinstance(header["store_id"], str) or not ULID_RE.fullmatch(header["store_id"]):
        return False
    key_id = header["key_id"]
    if not isinstance(key_id, str) or len(key_id) != 32 or key_id.strip("0123456789abcdef"):
        return False
    if not isinstance(header["created_at"], str) or len(header["created_at"]) > 64:
        return False
    if not isinstance(files, list) or [
        f.get("name") if isinstance(f, dict) else None for f in files
    ] != file_names(gen):
        return False
    for f in files:
        size = f.get("size")
        if set(f) != {"name", "size"} or not isinstance(size, int) or isinstance(size, bool) \
                or size < 0:
            return False
    return files[0]["size"] <= MAX_KEYSLOTS


def inspect(backup_path: str | os.PathLike[str]) -> Backup:
    """Read a backup file and check its structure and checksum (no passphrase needed)."""
    path = Path(backup_path)
    where = str(path)
    fd, st = open_regular(path, lambda zh, en: BadBackup(where, zh, en))
    try:
        if st.st_size > MAX_BACKUP:
            raise BadBackup(where, "过大，不是流动备份文件", "is too large to be a Liudong backup")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    finally:
        os.close(fd)
    return parse(data, where)


# -- writing -----------------------------------------------------------------------------------

def write_backup(store: Store, out_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write a backup of the open ``store`` to ``out_path``; returns what was written.

    The store's lock is held by this process, so nothing else writes: the current generation's
    files read now are consistent. The file is created owner-only under a temporary name
    (O_EXCL, no symlink followed), fsynced, read back and checked, then renamed into place and
    the directory fsynced: ``out_path`` never holds a partial backup. An existing file there is
    replaced only if it is a Liudong backup.
    """
    out = Path(out_path)
    _check_out(out, store)
    for _attempt in range(3):
        gen = store.gen
        try:
            parts = [(name, read_file(store.path / name)) for name in file_names(gen)]
        except FileNotFoundError:
            continue  # a compaction (another thread) switched generations while we read
        if store.gen == gen:
            break
    else:
        raise StoreFailed("backup: the store kept changing generation while being read")
    key_id = KeySlots.parse(parts[0][1])[0].key_id.hex()
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = {"format": FORMAT, "version": VERSION, "store_id": store.store_id,
              "key_id": key_id, "gen": gen, "created_at": created,
              "files": [{"name": name, "size": len(data)} for name, data in parts]}
    raw = canonical(header)
    signed = PREFIX.pack(MAGIC, VERSION, len(raw)) + raw + b"".join(d for _, d in parts)
    blob = signed + crypto.mac(store.derive_key(crypto.BACKUP_MAC_LABEL), signed)
    blob += hashlib.sha256(blob).digest()
    parse(blob, out.name)  # what is written must read back

    tmp = out.with_name(f".{out.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, _NEW_FILE, 0o600)
    try:
        try:
            _write_all(fd, blob)
            fsync_fd(fd)
        finally:
            os.close(fd)
        if read_file(tmp) != blob:
            raise OSError(f"{tmp.name} does not read back as written")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)
    return {"path": str(out), "size": len(blob), "generation": gen, "files": len(parts),
            "store_id": store.store_id, "created_at": created}


def _check_out(out: Path, store: Store) -> None:
    if out.is_dir():
        raise BadBackupTarget(f"备份位置是一个目录：{out}（请给出文件名）",
                              f"the backup location is a directory: {out} (give a file name)")
    if out.parent.resolve() == store.path.resolve():
        raise BadBackupTarget("备份不能写进存储目录本身（请写到 U 盘等别处）",
                              "a backup cannot go inside the store directory (write it elsewhere, "
                              "e.g. a USB stick)")
    if not out.parent.is_dir():
        raise BadBackupTarget(f"找不到目录：{out.parent}（U 盘插好了吗？）",
                              f"no such directory: {out.parent} (is the USB stick mounted?)")
    if out.exists() or out.is_symlink():
        head = b""
        if out.is_file():
            try:
                with open(out, "rb") as fh:
                    head = fh.read(len(MAGIC))
            except OSError:
                pass
        if head != MAGIC:
            raise BadBackupTarget(f"{out} 已存在且不是流动备份文件，不予覆盖",
                                  f"{out} exists and is not a Liudong backup: not overwriting it")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# -- restoring ---------------------------------------------------------------------------------

def _leftover(name: str) -> bool:
    """Files an interrupted restore or ``init`` may leave in a directory that holds no store."""
    return name in ("lock", "keyslots.tmp") or GEN_RE.fullmatch(name.removesuffix(".tmp")) is not None


def check_target(target_dir: str | os.PathLike[str]) -> None:
    """Refuse a directory that holds a store, or anything but what an interrupted restore or
    ``init`` leaves behind."""
    target = Path(target_dir)
    if (target / "keyslots").exists() or (target / "keyslots").is_symlink():
        raise RestoreTargetTaken(str(target), True)
    if (target.exists() or target.is_symlink()) and (
            not target.is_dir() or any(not _leftover(e.name) for e in target.iterdir())):
        raise RestoreTargetTaken(str(target), False)


def restore_backup(backup_path: str | os.PathLike[str], target_dir: str | os.PathLike[str],
                   passphrase: str | None = None, recovery_key: str | None = None) -> Store:
    """Restore a backup into ``target_dir`` and return the opened, verified store.

    Order: the container and its checksum; the target (no store there); the master key from
    the backup's ``keyslots`` (``WrongPassphrase`` as on open); the MAC; the snapshot and the
    journal written and fsynced; ``keyslots`` last, so that a crash before it leaves no store
    (FORMAT.md "Creation"); then the store is opened and ``doctor`` runs. On any failure what
    was written is removed again, and the directory too if this call made it.
    """
    backup = inspect(backup_path)
    secret = crypto.parse_recovery_key(recovery_key) if recovery_key is not None else None
    target = Path(target_dir)
    check_target(target)
    created = not target.exists()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_existed = (target / "lock").exists()
    lock = DirLock(target)
    written: list[Path] = []
    try:
        lock.acquire()
    except BaseException:
        _undo(target, written, lock, lock_existed=True, created=created)
        raise
    past_keyslots = False
    try:
        check_target(target)  # again, now that no one else can be creating a store here
        for leftover in target.iterdir():
            if leftover.name != "lock":
                leftover.unlink()
        staged = target / "keyslots.tmp"
        written.append(staged)
        _write_new(staged, backup.data("keyslots"))
        master = _unlock(staged, backup, passphrase, secret)
        backup.verify(master)
        for name in file_names(backup.gen)[1:]:
            tmp = target / (name + ".tmp")
            written += [tmp, target / name]
            _write_new(tmp, backup.data(name))
            os.replace(tmp, target / name)
        fsync_dir(target)
        written.insert(0, target / "keyslots")
        os.replace(staged, target / "keyslots")  # from here on the store exists
        fsync_dir(target)
        past_keyslots = True
        lock.release()
        return _open_and_check(target, backup, passphrase, recovery_key)
    except BaseException as exc:
        if not (past_keyslots and isinstance(exc, Locked)):  # someone else has it open
            _undo(target, written, lock, lock_existed, created)
        raise


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, _NEW_FILE, 0o600)
    try:
        _write_all(fd, data)
        fsync_fd(fd)
    finally:
        os.close(fd)


def _unlock(staged: Path, backup: Backup, passphrase: str | None,
            secret: bytes | None) -> bytes:
    """The master key from the backup's ``keyslots``, as ``Store.open`` gets it."""
    try:
        slots, document = KeySlots.load(staged)
    except Corrupted:
        raise BadBackup(backup.where, "其中的密钥文件已损坏", "holds a damaged keyslots file") from None
    if slots.store_id != backup.store_id or slots.key_id.hex() != backup.header["key_id"]:
        raise BadBackup(backup.where, "其中的密钥文件属于另一个存储",
                        "holds the keyslots of another store")
    if secret is not None:
        master, _ = slots.unlock_recovery(secret)
    else:
        master, _ = slots.unlock_passphrase(passphrase or "")
    try:
        slots.verify(master, document)
    except Corrupted:
        raise BadBackup(backup.where, "其中的密钥文件被修改过", "holds an altered keyslots file") from None
    return master


def _open_and_check(target: Path, backup: Backup, passphrase: str | None,
                    recovery_key: str | None) -> Store:
    try:
        store = Store.open(target, passphrase, recovery_key=recovery_key)
    except Corrupted as exc:
        raise BadBackup(backup.where, f"恢复出的存储无法打开：{exc.zh}",
                        f"restores a store that does not open: {exc.en}") from None
    try:
        errors = [f for f in store.doctor() if f.level == "error"]
        if errors:
            raise BadBackup(backup.where, f"恢复出的存储未通过检查：{errors[0].zh}",
                            f"restores a store that fails its check: {errors[0].en}")
        if store.store_id != backup.store_id or store.gen != backup.gen:
            raise BadBackup(backup.where, "恢复出的存储与文件头不符",
                            "restores a store that differs from its header")
    except BaseException:
        store.close()
        raise
    return store


def _undo(target: Path, written: list[Path], lock: DirLock, lock_existed: bool,
          created: bool) -> None:
    """Remove what a failed restore wrote; ``keyslots`` first, so no store is left at any
    moment in between."""
    try:
        for path in written:
            path.unlink(missing_ok=True)
            if path.name == "keyslots":
                fsync_dir(target)
        lock.release()
        if not lock_existed:
            (target / "lock").unlink(missing_ok=True)
        if created:
            target.rmdir()
        else:
            fsync_dir(target)
    except OSError:
        pass  # best effort: what is left holds no store (keyslots went first)
