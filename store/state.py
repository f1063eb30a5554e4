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
    """Records by type, their per-field server versions, search keys, the outbox and metadata."""

    def __init__(self) -> None:
        self.db = RegisterDB(storage=StateStorage)
        self.data: dict[str, dict[str, dict[str, Any]]] = self.db.storage.memory  # type: ignore[attr-defined]
        for name in TYPES:
            self.data.setdefault(name, {})
        self.types: dict[str, str] = {}  # rec_id → type
        self.versions: dict[str, dict[str, int]] = {}  # rec_id → {field: server_seq}
        self.search: dict[str, str] = {}  # member rec_id → search keys
        # Committed ops the server has not acknowledged. Those loaded from the snapshot stay as
        # JSON text until something needs them: a store offline for months may hold 200,000,
        # and parsing them at every unlock would cost a second (and hundreds of MB).
        self._outbox_text = b"[]"
        self._outbox: list[dict[str, Any]] = []
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

    # -- changing ----------------------------------------------------------------------------
    def apply_op(self, op: dict[str, Any]) -> None:
        rec_id, type_name, hlc = op["rec_id"], op["type"], op["hlc"]
        table = self.data[type_name]
        doc = table.get(rec_id)
        new = doc is None
        if doc is None:
            doc = {"id": rec_id, "type": type_name, "created_at": hlc, "updated_at": hlc,
                   "deleted": False}
            table[rec_id] = doc
            self.types[rec_id] = type_name
        for name, value in op["set"].items():
            if value is None:
                doc.pop(name, None)
            else:
                doc[name] = value
        doc["updated_at"] = max(doc["updated_at"], hlc)
        if op.get("deleted"):
            doc["deleted"] = True
        self.table(type_name).clear_cache()
        if type_name == "member":
            if doc["deleted"]:
                self.search.pop(rec_id, None)
            elif new or not KEY_FIELDS.isdisjoint(op["set"]):
                self.search[rec_id] = member_keys(doc)

    def apply_entry(self, entry: dict[str, Any]) -> None:
        """Fold one journal entry into the state. Must not fail for an entry that was valid
        when committed: the entry is already durable when this runs."""
        kind = entry["k"]
        if kind == "local":
            for op in entry["ops"]:
                self.apply_op(op)
                self._outbox.append(op)
            self.meta["dev_seq"] = entry["ops"][-1]["dev_seq"]
            self.meta["hlc"] = max(self.meta["hlc"], entry["ops"][-1]["hlc"])
        elif kind == "meta":
            for name, value in entry["set"].items():
                if value is None:
                    self.meta.pop(name, None)
                else:
                    self.meta[name] = value
        else:
            raise ValueError(f"unknown journal entry kind {kind!r}")

    @property
    def outbox(self) -> list[dict[str, Any]]:
        if self._outbox_text != b"[]":
            self._outbox = json.loads(self._outbox_text) + self._outbox
            self._outbox_text = b"[]"
        return self._outbox

    def outbox_bytes(self) -> bytes:
        """The outbox as compact JSON, without parsing what is still text."""
        if not self._outbox:
            return self._outbox_text
        tail = _dumps(self._outbox)
        if self._outbox_text == b"[]":
            return tail
        return self._outbox_text[:-1] + b"," + tail[1:]

    # -- snapshot form -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The state document, a newline, and the outbox (FORMAT.md)."""
        doc = {
            "format": STATE_FORMAT,
            "meta": self.meta,
            "records": self.data,
            "versions": self.versions,
            "search": self.search,
        }
        return _dumps(doc) + b"\n" + self.outbox_bytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> State:
        head, newline, outbox = raw.partition(b"\n")
        doc = json.loads(head)
        if doc.get("format") != STATE_FORMAT or not newline or outbox[:1] != b"[":
            raise ValueError(f"unsupported state format {doc.get('format')!r}")
        state = cls()
        state.meta = doc["meta"]
        for type_name, records in doc["records"].items():
            state.data.setdefault(type_name, {}).update(records)
            for rec_id in records:
                state.types[rec_id] = type_name
        state.versions = doc["versions"]
        state.search = doc["search"]
        state._outbox_text = outbox
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
