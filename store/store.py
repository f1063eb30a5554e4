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
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import compaction, crypto, keyslots, sealed
from .batch import Batch
from .compaction import OP_RETENTION_MS  # noqa: F401  (re-exported)
from .crypto import KdfParams
from .doctor import Finding, doctor
from .errors import (
    Corrupted,
    Issue,
    LiudongError,
    StoreExists,
    StoreFailed,
    StoreNotFound,
    ValidationError,
)
from .events import Change, Subscriber
from .frozen import Record
from .fsutil import DirLock, fsync_dir, shred
from .ids import Hlc, new_ulid, ulid_bytes
from .keyslots import KeySlots
from .search import filter_ids
from .state import RecordTable, State

GEN_RE = re.compile(r"(snapshot|journal)-(\d{8})")
COMPACT_MIN = 1 << 20
MIN_PASSPHRASE = 8


def check_new_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ValidationError([Issue(
            "passphrase", "too_short",
            f"口令至少需要 {MIN_PASSPHRASE} 个字符", f"the passphrase needs at least {MIN_PASSPHRASE} characters",
        )])


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
        # Commits are serialized by this lock (held for a whole ``batch()``); readers need none.
        self._mutex = threading.RLock()
        self._local = threading.local()  # per thread: lock depth, changes to announce
        self._subscribers: tuple[Subscriber, ...] = ()
        # Compaction (FORMAT.md, "Compaction"): one at a time; while one runs, the entries
        # committed since its frozen view are kept here to be carried into its journal.
        self._compacting = threading.Lock()
        self._compactor: threading.Thread | None = None
        self._carry: list[bytes] | None = None
        self._carry_broken = False
        self._closing = False
        self._abandon = False  # a background compaction gives up (``close``)
        self.compaction_error: str | None = None  # the last compaction that failed, and why

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
        """Files of other generations than the current one (a compaction's, or what an
        interrupted one left behind: a journal renamed into place before its snapshot was);
        everything in them is in the current generation. They are overwritten before they are
        unlinked: records that left this device's scope, and this device's ops on them, must
        leave the disk with them (FORMAT.md, "Compaction")."""
        removed = False
        for kind, numbers in gens.items():
            for g in numbers:
                if g != self.gen:
                    shred(self._file(kind, g))
                    removed = True
        for entry in self.path.glob("*.tmp"):
            shred(entry)
            removed = True
        if removed:
            fsync_dir(self.path)

    def _write_generation(self, gen: int) -> None:
        """Seal the state as generation ``gen`` with an empty journal (at creation)."""
        store_id = ulid_bytes(self._slots.store_id)
        anchor = sealed.write_snapshot(self._file("snapshot", gen), self._master, store_id,
                                       self._slots.key_id, gen, self.state.to_bytes())
        journal = self._file("journal", gen)
        sealed.create_journal(journal, self._master, store_id, self._slots.key_id, gen, anchor)
        self.gen, self._anchor = gen, anchor
        self.snapshot_size = self._file("snapshot").stat().st_size
        found = sealed.read_journal(journal, self._master, store_id, self._slots.key_id, gen,
                                    anchor)
        self._writer = sealed.JournalWriter(journal, self._master, found)

    def close(self, abandon_compaction: bool = False) -> None:
        """Release the store. A compaction running beside commits is waited for (so the next
        open does not replay a journal it was about to fold), or, with ``abandon_compaction``
        (an interface quitting at once), stopped: its files are removed and the store stays at
        its generation, every commit in its journal."""
        self._closing = True
        self._abandon = abandon_compaction
        compactor = self._compactor
        if compactor is not None and compactor is not threading.current_thread():
            compactor.join()
        with self._compacting, self._mutex:  # (and one another thread runs after a purge)
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._master:
                self._lock.release()
            self._master = b""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------
    # Reads take no lock: records are read-only and replaced whole by a commit, and tables are
    # iterated through a copy of their values taken in one step, so a reader sees each record
    # as it was before or after a commit, never half of one.
    @property
    def store_id(self) -> str:
        return self._slots.store_id

    @property
    def device_id(self) -> str:
        return str(self.state.meta["device_id"])

    @property
    def meta(self) -> dict[str, Any]:
        """The store's metadata (a dict each commit replaces: read it, do not change it)."""
        return self.state.meta

    def get(self, rec_id: str, include_deleted: bool = False) -> Record | None:
        return self.state.get(rec_id, include_deleted)

    def live(self, type_name: str) -> Iterator[Record]:
        return self.state.live(type_name)

    def table(self, type_name: str) -> RecordTable:
        """The TinyDB table of a record type (``query`` is the thread-safe way to search it)."""
        return self.state.table(type_name)

    def query(self, type_name: str, cond: Any, include_deleted: bool = False) -> list[Record]:
        """Records of a type matching a TinyDB query (``Query().gender == "female"``): the
        store's own read-only records, through TinyDB's query cache (cleared at every change
        of the table). Live records only, unless ``include_deleted``.

        The query layer for rules, exports and filters. TinyDB keeps no copy of the data: its
        storage is the state's own tables, and its query cache holds the matching records
        themselves. Measured at 20,000 members (bench/bench_store.py, same run): an uncached
        query 20.5 ms against 10.4 ms for a plain comprehension over ``live`` (TinyDB's
        ``Query`` tree costs about 2×); a repeated query 0.04 ms from the cache. Hot paths that
        know their key bypass it for the indexes: ``records_of``, ``open_flow_of`` (1.6 µs a
        call, against 0.9 ms for a scan of 5,000 flows), ``meetings_of``, ``member_order``
        (0.16 ms), and search as you type (``search_members``, 2–5 ms, a substring scan over
        the stored search keys, which TinyDB's per-document ``Query`` would make slower)."""
        with self._mutex:
            found = self.state.table(type_name).search(cond)
        return found if include_deleted else [d for d in found if not d.get("deleted")]

    def search_members(self, query: str, limit: int | None = None) -> list[Record]:
        """Members matching ``query`` by name, pinyin, initials, phone or ID-number suffix."""
        members = self.state.data["member"]
        keys = dict(self.state.search)  # one step: safe while another thread commits
        docs = [d for i in filter_ids(keys, query)
                if (d := members.get(i)) is not None and not d.get("deleted")]
        return docs[:limit] if limit is not None else docs

    def member_order(self) -> list[str]:
        """Live member ids in list order: by the pinyin of the name, the name, the id
        (kept sorted as members change, not sorted per call)."""
        if not self.state.ix.order_ready:
            with self._mutex:  # built once, with no commit in between
                return self.state.member_order()
        return self.state.member_order()

    def open_flow_of(self, member_id: str) -> Record | None:
        return self.state.open_flow_of(member_id)

    def meetings_of(self, member_id: str) -> list[Record]:
        return self.state.meetings_of(member_id)

    # -- change events ---------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Change], object]) -> Callable[[], None]:
        """Call ``callback(change)`` after every durable commit, on the committing thread,
        outside the store's lock (a callback may read or commit). A callback that raises does
        not undo or break the commit. Returns the function that unsubscribes."""
        with self._mutex:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._mutex:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)
        return unsubscribe

    @contextlib.contextmanager
    def locked(self) -> Iterator[Store]:
        """Hold the store's lock: no other thread commits meanwhile (reads go on). Sync uses it
        to read the outbox consistently; never hold it across network I/O. Change events and
        compactions due are run when the outermost hold ends."""
        local = self._local
        self._mutex.acquire()
        local.depth = getattr(local, "depth", 0) + 1
        outermost = False
        try:
            yield self
        finally:
            local.depth -= 1
            if local.depth == 0:
                outermost = True
                changes, local.changes = getattr(local, "changes", []), []
                compact_now, local.compact_now = getattr(local, "compact_now", False), False
                compact_soon = (not compact_now and self._writer is not None
                                and self._failed is None and self._compactor is None
                                and self._writer.size > max(self.compact_min,
                                                            self.snapshot_size // 2))
                subscribers = self._subscribers
            self._mutex.release()
            if outermost:
                self._after_release(changes, subscribers, compact_now, compact_soon)

    def _after_release(self, changes: list[Change], subscribers: tuple[Subscriber, ...],
                       compact_now: bool, compact_soon: bool) -> None:
        for change in changes:
            for callback in subscribers:
                try:
                    callback(change)
                except Exception:  # the commit is durable: nothing to undo
                    pass
        if compact_now:
            try:
                self.compact()
            except (OSError, LiudongError) as exc:
                # The commit is durable; the store stays usable at the old generation.
                self.compaction_error = str(exc)
        elif compact_soon:
            self._start_compactor()

    def _holding(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self, today: dt.date | None = None) -> Iterator[Batch]:
        """Collect changes; on leaving the block they are committed as one durable frame. The
        store's lock is held for the whole block (validation reads the state)."""
        with self.locked():
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
        """Append one entry to the journal and fsync it; only then apply it in memory. Never
        compacts inline: a compaction due runs in the background, or, after an entry that
        purged records, in this thread once the store's lock is released."""
        with self.locked():
            self._check_writable()
            assert self._writer is not None
            payload = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
            try:
                self._writer.append(payload)
            except StoreFailed as exc:
                self._failed = exc.en
                raise
            if self._carry is not None:
                self._carry.append(payload)
                if entry.get("k") in ("rewind", "enroll"):
                    self._carry_broken = True  # ops renumbered: the frozen view is stale
            dropped = self.state.dropped_ops
            self.state.apply_entry(entry)
            touched = self.state.touched
            local = self._local
            if not hasattr(local, "changes"):
                local.changes = []
            local.changes.append(Change(str(entry.get("k")), frozenset(touched),
                                        frozenset(touched.values())))
            # Records that left this device's scope (DESIGN §3.3), and this device's ops on
            # them once acknowledged, are purged from the state by the entry and from the disk
            # by the compaction it triggers at once: their bytes would otherwise stay in this
            # journal and the snapshot until the journal outgrew them.
            if entry.get("k") == "sync" and (bool(entry.get("removes"))
                                             or self.state.dropped_ops != dropped):
                local.compact_now = True

    def _check_writable(self) -> None:
        if self._failed is not None:
            raise StoreFailed(self._failed)
        if self._writer is None:
            raise StoreFailed("closed")

    # -- compaction ------------------------------------------------------------------------
    def compact(self) -> None:
        """Fold the journal into a new snapshot (gen+1) now, in this thread; waits for a
        background compaction that is running. Called while this thread holds the store's
        lock, it runs when the lock is released. See ``_compact`` for the steps."""
        if self._holding():
            self._local.compact_now = True
            return
        with self._compacting:
            self._compact()

    def compact_in_background(self) -> bool:
        """Start a compaction beside commits now (as when the journal outgrows the snapshot);
        False if one is running already or the store is closing."""
        return self._start_compactor()

    def wait_for_compaction(self) -> None:
        """Return once no background compaction is running."""
        compactor = self._compactor
        if compactor is not None and compactor is not threading.current_thread():
            compactor.join()

    def _start_compactor(self) -> bool:
        with self._mutex:
            if self._compactor is not None or self._closing or self._writer is None:
                return False
            thread = threading.Thread(target=self._background, name="liudong-compaction",
                                      daemon=True)
            self._compactor = thread
        thread.start()
        return True

    def _background(self) -> None:
        try:
            if not self._compacting.acquire(blocking=False):
                return  # a synchronous one is running
            try:
                self._compact(background=True)
            finally:
                self._compacting.release()
        except (OSError, LiudongError, compaction.Abandon) as exc:
            self.compaction_error = str(exc) or type(exc).__name__
        finally:
            with self._mutex:
                self._compactor = None

    def _compact(self, background: bool = False) -> None:
        """One compaction beside commits (store/compaction.py). Caller holds
        ``self._compacting``."""
        compaction.run(self, background)

    # -- keys ------------------------------------------------------------------------------
    def change_passphrase(self, new_passphrase: str, kdf: KdfParams | None = None) -> None:
        """Rewrite only ``keyslots``. Opened by passphrase: that slot is replaced. Opened by the
        recovery key (passphrase lost): every passphrase slot is replaced by the new one."""
        check_new_passphrase(new_passphrase)
        params = kdf or crypto.calibrate()
        slot = keyslots.make_passphrase_slot(self.store_id, self._master, new_passphrase, params)
        with self._mutex:
            self._replace_passphrase(slot)

    def _replace_passphrase(self, slot: keyslots.Slot) -> None:
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
        with self._mutex:
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
        with self._mutex:
            keyslots.erase(self.path / "keyslots")

    # -- verification ----------------------------------------------------------------------
    def doctor(self) -> list[Finding]:
        """Re-read and verify every byte of every file, and check the state's invariants."""
        with self._mutex:
            return doctor(self)

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
