"""The register's state in memory, with TinyDB as its query layer.

State is a fold over journal entries. TinyDB sees it through a storage that hands out the live
dict, and a ``Table`` whose own write path is closed: TinyDB rewrites the whole table on every
insert (3.7 ms at 20k documents), while applying an op here touches one document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from .schema import TYPES
from .search import KEY_FIELDS, SEARCH_VERSION, member_keys

STATE_FORMAT = 1


class StateStorage(Storage):
    """TinyDB storage over a dict we own: ``read`` hands out the live data; ``write`` is refused
    because every change must go through the journal first."""

    def __init__(self) -> None:
        self.memory: dict[str, dict[str, dict[str, Any]]] = {}

    def read(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self.memory

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        raise TypeError("the register is changed through Store.batch(), not through TinyDB")


class RecordTable(Table):
    """A TinyDB table keyed by ULID strings, read-only from TinyDB's side."""

    document_id_class = str  # type: ignore[assignment]

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("the register is changed through Store.batch(), not through TinyDB")

    insert = insert_multiple = update = update_multiple = upsert = remove = truncate = _refuse

    def live(self) -> Iterator[Document]:
        for doc_id, doc in self._read_table().items():
            if not doc.get("deleted"):
                yield Document(doc, doc_id)


class RegisterDB(TinyDB):
    table_class = RecordTable


class State:
    """Records by type, their per-field server versions, search keys, the device's ops and
    metadata. Everything here is a fold over journal entries (``apply_entry``)."""

    def __init__(self) -> None:
        self.db = RegisterDB(storage=StateStorage)
        self.data: dict[str, dict[str, dict[str, Any]]] = self.db.storage.memory  # type: ignore[attr-defined]
        for name in TYPES:
            self.data.setdefault(name, {})
        self.types: dict[str, str] = {}  # rec_id → type
        self.versions: dict[str, dict[str, int]] = {}  # rec_id → {field: server_seq}
        self.search: dict[str, str] = {}  # member rec_id → search keys
        # The ops this device made, in dev_seq order: those above meta["acked_dev_seq"] are the
        # outbox; acknowledged ones are retained so they can be sent again to a county server
        # restored from an older backup. Ops loaded from the snapshot stay JSON text until
        # something needs them: a store offline for months may hold 200,000, and parsing them
        # at every unlock would cost a second and hundreds of MB.
        self._ops_text = b"[]"
        self._ops: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {"dev_seq": 0, "acked_dev_seq": 0, "hlc": "0" * 16}

    # -- reading -----------------------------------------------------------------------------
    def table(self, type_name: str) -> RecordTable:
        return self.db.table(type_name)  # type: ignore[return-value]

    def get(self, rec_id: str, include_deleted: bool = False) -> dict[str, Any] | None:
        type_name = self.types.get(rec_id)
        if type_name is None:
            return None
        doc = self.data[type_name][rec_id]
        if doc.get("deleted") and not include_deleted:
            return None
        return doc

    def live(self, type_name: str) -> Iterator[dict[str, Any]]:
        return (d for d in self.data[type_name].values() if not d.get("deleted"))

    @property
    def ops(self) -> list[dict[str, Any]]:
        """Every retained op of this device, acknowledged or not."""
        if self._ops_text != b"[]":
            self._ops = json.loads(self._ops_text) + self._ops
            self._ops_text = b"[]"
        return self._ops

    @property
    def outbox(self) -> list[dict[str, Any]]:
        """Committed ops the county server has not acknowledged, in dev_seq order."""
        acked = int(self.meta.get("acked_dev_seq", 0))
        if acked >= int(self.meta.get("dev_seq", 0)):
            return []
        ops = self.ops
        return ops[self._index_of(acked + 1):]

    def pending_count(self) -> int:
        return int(self.meta.get("dev_seq", 0)) - int(self.meta.get("acked_dev_seq", 0))

    def _index_of(self, dev_seq: int) -> int:
        """Position of ``dev_seq`` in the ops, which are dense from the first retained one."""
        ops = self.ops
        if not ops:
            return 0
        return max(0, min(len(ops), dev_seq - int(ops[0]["dev_seq"])))

    # -- changing ----------------------------------------------------------------------------
    def apply_op(self, op: dict[str, Any]) -> None:
        self._apply_fields(op["rec_id"], op["type"], op["set"], op["hlc"], op.get("deleted"))

    def _apply_fields(self, rec_id: str, type_name: str, values: dict[str, Any], hlc: str,
                      deleted: bool | None, created: str | None = None) -> None:
        table = self.data[type_name]
        doc = table.get(rec_id)
        new = doc is None
        if doc is None:
            doc = {"id": rec_id, "type": type_name, "created_at": created or hlc,
                   "updated_at": hlc, "deleted": False}
            table[rec_id] = doc
            self.types[rec_id] = type_name
        for name, value in values.items():
            if value is None:
                doc.pop(name, None)
            else:
                doc[name] = value
        doc["updated_at"] = max(doc["updated_at"], hlc)
        if deleted:
            doc["deleted"] = True
        self.table(type_name).clear_cache()
        if type_name == "member":
            if doc["deleted"]:
                self.search.pop(rec_id, None)
            elif new or not KEY_FIELDS.isdisjoint(values):
                self.search[rec_id] = member_keys(doc)

    def purge(self, rec_id: str) -> None:
        """Forget a record entirely: it left this device's scope (DESIGN §3.3)."""
        type_name = self.types.pop(rec_id, None)
        if type_name is None:
            return
        self.data[type_name].pop(rec_id, None)
        self.versions.pop(rec_id, None)
        self.search.pop(rec_id, None)
        self.table(type_name).clear_cache()

    def apply_entry(self, entry: dict[str, Any]) -> None:
        """Fold one journal entry into the state. Must not fail for an entry that was valid
        when committed: the entry is already durable when this runs."""
        kind = entry["k"]
        if kind == "local":
            for op in entry["ops"]:
                self.apply_op(op)
                self._ops.append(op)
            self.meta["dev_seq"] = entry["ops"][-1]["dev_seq"]
            self.meta["hlc"] = max(self.meta["hlc"], entry["ops"][-1]["hlc"])
        elif kind == "meta":
            for name, value in entry["set"].items():
                if value is None:
                    self.meta.pop(name, None)
                else:
                    self.meta[name] = value
        elif kind == "sync":
            self._apply_sync(entry)
        elif kind == "enroll":
            self._apply_enroll(entry)
        else:
            raise ValueError(f"unknown journal entry kind {kind!r}")

    def _apply_sync(self, entry: dict[str, Any]) -> None:
        """One answer of the county server (DESIGN §3.2), applied as one commit: versions of
        the ops it applied, the acknowledgement, others' changes with this device's unsent
        edits replayed on top, removals, refusals, the new cursor."""
        ops = self.ops
        for dev_seq, server_seq in entry.get("applied", []):
            i = self._index_of(dev_seq)
            if i < len(ops) and ops[i]["dev_seq"] == dev_seq:
                op = ops[i]
                versions = self.versions.setdefault(op["rec_id"], {})
                for name in op["set"]:
                    versions[name] = max(versions.get(name, 0), server_seq)
        self.meta["acked_dev_seq"] = entry["acked"]
        pending: dict[str, list[dict[str, Any]]] = {}
        for op in self.outbox:
            pending.setdefault(op["rec_id"], []).append(op)
        for rec in entry.get("changes", []):
            self._apply_change(rec, pending.get(rec["id"], []))
        for rec_id in entry.get("removes", []):
            self.purge(rec_id)
        if entry.get("rejected"):
            self.meta["rejected"] = [*self.meta.get("rejected", []), *entry["rejected"]]
        for name in ("cursor", "epoch", "synced_at"):
            if name in entry:
                self.meta[name] = entry[name]

    def _apply_change(self, rec: dict[str, Any], pending: list[dict[str, Any]]) -> None:
        """A record as the server has it replaces the local one; this device's edits that the
        server has not seen yet are replayed on top."""
        rec_id, type_name = rec["id"], rec["t"]
        if rec_id in self.types and self.types[rec_id] != type_name:
            self.purge(rec_id)
        old = self.get(rec_id, include_deleted=True)
        fields = rec["f"]
        cleared = {name: None for name in old or {} if name in TYPES[type_name].by_name
                   and name not in fields}
        updated = rec.get("u") or rec["c"]
        self._apply_fields(rec_id, type_name, {**cleared, **fields}, updated, rec.get("d"),
                           created=rec["c"])
        self.data[type_name][rec_id]["updated_at"] = updated
        versions = rec["v"]
        self.versions[rec_id] = (dict(versions) if isinstance(versions, dict)
                                 else dict.fromkeys(fields, versions))
        for op in pending:
            self.apply_op(op)

    def _apply_enroll(self, entry: dict[str, Any]) -> None:
        """Enrollment: the organization made locally by ``init`` becomes the county's org for
        this device. References to it are rewritten in records and in the unsent ops (none has
        been sent yet), its own ops dropped and the rest renumbered densely from 1."""
        old, new = entry["old_org_id"], entry["org_id"]
        if old and old != new:
            for type_name, rtype in TYPES.items():
                refs = [f.name for f in rtype.fields if f.kind in ("ref", "refs")
                        and f.ref == "org"]
                if not refs:
                    continue
                for doc in self.data[type_name].values():
                    for name in refs:
                        value = doc.get(name)
                        if value == old:
                            doc[name] = new
                        elif isinstance(value, list) and old in value:
                            doc[name] = [new if v == old else v for v in value]
                self.table(type_name).clear_cache()
            self.purge(old)
        kept = []
        for op in self.ops:
            if op["rec_id"] == old:
                continue
            changes = {}
            for name, value in op["set"].items():
                if value == old:
                    value = new
                elif isinstance(value, list) and old in value:
                    value = [new if v == old else v for v in value]
                changes[name] = value
            kept.append({**op, "set": changes, "dev_seq": len(kept) + 1})
        self._ops = kept
        self.meta["dev_seq"] = len(kept)
        self.meta["acked_dev_seq"] = 0
        for name, value in entry["meta"].items():
            if value is None:
                self.meta.pop(name, None)
            else:
                self.meta[name] = value
        for rec in entry.get("orgs", []):
            self._apply_change(rec, [])

    def prune_ops(self, keep_after_ms: int) -> None:
        """Drop acknowledged ops made before ``keep_after_ms``: past the retention horizon a
        restored server cannot need them any more."""
        acked = int(self.meta.get("acked_dev_seq", 0))
        ops = self.ops
        cut = 0
        while cut < len(ops) and ops[cut]["dev_seq"] <= acked and \
                int(ops[cut]["hlc"][:12], 16) < keep_after_ms:
            cut += 1
        if cut:
            self._ops = ops[cut:]

    def ops_bytes(self) -> bytes:
        """The ops as compact JSON, without parsing what is still text."""
        if not self._ops:
            return self._ops_text
        tail = _dumps(self._ops)
        if self._ops_text == b"[]":
            return tail
        return self._ops_text[:-1] + b"," + tail[1:]

    # -- snapshot form -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The state document, a newline, and the ops (FORMAT.md)."""
        doc = {
            "format": STATE_FORMAT,
            "meta": self.meta,
            "records": self.data,
            "versions": self.versions,
            "search": self.search,
        }
        return _dumps(doc) + b"\n" + self.ops_bytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> State:
        head, newline, ops = raw.partition(b"\n")
        doc = json.loads(head)
        if doc.get("format") != STATE_FORMAT or not newline or ops[:1] != b"[":
            raise ValueError(f"unsupported state format {doc.get('format')!r}")
        state = cls()
        state.meta = doc["meta"]
        for type_name, records in doc["records"].items():
            state.data.setdefault(type_name, {}).update(records)
            for rec_id in records:
                state.types[rec_id] = type_name
        state.versions = doc["versions"]
        state.search = doc["search"]
        state._ops_text = ops
        return state

    def upgrade(self) -> None:
        """Bring derived data written by an older version up to date, in memory; the next
        compaction persists it. Runs after every replay, so disk and memory agree."""
        if self.meta.get("search_version") != SEARCH_VERSION:
            self.search = {rid: member_keys(doc) for rid, doc in self.data["member"].items()
                           if not doc.get("deleted")}
            self.meta["search_version"] = SEARCH_VERSION


def _dumps(data: Any) -> bytes:
    # compact, and no raw newline can occur: JSON escapes it inside strings
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
