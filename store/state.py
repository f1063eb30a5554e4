"""The register's state in memory, with TinyDB as its query layer.

State is a fold over journal entries. Every change is copy-on-write: a changed record is a new
read-only ``Record`` (store/frozen.py), so a record handed to a reader never changes under it,
and a compaction can take a consistent view of the state by copying the tables shallowly.

TinyDB sees the state's tables through a storage that hands out the live dict, and a ``Table``
whose own write path is closed: TinyDB rewrites the whole table on every insert (3.7 ms at 20k
documents), while applying an op here touches one document. Its ``search`` returns the records
themselves (no copies); its query cache is cleared whenever a table changes.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from .entries import EntriesMixin
from .frozen import Record, freeze, freeze_record
from .indexes import Indexes
from .oplog import OpLog, dumps
from .record import Rec
from .schema import TYPES
from .search import KEY_FIELDS, SEARCH_VERSION, member_keys

STATE_FORMAT = 1
REGISTER_VERSION = 2  # the record shapes; State.upgrade brings older ones up to date


class StateStorage(Storage):
    """TinyDB storage over a dict we own: ``read`` hands out the live data; ``write`` is refused
    because every change must go through the journal first."""

    def __init__(self) -> None:
        self.memory: dict[str, dict[str, Record]] = {}

    def read(self) -> dict[str, dict[str, Record]]:
        return self.memory

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        raise TypeError("the register is changed through Store.batch(), not through TinyDB")


class RecordTable(Table):
    """A TinyDB table keyed by ULID strings, read-only from TinyDB's side. ``search`` hands out
    the state's own read-only records (``doc_id`` is the record's id), not copies."""

    document_id_class = str  # type: ignore[assignment]

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("the register is changed through Store.batch(), not through TinyDB")

    insert = insert_multiple = update = update_multiple = upsert = remove = truncate = _refuse

    def search(self, cond: Any) -> list[Record]:  # type: ignore[override]
        cached = self._query_cache.get(cond)
        if cached is not None:
            return cached[:]
        # a copy of the values, taken in one C call: safe while another thread commits
        docs = [doc for doc in list(self._read_table().values()) if cond(doc)]
        if getattr(cond, "is_cacheable", lambda: True)():
            self._query_cache[cond] = docs[:]
        return docs

    def live(self) -> Iterator[Record]:
        return (d for d in list(self._read_table().values()) if not d.get("deleted"))


class RegisterDB(TinyDB):
    table_class = RecordTable


# Fields that hold lists (references, absences), by type: the only ones a record read from a
# snapshot needs frozen below its top level.
LIST_FIELDS = {name: frozenset(f.name for f in t.fields if f.kind in ("refs", "absences"))
               for name, t in TYPES.items()}

# Record types that hang off a member through ``member_id`` (fixed once made): indexed by member.
MEMBER_RECORDS = frozenset(name for name, t in TYPES.items()
                           if t.scope.kind == "member_record")


class State(EntriesMixin):
    """Records by type, their per-field server versions, search keys, the device's ops and
    metadata. Everything here is a fold over journal entries (``apply_entry``).

    Derived indexes (store/indexes.py), kept up to date by every change: a member's records,
    its open flow, its meetings, members by ID number, the members' list order, the
    organization tree. ``mine`` holds the records this device's organization made (its own, and
    those the server marks so): the ``writer`` side of ownership.

    Readers need no lock: records are read-only and replaced whole, ``meta`` is replaced by
    each entry, ``live`` iterates a copy of a table's values. Writers are serialized by the
    store."""

    def __init__(self) -> None:
        self.db = RegisterDB(storage=StateStorage)
        self.data: dict[str, dict[str, Record]] = self.db.storage.memory  # type: ignore[attr-defined]
        for name in TYPES:
            self.data.setdefault(name, {})
        self.types: dict[str, str] = {}  # rec_id → type
        self.versions: dict[str, dict[str, int]] = {}  # rec_id → {field: server_seq}; replaced
        self.search: dict[str, str] = {}  # member rec_id → search keys
        self.mine: set[str] = set()
        self.ix = Indexes(self.data)
        self._children: dict[str, list[str]] | None = None  # org id → ids of orgs under it
        self._subtrees: dict[str, set[str]] = {}
        # The ops this device made, in dev_seq order: those above meta["acked_dev_seq"] are the
        # outbox; acknowledged ones are retained so they can be sent again to a county server
        # restored from an older backup. Kept as text until needed (store/oplog.py).
        self.log = OpLog()
        self.meta: dict[str, Any] = {"dev_seq": 0, "acked_dev_seq": 0, "hlc": "0" * 16}
        # How many of this device's ops were dropped because their records left its scope (not
        # stored): the store compacts after an entry that dropped some.
        self.dropped_ops = 0
        # The records the last entry changed or purged (rec_id → type), for change events.
        self.touched: dict[str, str] = {}

    # -- reading -----------------------------------------------------------------------------
    @property
    def by_member(self) -> dict[str, frozenset[str]]:
        return self.ix.by_member

    @property
    def by_id_number(self) -> dict[str, str]:
        return self.ix.by_id_number

    def table(self, type_name: str) -> RecordTable:
        return self.db.table(type_name)  # type: ignore[return-value]

    def get(self, rec_id: str, include_deleted: bool = False) -> Record | None:
        type_name = self.types.get(rec_id)
        if type_name is None:
            return None
        doc = self.data[type_name].get(rec_id)
        if doc is None or (doc.get("deleted") and not include_deleted):
            return None
        return doc

    def live(self, type_name: str) -> Iterator[Record]:
        return (d for d in list(self.data[type_name].values()) if not d.get("deleted"))

    def _live_of(self, type_name: str, ids: frozenset[str]) -> list[Record]:
        table = self.data[type_name]
        found = (table.get(i) for i in ids)
        return [d for d in found if d is not None and not d.get("deleted")]

    def records_of(self, member_id: str, type_name: str) -> list[Record]:
        """The live records of one type about a member."""
        return self._live_of(type_name, self.ix.by_member.get(member_id, frozenset()))

    def open_flow_of(self, member_id: str) -> Record | None:
        """The member's flow that has not ended (the latest left, should there be several)."""
        flows = self._live_of("flow", self.ix.open_flows.get(member_id, frozenset()))
        flows = [f for f in flows if f.get("status") != "ended"]
        return max(flows, key=lambda f: (f.get("left_on") or "", f["id"])) if flows else None

    def meetings_of(self, member_id: str) -> list[Record]:
        """The live meetings the member attended or missed."""
        return self._live_of("meeting", self.ix.meetings.get(member_id, frozenset()))

    def member_order(self) -> list[str]:
        """Live member ids by (pinyin of the name, name, id). The first call builds the
        order (the store calls it under its lock); later ones read the kept order."""
        self.ix.ensure_order(self.data["member"], self.search)
        return self.ix.order_ids()

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
        found = self._subtrees.get(org_id)
        if found is None:
            children = self._children
            if children is None:
                children = {}
                for org in self.live("org"):
                    children.setdefault(org.get("parent_id") or "", []).append(org["id"])
                self._children = children
            found = set()
            stack = [org_id]
            while stack:
                current = stack.pop()
                if current not in found:
                    found.add(current)
                    stack.extend(children.get(current, ()))
            self._subtrees[org_id] = found
        return found

    def own_subtree(self) -> set[str]:
        own = self.meta.get("own_org_id")
        return self.subtree(own) if own else set()

    @property
    def ops(self) -> list[dict[str, Any]]:
        """Every retained op of this device, acknowledged or not (parses them all: for tests
        and ``doctor``, not for hot paths)."""
        return self.log.all()

    @property
    def outbox(self) -> list[dict[str, Any]]:
        """Committed ops the county server has not acknowledged, in dev_seq order."""
        acked = int(self.meta.get("acked_dev_seq", 0))
        if acked >= int(self.meta.get("dev_seq", 0)):
            return []
        self.log.ensure_from(acked + 1)
        ops = self.log.parsed
        return ops[self._index_of(acked + 1):]

    def pending_count(self) -> int:
        return int(self.meta.get("dev_seq", 0)) - int(self.meta.get("acked_dev_seq", 0))

    def _index_of(self, dev_seq: int) -> int:
        """Position in the parsed ops of the first op numbered ``dev_seq`` or above (ops are in
        dev_seq order; dense, but for the gap a rewind leaves)."""
        return bisect.bisect_left(self.log.parsed, dev_seq, key=lambda op: int(op["dev_seq"]))

    # -- changing ----------------------------------------------------------------------------
    def _put(self, type_name: str, rec_id: str, new: Record, old: Record | None,
             keys_changed: bool) -> None:
        """Install a new version of a record and bring what derives from it up to date."""
        self.data[type_name][rec_id] = new
        self.types[rec_id] = type_name
        self.touched[rec_id] = type_name
        if type_name == "member":
            if new.get("deleted"):
                self.search.pop(rec_id, None)
            elif keys_changed:
                self.search[rec_id] = member_keys(new)
        elif type_name == "org":
            self._forget_tree()
        self.ix.change(type_name, rec_id, old, new, self.search.get(rec_id), MEMBER_RECORDS)
        self.table(type_name).clear_cache()

    def _rewrite(self, type_name: str, rec_id: str, values: dict[str, Any]) -> None:
        """A record with some fields replaced (references rewritten): no new version."""
        old = self.data[type_name][rec_id]
        doc = dict(old)
        doc.update({k: freeze(v) for k, v in values.items()})
        self._put(type_name, rec_id, Record(doc), old, not KEY_FIELDS.isdisjoint(values))

    def apply_op(self, op: dict[str, Any]) -> None:
        self._apply_fields(op["rec_id"], op["type"], op["set"], op["hlc"], op.get("deleted"))

    def _apply_fields(self, rec_id: str, type_name: str, values: dict[str, Any], hlc: str,
                      deleted: bool | None, created: str | None = None,
                      updated: str | None = None) -> None:
        table = self.data[type_name]
        old = table.get(rec_id)
        if old is None:
            doc: dict[str, Any] = {"id": rec_id, "type": type_name,
                                   "created_at": created or hlc, "updated_at": hlc,
                                   "deleted": False}
        else:
            doc = dict(old)
        for name, value in values.items():
            if value is None:
                doc.pop(name, None)
            else:
                doc[name] = freeze(value)
        doc["updated_at"] = updated if updated is not None else max(doc["updated_at"], hlc)
        if deleted:
            doc["deleted"] = True
        self._put(type_name, rec_id, Record(doc), old,
                  old is None or not KEY_FIELDS.isdisjoint(values))

    def _forget_tree(self) -> None:
        self._children = None
        self._subtrees = {}

    def purge(self, rec_id: str) -> None:
        """Forget a record entirely: it left this device's scope (DESIGN §3.3)."""
        type_name = self.types.pop(rec_id, None)
        if type_name is None:
            return
        old = self.data[type_name].pop(rec_id, None)
        self.versions.pop(rec_id, None)
        self.search.pop(rec_id, None)
        self.mine.discard(rec_id)
        self.touched[rec_id] = type_name
        self.ix.change(type_name, rec_id, old, None, None, MEMBER_RECORDS)
        if type_name == "org":
            self._forget_tree()
        self.table(type_name).clear_cache()

    def apply_entry(self, entry: dict[str, Any]) -> None:
        """Fold one journal entry into the state. Must not fail for an entry that was valid
        when committed: the entry is already durable when this runs."""
        kind = entry["k"]
        self.touched = {}
        self.meta = dict(self.meta)  # replaced, not changed: a reader's copy stays whole
        if kind == "local":
            for op in entry["ops"]:
                if op["rec_id"] not in self.types:
                    self.mine.add(op["rec_id"])  # made here: this organization is its writer
                self.apply_op(op)
                self.log.append(op)
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

    def prune_ops(self, keep_after_ms: int) -> int | None:
        """Drop acknowledged ops made before ``keep_after_ms``: past the retention horizon a
        restored server cannot need them any more. Parses from the front only as far as it
        drops. Returns the dev_seq below which ops are gone (None: none dropped)."""
        acked = int(self.meta.get("acked_dev_seq", 0))
        return self.log.prune_front(lambda op: op["dev_seq"] <= acked and
                                    int(op["hlc"][:12], 16) < keep_after_ms)

    # -- snapshot form -----------------------------------------------------------------------
    def freeze(self) -> State:
        """A consistent copy for a compaction to write while commits go on: the tables are
        copied shallowly (records are read-only, replaced on change), so this is cheap."""
        out = State.__new__(State)
        out.data = {name: dict(table) for name, table in self.data.items()}
        out.types = {}
        out.versions = dict(self.versions)  # the inner dicts are replaced, never changed
        out.search = dict(self.search)
        out.mine = set(self.mine)
        out.meta = dict(self.meta)
        out.log = self.log.copy()
        out.dropped_ops = self.dropped_ops
        return out

    def pieces(self, per: int = 100) -> Iterator[bytes]:
        """``to_bytes`` in pieces, none of them a long call: a compaction in another thread
        yields between them, so commits are not held up by one long serialization."""
        yield b'{"format":' + dumps(STATE_FORMAT) + b',"meta":' + dumps(self.meta) + \
            b',"records":{'
        for n, (type_name, table) in enumerate(self.data.items()):
            yield (b"," if n else b"") + dumps(type_name) + b":"
            yield from _dict_pieces(table, per)
        yield b'},"versions":'
        yield from _dict_pieces(self.versions, per)
        yield b',"search":'
        yield from _dict_pieces(self.search, per * 5)
        yield b',"mine":' + dumps(sorted(self.mine)) + b"}\n"
        yield from self.log.pieces()

    def to_bytes(self) -> bytes:
        """The state document, a newline, and the ops (FORMAT.md)."""
        return b"".join(self.pieces())

    def ops_bytes(self) -> bytes:
        return self.log.to_bytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> State:
        head, newline, ops = raw.partition(b"\n")
        doc = json.loads(head)
        if doc.get("format") != STATE_FORMAT or not newline or ops[:1] != b"[":
            raise ValueError(f"unsupported state format {doc.get('format')!r}")
        state = cls()
        state.meta = doc["meta"]
        for type_name, records in doc["records"].items():
            table = state.data.setdefault(type_name, {})
            lists = LIST_FIELDS.get(type_name, ())
            for rec_id, rec in records.items():
                # only fields of these kinds hold lists or dicts: freeze deeper only there
                table[rec_id] = freeze_record(rec) if lists and not lists.isdisjoint(rec) \
                    else Record(rec)
            state.types.update(dict.fromkeys(records, type_name))
        state.versions = doc["versions"]
        state.search = doc["search"]
        state.log = OpLog(ops)
        if "mine" in doc:
            state.mine = set(doc["mine"])
        else:  # written before the writer side was kept: the records its own ops made or
            # changed (no record of who made what remains; close enough for a store of then)
            state.mine = {op["rec_id"] for op in state.log.all()}
        state.rebuild_indexes()
        return state

    def rebuild_indexes(self) -> None:
        self._forget_tree()
        self.ix.rebuild(self.data, self.search, MEMBER_RECORDS)

    def upgrade(self) -> None:
        """Bring derived data written by an older version up to date, in memory; the next
        compaction persists it. Runs after every replay, so disk and memory agree."""
        rebuilt = False
        if self.meta.get("search_version") != SEARCH_VERSION:
            self.search = {rid: member_keys(doc) for rid, doc in self.data["member"].items()
                           if not doc.get("deleted")}
            self.meta["search_version"] = SEARCH_VERSION
            rebuilt = True
        if self.meta.get("register_version", 1) < REGISTER_VERSION:
            # Version 2: a member's mobility is derived, no longer stored (DESIGN §2.2).
            members = self.data["member"]
            for rec_id, doc in list(members.items()):
                if "mobility" in doc:
                    members[rec_id] = Record({k: v for k, v in doc.items() if k != "mobility"})
            for op in self.outbox:
                if op["type"] == "member":
                    op["set"].pop("mobility", None)
            self.meta["register_version"] = REGISTER_VERSION
            self.table("member").clear_cache()
        if rebuilt:
            self.rebuild_indexes()


def _dict_pieces(data: dict[str, Any], per: int) -> Iterator[bytes]:
    """A dict as compact JSON, ``per`` items at a time."""
    if not data:
        yield b"{}"
        return
    items = list(data.items())
    for start in range(0, len(items), per):
        body = dumps(dict(items[start:start + per]))[1:-1]
        yield (b"{" if start == 0 else b",") + body
    yield b"}"
