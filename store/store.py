"""The encrypted, event-sourced local store (DESIGN §2.4, FORMAT.md).

A store is a directory owned by one process at a time:

    keyslots              the master key, wrapped per passphrase and for the recovery key;
                          fixed size, rewritten in place (never renamed), shredded on erase
    snapshot-<gen>        the whole state at the last compaction, sealed in chunks
    journal-<gen>         every commit since, one sealed frame each, chained
    lock                  held while open

``Store.batch()`` is the only way to change the register; leaving the ``with`` block commits
one frame and returns only after it is fsynced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import crypto, keyslots, sealed
from .batch import Batch
from .crypto import KdfParams
from .errors import (
    Corrupted,
    Issue,
    LiudongError,
    StoreExists,
    StoreFailed,
    StoreNotFound,
    ValidationError,
)
from .fsutil import DirLock, fsync_dir, shred
from .ids import Hlc, new_ulid, ulid_bytes
from .keyslots import KeySlots
from .search import filter_ids, member_keys
from .state import RecordTable, State

GEN_RE = re.compile(r"(snapshot|journal)-(\d{8})")
COMPACT_MIN = 1 << 20
# Acknowledged ops are kept this long, to be sent again to a county server restored from an
# older backup (DESIGN §3.2).
OP_RETENTION_MS = 400 * 24 * 3600 * 1000
MIN_PASSPHRASE = 8


def check_new_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ValidationError([Issue(
            "passphrase", "too_short",
            f"口令至少需要 {MIN_PASSPHRASE} 个字符", f"the passphrase needs at least {MIN_PASSPHRASE} characters",
        )])


@dataclass(frozen=True)
class Finding:
    """One line of ``doctor``'s report."""

    level: str  # ok | warn | error
    zh: str
    en: str


class Store:
    compact_min = COMPACT_MIN

    def __init__(self, path: Path, master: bytes, slots: KeySlots, lock: DirLock,
                 unlocked_slot: int) -> None:
        self.path = path
        self._master = master
        self._slots = slots
        self._lock = lock
        self._unlocked_slot = unlocked_slot
        self._failed: str | None = None
        self._writer: sealed.JournalWriter | None = None
        self.state = State()
        self.gen = 0
        self.snapshot_size = 0
        self.dropped_tail = 0  # bytes of an unfinished write dropped when opening
        self._anchor = b""
        self._hlc = Hlc()
        # What opening did to ``keyslots``: "migrated" (a legacy file, now fixed-size),
        # "repaired" (a half a crash or damage had left stale, rewritten), or None.
        self.keyslots_rewritten: str | None = None

    # -- creating and opening --------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], passphrase: str, *,
               kdf: KdfParams | None = None, org: dict[str, Any] | None = None,
               ) -> tuple[Store, str]:
        """A new store; returns it and the recovery key, which is shown once and never stored.

        ``org`` (fields of an ``org`` record) creates the organization this register belongs
        to. Files are written before ``keyslots``, so a crash half-way leaves no store at all and
        ``create`` may simply run again.
        """
        check_new_passphrase(passphrase)
        root = Path(path)
        if (root / "keyslots").exists():
            raise StoreExists(str(root))
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = DirLock(root)
        lock.acquire()
        try:
            for leftover in root.iterdir():
                if GEN_RE.fullmatch(leftover.name.removesuffix(".tmp")):
                    leftover.unlink()
            params = kdf or crypto.calibrate()
            master = os.urandom(crypto.KEY_LEN)
            store_id = new_ulid()
            recovery = os.urandom(crypto.RECOVERY_BYTES)
            slots = KeySlots(store_id, keyslots.key_id(master), [
                keyslots.make_passphrase_slot(store_id, master, passphrase, params),
                keyslots.make_recovery_slot(store_id, master, recovery),
            ])
            store = cls(root, master, slots, lock, 0)
            store.state.meta.update({"store_id": store_id, "device_id": new_ulid()})
            store.state.upgrade()
            if org:
                # The register's own organization goes into the first snapshot, so a store
                # never exists without it.
                b = Batch(store)
                org_id = b.put("org", org)
                store.state.apply_entry(store._entry_for(b))
                store.state.meta["own_org_id"] = org_id
            store._write_generation(1)
            slots.create(root / "keyslots", master)
        except BaseException:
            lock.release()
            raise
        return store, crypto.format_recovery_key(recovery)

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str | None = None, *,
             recovery_key: str | None = None) -> Store:
        root = Path(path)
        if not (root / "keyslots").exists():
            raise StoreNotFound(str(root))
        lock = DirLock(root)
        lock.acquire()
        try:
            slots, document = KeySlots.load(root / "keyslots")
            if recovery_key is not None:
                master, index = slots.unlock_recovery(crypto.parse_recovery_key(recovery_key))
            else:
                master, index = slots.unlock_passphrase(passphrase or "")
            slots.verify(master, document)
            store = cls(root, master, slots, lock, index)
            store._load()
            if slots.needs_rewrite:
                store._rewrite_keyslots(legacy=document.get("version") == keyslots.LEGACY_VERSION)
        except BaseException:
            lock.release()
            raise
        return store

    def _load(self) -> None:
        gens = self._generations()
        if not gens["snapshot"]:
            raise Corrupted("snapshot", "缺失", "is missing")
        self.gen = max(gens["snapshot"])
        store_id = ulid_bytes(self._slots.store_id)
        snap = sealed.read_snapshot(self._file("snapshot"), self._master, store_id,
                                    self._slots.key_id)
        if snap.gen != self.gen:
            raise Corrupted(self._file("snapshot").name, "代数不符", "has the wrong generation")
        try:
            self.state = State.from_bytes(snap.state)
        except (ValueError, KeyError, TypeError) as exc:
            raise Corrupted("snapshot", "内容无法读取", f"content is unreadable ({exc})") from None
        self.snapshot_size, self._anchor = snap.size, snap.anchor
        journal = self._file("journal")
        if not journal.exists():
            # A crash after the snapshot of a compaction and before its journal: make it now.
            sealed.create_journal(journal, self._master, store_id, self._slots.key_id, self.gen,
                                  self._anchor)
        found = sealed.read_journal(journal, self._master, store_id, self._slots.key_id,
                                    self.gen, self._anchor)
        for raw in found.entries:
            try:
                self.state.apply_entry(json.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:
                raise Corrupted(journal.name, "条目无法应用", f"holds an entry that cannot be applied ({exc})") from None
        self.state.upgrade()
        self.dropped_tail = found.size - found.end
        self._writer = sealed.JournalWriter(journal, self._master, found)
        self._hlc = Hlc(self.state.meta.get("hlc"))
        self._remove_stale(gens)

    def _rewrite_keyslots(self, legacy: bool) -> None:
        """``keyslots`` is not two identical copies of its newest document: a legacy file
        (converted here to the fixed-size format), or a half that a crash tore or left one
        generation behind, or that was damaged. Rewritten in place at once, so that no piece of
        a superseded slot stays in the file. Best effort: the store opened, and stays usable
        if the disk refuses the write (``doctor`` reports the file then)."""
        try:
            self._slots.save(self.path / "keyslots", self._master)
        except (OSError, ValueError, LiudongError):
            return
        self.keyslots_rewritten = "migrated" if legacy else "repaired"

    def _generations(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {"snapshot": [], "journal": []}
        for entry in self.path.iterdir():
            m = GEN_RE.fullmatch(entry.name)
            if m:
                found[m[1]].append(int(m[2]))
        return found

    def _file(self, kind: str, gen: int | None = None) -> Path:
        return self.path / f"{kind}-{gen if gen is not None else self.gen:08d}"

    def _remove_stale(self, gens: dict[str, list[int]]) -> None:
        """Files of older generations (a compaction's, or what an interrupted one left behind);
        everything in them is in the current generation. They are overwritten before they are
        unlinked: records that left this device's scope, and this device's ops on them, must
        leave the disk with them (FORMAT.md, "Compaction")."""
        removed = False
        for kind, numbers in gens.items():
            for g in numbers:
                if g < self.gen:
                    shred(self._file(kind, g))
                    removed = True
        for entry in self.path.glob("*.tmp"):
            shred(entry)
            removed = True
        if removed:
            fsync_dir(self.path)

    def _write_generation(self, gen: int) -> None:
        """Seal the state as generation ``gen`` with an empty journal, then drop older files."""
        store_id = ulid_bytes(self._slots.store_id)
        state = self.state.to_bytes()
        anchor = sealed.write_snapshot(self._file("snapshot", gen), self._master, store_id,
                                       self._slots.key_id, gen, state)
        journal = self._file("journal", gen)
        sealed.create_journal(journal, self._master, store_id, self._slots.key_id, gen, anchor)
        if self._writer is not None:
            self._writer.close()
        old = self.gen
        self.gen, self._anchor = gen, anchor
        self.snapshot_size = self._file("snapshot").stat().st_size
        found = sealed.read_journal(journal, self._master, store_id, self._slots.key_id, gen,
                                    anchor)
        self._writer = sealed.JournalWriter(journal, self._master, found)
        if old:
            self._remove_stale({"snapshot": [old], "journal": [old]})

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._lock.release()
        self._master = b""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------
    @property
    def store_id(self) -> str:
        return self._slots.store_id

    @property
    def device_id(self) -> str:
        return str(self.state.meta["device_id"])

    @property
    def meta(self) -> dict[str, Any]:
        return self.state.meta

    def get(self, rec_id: str, include_deleted: bool = False) -> dict[str, Any] | None:
        return self.state.get(rec_id, include_deleted)

    def live(self, type_name: str) -> Iterator[dict[str, Any]]:
        return self.state.live(type_name)

    def table(self, type_name: str) -> RecordTable:
        """The TinyDB table of a record type, for queries (``table.search(Query().x == y)``)."""
        return self.state.table(type_name)

    def search_members(self, query: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Members matching ``query`` by name, pinyin, initials, phone or ID-number suffix."""
        members = self.state.data["member"]
        docs = [members[i] for i in filter_ids(self.state.search, query)
                if not members[i].get("deleted")]
        return docs[:limit] if limit is not None else docs

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self, today: dt.date | None = None) -> Iterator[Batch]:
        """Collect changes; on leaving the block they are committed as one durable frame."""
        self._check_writable()
        b = Batch(self, today)
        yield b
        if not b.empty:
            self.commit(self._entry_for(b))

    def put(self, type_name: str, values: dict[str, Any], rec_id: str | None = None) -> str:
        with self.batch() as b:
            return b.put(type_name, values, rec_id)

    def delete(self, rec_id: str) -> None:
        with self.batch() as b:
            b.delete(rec_id)

    def set_meta(self, **values: Any) -> None:
        self.commit({"k": "meta", "set": values})

    def _entry_for(self, b: Batch) -> dict[str, Any]:
        """The journal entry of a batch: one op per record, numbered by ``dev_seq``."""
        ops = []
        dev_seq = int(self.state.meta["dev_seq"])
        for rec_id, type_name, changes, deleted in b.changes():
            dev_seq += 1
            versions = self.state.versions.get(rec_id, {})
            op: dict[str, Any] = {
                "device_id": self.device_id, "dev_seq": dev_seq, "rec_id": rec_id,
                "type": type_name, "set": changes,
                "base": {name: versions.get(name, 0) for name in changes},
                "hlc": self._hlc.now(),
            }
            if deleted:
                op["deleted"] = True
            ops.append(op)
        return {"k": "local", "ops": ops}

    def commit(self, entry: dict[str, Any]) -> None:
        """Append one entry to the journal and fsync it; only then apply it in memory."""
        self._check_writable()
        assert self._writer is not None
        payload = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            self._writer.append(payload)
        except StoreFailed as exc:
            self._failed = exc.en
            raise
        dropped = self.state.dropped_ops
        self.state.apply_entry(entry)
        # Records that left this device's scope (DESIGN §3.3), and this device's ops on them
        # once acknowledged, are purged from the state by the entry and from the disk by the
        # compaction it triggers: their bytes would otherwise stay in this journal and the
        # snapshot until the journal outgrew them.
        purged = entry.get("k") == "sync" and (
            bool(entry.get("removes")) or self.state.dropped_ops != dropped)
        if purged or self._writer.size > max(self.compact_min, self.snapshot_size // 2):
            try:
                self.compact()
            except (OSError, LiudongError) as exc:
                # The commit above is durable; the store stays usable at the old generation
                # unless compaction got past its point of no return.
                self._failed = f"compaction: {exc}"

    def _check_writable(self) -> None:
        if self._failed is not None:
            raise StoreFailed(self._failed)
        if self._writer is None:
            raise StoreFailed("closed")

    def compact(self) -> None:
        """Fold the journal into a new snapshot (gen+1). A crash at any step opens with every
        committed write: the old generation is removed only after the new one is durable."""
        self._check_writable()
        self.state.prune_ops(Hlc.parse(self._hlc.now())[0] - OP_RETENTION_MS)
        self._write_generation(self.gen + 1)

    # -- keys ------------------------------------------------------------------------------
    def change_passphrase(self, new_passphrase: str, kdf: KdfParams | None = None) -> None:
        """Rewrite only ``keyslots``. Opened by passphrase: that slot is replaced. Opened by the
        recovery key (passphrase lost): every passphrase slot is replaced by the new one."""
        check_new_passphrase(new_passphrase)
        params = kdf or crypto.calibrate()
        slot = keyslots.make_passphrase_slot(self.store_id, self._master, new_passphrase, params)
        old = self._slots.slots
        if old[self._unlocked_slot].kind == "passphrase":
            new_slots = [slot if i == self._unlocked_slot else s for i, s in enumerate(old)]
        else:
            new_slots = [slot] + [s for s in old if s.kind != "passphrase"]
        self._replace_slots(new_slots)

    def new_recovery_key(self) -> str:
        """A new recovery key replaces the old one, which stops working."""
        secret = os.urandom(crypto.RECOVERY_BYTES)
        slot = keyslots.make_recovery_slot(self.store_id, self._master, secret)
        self._replace_slots([s for s in self._slots.slots if s.kind != "recovery"] + [slot])
        return crypto.format_recovery_key(secret)

    def _replace_slots(self, slots: list[keyslots.Slot]) -> None:
        unlocked = self._slots.slots[self._unlocked_slot]
        updated = KeySlots(self.store_id, self._slots.key_id, slots)
        updated.save(self.path / "keyslots", self._master)
        self._slots = updated
        self._unlocked_slot = next((i for i, s in enumerate(slots) if s is unlocked), 0)

    def erase_keys(self) -> None:
        """Crypto-shredding: overwrite ``keyslots`` in place with random bytes, fsync, unlink,
        so nothing in the directory can be read again (used when the county revokes a lost
        device). The file was only ever rewritten in place, so no earlier copy of a slot is
        left on the disk either."""
        keyslots.erase(self.path / "keyslots")

    # -- verification ----------------------------------------------------------------------
    def doctor(self) -> list[Finding]:
        """Re-read and verify every byte of every file, and check the state's invariants."""
        out: list[Finding] = []
        store_id = ulid_bytes(self.store_id)

        def ok(zh: str, en: str) -> None:
            out.append(Finding("ok", zh, en))

        try:
            slots, document = KeySlots.load(self.path / "keyslots")
            slots.verify(self._master, document)
            kinds = [s.kind for s in slots.slots]
            if slots.needs_rewrite:
                out.append(Finding(
                    "warn", "密钥文件的两份副本不一致（旧格式、崩溃或损坏）：下次打开存储时重写",
                    "the two copies in keyslots differ (an old format, a crash or damage): "
                    "they are rewritten the next time the store opens"))
            elif self.keyslots_rewritten:
                ok("打开时已重写密钥文件（" + ("转换为定长格式" if self.keyslots_rewritten == "migrated"
                                        else "修复了一份过期或损坏的副本") + "）",
                   "keyslots was rewritten on open (" + (
                       "converted to the fixed-size format" if self.keyslots_rewritten == "migrated"
                       else "a stale or damaged copy repaired") + ")")
            ok(f"密钥文件完好：{kinds.count('passphrase')} 个口令槽，{kinds.count('recovery')} 个恢复密钥槽",
               f"keyslots intact: {kinds.count('passphrase')} passphrase slot(s), "
               f"{kinds.count('recovery')} recovery slot(s)")
            for s in slots.slots:
                if s.kind == "passphrase":
                    KdfParams.from_json(s.kdf)
            if "recovery" not in kinds:
                out.append(Finding("warn", "没有恢复密钥：忘记口令将无法打开存储",
                                   "no recovery key: a forgotten passphrase locks the store for good"))
            snap = sealed.read_snapshot(self._file("snapshot"), self._master, store_id,
                                        self._slots.key_id)
            ok(f"快照 {self.gen} 完好（{snap.size} 字节）",
               f"snapshot {self.gen} intact ({snap.size} bytes)")
            found = sealed.read_journal(self._file("journal"), self._master, store_id,
                                        self._slots.key_id, self.gen, snap.anchor)
            if found.end != found.size:
                out.append(Finding("error", "日志末尾有未完成的写入（不应出现在打开的存储中）",
                                   "journal ends in an unfinished write (unexpected while open)"))
            ok(f"日志完好：{found.seq} 帧，链条连续",
               f"journal intact: {found.seq} frame(s), chain unbroken")
            replay = State.from_bytes(snap.state)
            for raw in found.entries:
                replay.apply_entry(json.loads(raw))
            replay.upgrade()
            if replay.to_bytes() != self.state.to_bytes():
                out.append(Finding("error", "磁盘上的内容与内存中的不一致",
                                   "what is on disk differs from what is in memory"))
            else:
                ok("磁盘内容与内存一致", "disk and memory agree")
        except LiudongError as exc:
            out.append(Finding("error", exc.zh, exc.en))
            return out
        if self.dropped_tail:
            out.append(Finding("warn",
                               f"打开时丢弃了 {self.dropped_tail} 字节未完成的写入（崩溃时未确认的操作）",
                               f"{self.dropped_tail} bytes of an unfinished write were dropped on "
                               "open (an operation a crash interrupted before it was confirmed)"))
        out.extend(self._check_invariants())
        return out

    def _check_invariants(self) -> list[Finding]:
        from .schema import TYPES

        out: list[Finding] = []
        dangling = 0
        count = 0
        for type_name, rtype in TYPES.items():
            for doc in self.state.live(type_name):
                count += 1
                for f in rtype.fields:
                    value = doc.get(f.name)
                    if f.kind in ("ref", "refs") and value is not None:
                        for ref in value if f.kind == "refs" else [value]:
                            if self.state.get(ref, include_deleted=True) is None:
                                dangling += 1
        if dangling:
            out.append(Finding("warn", f"{dangling} 处引用指向不存在的记录",
                               f"{dangling} reference(s) point at missing records"))
        stale = sum(1 for doc in self.state.live("member")
                    if self.state.search.get(doc["id"]) != member_keys(doc))
        stale += len(set(self.state.search) - {d["id"] for d in self.state.live("member")})
        if stale:
            out.append(Finding("error", f"{stale} 名党员的检索索引过期",
                               f"search keys of {stale} member(s) are stale"))
        seqs = [op["dev_seq"] for op in self.state.ops]
        if seqs and (any(a >= b for a, b in itertools.pairwise(seqs))
                     or seqs[-1] > self.state.meta["dev_seq"]):
            out.append(Finding("error", "操作序号错乱", "op sequence is out of order"))
        pending = self.state.pending_count()
        out.append(Finding("ok", f"共 {count} 条记录，{pending} 个操作待同步",
                           f"{count} record(s), {pending} op(s) waiting to sync"))
        return out

    # -- keys for other modules --------------------------------------------------------------
    def derive_key(self, label: bytes) -> bytes:
        """A 32-byte key derived from the master key, HKDF-SHA256(MK, salt=none, info=label),
        for a purpose outside the store's own files (the backup file's MAC, store/backup.py).

        Only the labels in ``crypto.EXPORTED_LABELS`` are accepted, so no caller can obtain a
        key that seals or authenticates the store's own files.
        """
        if label not in crypto.EXPORTED_LABELS:
            raise ValueError(f"no key is derived for label {label!r}")
        if not self._master:
            raise StoreFailed("closed")
        return crypto.hkdf(self._master, label)
