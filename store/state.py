"""The register's state in memory, with TinyDB as its query layer.

State is a fold over journal entries. TinyDB sees it through a storage that hands out the live
dict, and a ``Table`` whose own write path is closed: TinyDB rewrites the whole table on every
insert (3.7 ms at 20k documents), while applying an op here touches one document.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from .record import Rec
from .schema import TYPES
from .search import KEY_FIELDS, SEARCH_VERSION, member_keys

STATE_FORMAT = 1
REGISTER_VERSION = 2  # the record shapes; State.upgrade brings older ones up to date


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


# Record types that hang off a member through ``member_id`` (fixed once made): indexed by member.
MEMBER_RECORDS = frozenset(name for name, t in TYPES.items()
                           if t.scope.kind == "member_record")


class State:
    """Records by type, their per-field server versions, search keys, the device's ops and
    metadata. Everything here is a fold over journal entries (``apply_entry``).

    Derived indexes, kept up to date by every change: a member's records by type, members by
    ID number, the organization tree. ``mine`` holds the records this device's organization
    made (its own, and those the server marks so): the ``writer`` side of ownership."""

    def __init__(self) -> None:
        self.db = RegisterDB(storage=StateStorage)
        self.data: dict[str, dict[str, dict[str, Any]]] = self.db.storage.memory  # type: ignore[attr-defined]
        for name in TYPES:
            self.data.setdefault(name, {})
        self.types: dict[str, str] = {}  # rec_id → type
        self.versions: dict[str, dict[str, int]] = {}  # rec_id → {field: server_seq}
        self.search: dict[str, str] = {}  # member rec_id → search keys
        self.mine: set[str] = set()
        self.by_member: dict[str, set[str]] = {}  # member id → ids of records about it
        self.by_id_number: dict[str, str] = {}  # ID number → live member id
        self._children: dict[str, list[str]] | None = None  # org id → ids of orgs under it
        self._subtrees: dict[str, set[str]] = {}
        # The ops this device made, in dev_seq order: those above meta["acked_dev_seq"] are the
        # outbox; acknowledged ones are retained so they can be sent again to a county server
        # restored from an older backup. Ops loaded from the snapshot stay JSON text until
        # something needs them: a store offline for months may hold 200,000, and parsing them
        # at every unlock would cost a second and hundreds of MB.
        self._ops_text = b"[]"
        self._ops: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {"dev_seq": 0, "acked_dev_seq": 0, "hlc": "0" * 16}
        # How many of this device's ops were dropped because their records left its scope (not
        # stored): the store compacts after an entry that dropped some.
        self.dropped_ops = 0

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

    def records_of(self, member_id: str, type_name: str) -> list[dict[str, Any]]:
        """The live records of one type about a member."""
        table = self.data[type_name]
        found = (table.get(i) for i in self.by_member.get(member_id, ()))
        return [d for d in found if d is not None and not d.get("deleted")]

    # -- the register as the rules see it (store/scope.py) ----------------------------------------
    def rec(self, doc: dict[str, Any]) -> Rec:
        rtype = TYPES[doc["type"]]
        return Rec(doc["id"], doc["type"], {k: v for k, v in doc.items() if k in rtype.by_name},
                   deleted=bool(doc.get("deleted")),
                   writer_org_id=self.meta.get("own_org_id") if doc["id"] in self.mine
                   else None)

    def load(self, rec_id: str) -> Rec | None:
        doc = self.get(rec_id, include_deleted=True)
        return self.rec(doc) if doc is not None else None

    def flows_of(self, member_id: str) -> list[Rec]:
        return [self.rec(d) for d in self.records_of(member_id, "flow")]

    def subtree(self, org_id: str) -> set[str]:
        """The organization and every organization below it, from the orgs this store holds."""
        if org_id not in self._subtrees:
            if self._children is None:
                self._children = {}
                for org in self.live("org"):
                    self._children.setdefault(org.get("parent_id") or "", []).append(org["id"])
            out: set[str] = set()
            stack = [org_id]
            while stack:
                current = stack.pop()
                if current not in out:
                    out.add(current)
                    stack.extend(self._children.get(current, ()))
            self._subtrees[org_id] = out
        return self._subtrees[org_id]

    def own_subtree(self) -> set[str]:
        own = self.meta.get("own_org_id")
        return self.subtree(own) if own else set()

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
        """Position of the first op numbered ``dev_seq`` or above (ops are in dev_seq order;
        dense, but for the gap a rewind leaves)."""
        return bisect.bisect_left(self.ops, dev_seq, key=lambda op: int(op["dev_seq"]))

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
        old_number = doc.get("id_number")
        for name, value in values.items():
            if value is None:
                doc.pop(name, None)
            else:
                doc[name] = value
        doc["updated_at"] = max(doc["updated_at"], hlc)
        if deleted:
            doc["deleted"] = True
        self.table(type_name).clear_cache()
        if type_name in MEMBER_RECORDS and doc.get("member_id"):
            self.by_member.setdefault(doc["member_id"], set()).add(rec_id)
        elif type_name == "member":
            if doc["deleted"]:
                self.search.pop(rec_id, None)
            elif new or not KEY_FIELDS.isdisjoint(values):
                self.search[rec_id] = member_keys(doc)
            self._index_id_number(rec_id, old_number, None if doc["deleted"] else
                                  doc.get("id_number"))
        elif type_name == "org":
            self._forget_tree()

    def _forget_tree(self) -> None:
        self._children = None
        self._subtrees.clear()

    def _index_id_number(self, rec_id: str, old: str | None, new: str | None) -> None:
        if old and old != new and self.by_id_number.get(old) == rec_id:
            del self.by_id_number[old]
        if new:
            self.by_id_number.setdefault(new, rec_id)

    def purge(self, rec_id: str) -> None:
        """Forget a record entirely: it left this device's scope (DESIGN §3.3)."""
        type_name = self.types.pop(rec_id, None)
        if type_name is None:
            return
        doc = self.data[type_name].pop(rec_id, None) or {}
        self.versions.pop(rec_id, None)
        self.search.pop(rec_id, None)
        self.mine.discard(rec_id)
        if type_name in MEMBER_RECORDS:
            self.by_member.get(doc.get("member_id") or "", set()).discard(rec_id)
        elif type_name == "member":
            self._index_id_number(rec_id, doc.get("id_number"), None)
        elif type_name == "org":
            self._forget_tree()
        self.table(type_name).clear_cache()

    def apply_entry(self, entry: dict[str, Any]) -> None:
        """Fold one journal entry into the state. Must not fail for an entry that was valid
        when committed: the entry is already durable when this runs."""
        kind = entry["k"]
        if kind == "local":
            for op in entry["ops"]:
                if op["rec_id"] not in self.types:
                    self.mine.add(op["rec_id"])  # made here: this organization is its writer
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
        elif kind == "rewind":
            self._apply_rewind(entry)
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
        for old, new in (entry.get("aliases") or {}).items():
            self._apply_alias(old, new)
        pending: dict[str, list[dict[str, Any]]] = {}
        for op in self.outbox:
            pending.setdefault(op["rec_id"], []).append(op)
        for rec in entry.get("changes", []):
            self._apply_change(rec, pending.get(rec["id"], []))
        removes = entry.get("removes", [])
        for rec_id in removes:
            self.purge(rec_id)
        self._forget_ops_out_of_scope(removes)
        if entry.get("rejected"):
            self.meta["rejected"] = [*self.meta.get("rejected", []), *entry["rejected"]]
        for name in ("cursor", "epoch", "synced_at"):
            if name in entry:
                self.meta[name] = entry[name]

    def _forget_ops_out_of_scope(self, removes: list[str]) -> None:
        """This device's acknowledged ops on records that left its scope are not kept: they
        would hold the records' fields (names, ID numbers) after the records themselves were
        purged, and a county server restored from a backup could not take them back anyway
        (the records are outside the device's scope there too). Ops not yet acknowledged stay
        until they are: the server must see them, and refuse them, for the user to be told.
        ``meta["left_scope"]`` names the records that left with such ops still unsent; their
        ops go once acknowledged, unless the record came back into scope meanwhile."""
        gone = set(removes) | set(self.meta.get("left_scope", ()))
        if not gone:
            return
        # Most removals concern records this device never wrote: look before parsing the ops
        # (a store offline for months holds them as text, FORMAT.md).
        if not any(op["rec_id"] in gone for op in self._ops) and not (
                self._ops_text != b"[]" and any(rid.encode() in self._ops_text for rid in gone)):
            self.meta.pop("left_scope", None)
            return
        acked = int(self.meta.get("acked_dev_seq", 0))
        kept, unsent = [], set()
        for op in self.ops:
            rec_id = op["rec_id"]
            if rec_id in gone and rec_id not in self.types:
                if op["dev_seq"] <= acked:
                    continue
                unsent.add(rec_id)
            kept.append(op)
        if len(kept) != len(self._ops):
            self.dropped_ops += len(self._ops) - len(kept)
            self._ops = kept
        if unsent:
            self.meta["left_scope"] = sorted(unsent)
        else:
            self.meta.pop("left_scope", None)

    def _apply_change(self, rec: dict[str, Any], pending: list[dict[str, Any]]) -> None:
        """A record as the server has it replaces the local one; this device's edits that the
        server has not seen yet are replayed on top."""
        rec_id, type_name = rec["id"], rec["t"]
        if rec_id in self.types and self.types[rec_id] != type_name:
            self.purge(rec_id)
        old = self.get(rec_id, include_deleted=True)
        rtype = TYPES[type_name]
        fields = {k: v for k, v in rec["f"].items() if k in rtype.by_name}
        cleared = {name: None for name in old or {} if name in rtype.by_name
                   and name not in fields}
        updated = rec.get("u") or rec["c"]
        self._apply_fields(rec_id, type_name, {**cleared, **fields}, updated, rec.get("d"),
                           created=rec["c"])
        if rec.get("m"):
            self.mine.add(rec_id)
        elif not pending:  # (its own unsent edits keep it this device's until they are sent)
            self.mine.discard(rec_id)
        self.data[type_name][rec_id]["updated_at"] = updated
        versions = rec["v"]
        self.versions[rec_id] = (dict(versions) if isinstance(versions, dict)
                                 else dict.fromkeys(fields, versions))
        for op in pending:
            self.apply_op(op)

    def _apply_alias(self, old: str, new: str) -> None:
        """The county linked a record this device made to one it already had (a host
        registering the arrival of a member the county holds): references to it in this store
        point at the county's record, which arrives with the same answer. The ops stay as they
        were sent; the server maps them."""
        if old not in self.types:
            return
        for type_name, rtype in TYPES.items():
            refs = [f.name for f in rtype.fields if f.kind in ("ref", "refs", "absences")]
            for doc in self.data[type_name].values() if refs else ():
                for name in refs:
                    value = doc.get(name)
                    if value == old:
                        doc[name] = new
                    elif isinstance(value, list) and any(
                            v == old or (isinstance(v, dict) and v.get("member_id") == old)
                            for v in value):
                        doc[name] = [new if v == old else {**v, "member_id": new}
                                     if isinstance(v, dict) and v.get("member_id") == old
                                     else v for v in value]
            self.table(type_name).clear_cache()
        self.purge(old)
        self.rebuild_indexes()

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

    def _apply_rewind(self, entry: dict[str, Any]) -> None:
        """The county server has this device's ops up to ``acked``, and from ``from`` on they
        differ from what this store holds: the store was restored from an older copy, or its
        journal lost a tail (DESIGN §3.2). This store's ops from ``from`` were never applied
        there: they are renumbered above ``acked`` and sent again; what the server holds of
        the other timeline comes back through the pull."""
        first, acked = int(entry["from"]), int(entry["acked"])
        ops = self.ops
        i = self._index_of(first)
        kept, moved = ops[:i], ops[i:]
        self._ops = kept + [{**op, "dev_seq": acked + n} for n, op in enumerate(moved, 1)]
        self.meta["dev_seq"] = acked + len(moved)
        self.meta["acked_dev_seq"] = acked

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
            "mine": sorted(self.mine),
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
        if "mine" in doc:
            state.mine = set(doc["mine"])
        else:  # written before the writer side was kept: the records its own ops made or
            # changed (no record of who made what remains; close enough for a store of then)
            state.mine = {op["rec_id"] for op in state.ops}
        state.rebuild_indexes()
        return state

    def rebuild_indexes(self) -> None:
        self.by_member.clear()
        self.by_id_number.clear()
        self._forget_tree()
        for type_name in MEMBER_RECORDS:
            for rec_id, doc in self.data[type_name].items():
                if doc.get("member_id"):
                    self.by_member.setdefault(doc["member_id"], set()).add(rec_id)
        for rec_id, doc in self.data["member"].items():
            if not doc.get("deleted") and doc.get("id_number"):
                self.by_id_number.setdefault(doc["id_number"], rec_id)

    def upgrade(self) -> None:
        """Bring derived data written by an older version up to date, in memory; the next
        compaction persists it. Runs after every replay, so disk and memory agree."""
        if self.meta.get("search_version") != SEARCH_VERSION:
            self.search = {rid: member_keys(doc) for rid, doc in self.data["member"].items()
                           if not doc.get("deleted")}
            self.meta["search_version"] = SEARCH_VERSION
        if self.meta.get("register_version", 1) < REGISTER_VERSION:
            # Version 2: a member's mobility is derived, no longer stored (DESIGN §2.2).
            for doc in self.data["member"].values():
                doc.pop("mobility", None)
            for op in self.outbox:
                if op["type"] == "member":
                    op["set"].pop("mobility", None)
            self.meta["register_version"] = REGISTER_VERSION


def _dumps(data: Any) -> bytes:
    # compact, and no raw newline can occur: JSON escapes it inside strings
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
