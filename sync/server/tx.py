"""One write transaction on the county database, and the register as the shared rules read it.

``Tx`` caches records, keeps the anchors table (who holds what) up to date, and answers what
``store/scope.py`` and ``store/validate.py`` ask of a register — the same rules a device runs on
its own state — from the server's tables.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from store.record import Rec

from . import db
from .db import aliases, anchors, counter, id_numbers, org_closure, records, scope_log

# The statements of a sync request, built once: building a statement costs more than running
# it on SQLite (about 80 µs of Python each), and a sync makes about fifteen.
# The head, locked: on PostgreSQL this row lock is what serializes writers (db.py); SQLite has
# no FOR UPDATE and is serialized by db.write.
_HEAD = select(counter.c.seq, select(db.meta.c.value).where(db.meta.c.key == "epoch")
               .scalar_subquery().label("epoch")).where(counter.c.id == 1).with_for_update(
    of=counter)
_SET_HEAD = update(counter).where(counter.c.id == 1)
_LOAD = select(records).where(records.c.rec_id == bindparam("rec_id"))
_FLOWS = select(records.c.rec_id).where(records.c.parent_id == bindparam("parent_id"),
                                        records.c.type == "flow")
_CHILDREN = select(records.c.rec_id).where(records.c.parent_id == bindparam("parent_id"))
_ANCHORS = select(anchors.c.org_id).where(anchors.c.rec_id == bindparam("rec_id"))
SUBTREE = select(org_closure.c.org_id).where(org_closure.c.ancestor_id == bindparam("org_id"))
_ANCESTORS = select(org_closure.c.ancestor_id).where(org_closure.c.org_id == bindparam("org_id"))
_INSERT_RECORD = insert(records)
_UPDATE_RECORD = update(records).where(records.c.rec_id == bindparam("where_rec_id"))
_ID_HOLDER = select(id_numbers.c.rec_id).where(id_numbers.c.county_id == bindparam("county_id"),
                                               id_numbers.c.id_number == bindparam("number"))
_ALIAS = select(aliases).where(aliases.c.old_id == bindparam("old_id"))


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def rec_of(row: Any) -> Rec:
    return Rec(row.rec_id, row.type, json.loads(row.data), json.loads(row.versions),
               json.loads(row.hlcs), row.created_at, row.updated_at, bool(row.deleted), row.seq,
               row.last_device, row.writer_org_id, row.parent_id, row.county_id)


def _row(rec: Rec) -> dict[str, Any]:
    return {"rec_id": rec.rec_id, "type": rec.type, "county_id": rec.county_id,
            "parent_id": rec.parent_id, "data": dumps(rec.fields),
            "versions": dumps(rec.versions), "hlcs": dumps(rec.hlcs),
            "created_at": rec.created_at, "updated_at": rec.updated_at,
            "deleted": rec.deleted, "seq": rec.seq, "last_device": rec.last_device,
            "writer_org_id": rec.writer_org_id}


class Tx:
    """One write transaction: the counter, a cache of records, and the writes to make."""

    def __init__(self, conn: Connection, org_id: str | None = None) -> None:
        self.conn = conn
        self.org_id = org_id  # the writing device's organization (None: the county admin)
        head = conn.execute(_HEAD).one()
        self.seq = int(head.seq)
        self.start_seq = self.seq
        self.epoch: str = head.epoch
        self._county: list[str | None] = []  # the writing organization's county, once asked
        self._cache: dict[str, Rec | None] = {}
        self._new: set[str] = set()
        self._dirty: set[str] = set()
        self._subtrees: dict[str, set[str]] = {}
        self._anchors: dict[str, set[str]] = {}
        self.first_seq: dict[str, int] = {}  # a record's seq before this transaction
        self._flows: dict[str, list[str]] = {}  # member id → ids of its flows
        self._flow_recs: dict[str, list[Rec]] = {}  # member id → its live flows
        self._id_numbers: dict[str, str | None] = {}  # changed in this transaction
        self.has_aliases: bool | None = None  # whether the writing device has any (None: ask)
        # records re-stamped because their anchors changed: (seq before, seq now, old anchors)
        self.restamped: dict[str, tuple[int, int, set[str]]] = {}

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # -- records ---------------------------------------------------------------------------
    def load(self, rec_id: str) -> Rec | None:
        if rec_id not in self._cache:
            row = self.conn.execute(_LOAD, {"rec_id": rec_id}).first()
            self._cache[rec_id] = rec_of(row) if row is not None else None
            self.first_seq[rec_id] = row.seq if row is not None else 0
        return self._cache[rec_id]

    def lookup(self, rec_id: str) -> dict[str, Any] | None:
        """A live record as validation sees it (``validate.Context``)."""
        rec = self.load(rec_id)
        if rec is None or rec.deleted:
            return None
        return {"id": rec.rec_id, "type": rec.type, **rec.fields}

    def stored(self, rec_id: str) -> dict[str, Any] | None:
        """``validate.Context``: the record before the op being judged (each op is judged
        against what the ops before it left)."""
        return self.lookup(rec_id)

    def flows_of(self, member_id: str) -> list[Rec]:
        # asked several times per member op (sides, anchors, validation): worked out once,
        # again only after one of the member's flows changes (put)
        found = self._flow_recs.get(member_id)
        if found is None:
            if member_id not in self._flows:
                rows = list(self.conn.execute(_FLOWS, {"parent_id": member_id}).scalars())
                rows += [i for i in self._cache_children(member_id) if i not in rows]
                self._flows[member_id] = rows
            flows = [self.load(r) for r in self._flows[member_id]]
            found = self._flow_recs[member_id] = [
                f for f in flows if f is not None and f.type == "flow" and not f.deleted
                and f.fields.get("member_id") == member_id]
        return found

    def _cache_children(self, parent_id: str) -> list[str]:
        return [r.rec_id for r in self._cache.values()
                if r is not None and r.parent_id == parent_id]

    def children(self, parent_id: str) -> list[Rec]:
        ids = list(self.conn.execute(_CHILDREN, {"parent_id": parent_id}).scalars())
        ids += [i for i in self._cache_children(parent_id) if i not in ids]
        out = [self.load(i) for i in ids]
        return [r for r in out if r is not None and r.parent_id == parent_id]

    def put(self, rec: Rec, new: bool) -> None:
        self._cache[rec.rec_id] = rec
        (self._new if new else self._dirty).add(rec.rec_id)
        if rec.type == "flow":
            self._flow_recs.pop(rec.parent_id or "", None)
            known = self._flows.get(rec.parent_id or "")
            if known is not None and rec.rec_id not in known:
                known.append(rec.rec_id)

    # -- the organization tree ---------------------------------------------------------------
    def subtree(self, org_id: str) -> set[str]:
        if org_id not in self._subtrees:
            self._subtrees[org_id] = set(self.conn.execute(SUBTREE, {"org_id": org_id})
                                         .scalars())
        return self._subtrees[org_id]

    def clear_subtrees(self) -> None:
        self._subtrees.clear()

    @property
    def county_id(self) -> str | None:
        """The county whose register the request writes: the writing organization's."""
        if not self._county:
            self._county.append(self.county_of(self.org_id))
        return self._county[0]

    def county_of(self, org_id: str | None) -> str | None:
        """The county organization at or above ``org_id``."""
        if not org_id:
            return None
        for ancestor in self.conn.execute(_ANCESTORS, {"org_id": org_id}).scalars():
            rec = self.load(ancestor)
            if rec is not None and rec.fields.get("kind") == "county":
                return str(ancestor)
        return None

    def org_name(self, org_id: str | None) -> str:
        org = self.load(org_id or "")
        return str(org.fields.get("name")) if org is not None else "?"

    # -- one person, one record: ID numbers within a county ----------------------------------
    def id_number_holder(self, number: str, rec_id: str) -> tuple[str, str] | None:
        """``validate.Context``: another member of this county with the ID number, named only
        by the organization that holds it (nothing personal crosses to another branch)."""
        stored = self.load(rec_id)
        if stored is not None and stored.fields.get("id_number") == number:
            return None  # the member keeps the number it has: it was unique when it was set
        holder = self.member_with_id_number(number)
        if holder is None or holder.rec_id == rec_id:
            return None
        org = self.org_name(holder.fields.get("home_org_id") or holder.writer_org_id)
        return f"{org} 的党员", f"a member of {org}"

    def member_with_id_number(self, number: str, county: str | None = None) -> Rec | None:
        county = (self.county_id if county is None else county) or ""
        key = f"{county}:{number}"
        if key in self._id_numbers:
            rec_id = self._id_numbers[key]
        else:
            rec_id = self.conn.execute(_ID_HOLDER, {"county_id": county,
                                                    "number": number}).scalar()
        member = self.load(rec_id) if rec_id else None
        return member if member is not None and not member.deleted else None

    def index_id_number(self, member: Rec, old: str | None) -> None:
        """Keep the county's ID-number index true to ``member`` (its number was ``old``)."""
        new = None if member.deleted else member.fields.get("id_number")
        if old == new:
            return
        county = member.county_id or ""
        for number, holder in ((old, None), (new, member.rec_id)):
            if not number:
                continue
            current = self.member_with_id_number(number, county)
            if holder is None and (current is None or current.rec_id != member.rec_id):
                continue  # another member holds that number: leave it
            if holder is not None and current is not None:
                continue  # first come keeps it (validation refused a second one)
            self.conn.execute(delete(id_numbers).where(id_numbers.c.county_id == county,
                                                       id_numbers.c.id_number == number))
            if holder is not None:
                self.conn.execute(insert(id_numbers).values(county_id=county, id_number=number,
                                                            rec_id=holder))
            self._id_numbers[f"{county}:{number}"] = holder

    # -- records one device made twice ---------------------------------------------------------
    def alias(self, old_id: str) -> Any:
        """The alias row of a record id a device made for a record the county already had.
        Only the device that made an id knows it: a device without aliases needs no lookup."""
        if self.has_aliases is False:
            return None
        return self.conn.execute(_ALIAS, {"old_id": old_id}).first()

    def add_alias(self, old_id: str, new_id: str, device_id: str, dev_seq: int) -> None:
        self.conn.execute(insert(aliases).values(old_id=old_id, new_id=new_id,
                                                 device_id=device_id, dev_seq=dev_seq))
        self.has_aliases = True

    # -- anchors -------------------------------------------------------------------------------
    def stored_anchors(self, rec_id: str) -> set[str]:
        if rec_id not in self._anchors:
            self._anchors[rec_id] = set() if rec_id in self._new else set(
                self.conn.execute(_ANCHORS, {"rec_id": rec_id}).scalars())
        return self._anchors[rec_id]

    def set_anchors(self, rec: Rec, wanted: set[str]) -> bool:
        """Record ``rec``'s anchors; on a change, re-stamp it (so devices that now see it get
        it) and log the anchors it lost (so devices that no longer see it drop it)."""
        current = set(self.stored_anchors(rec.rec_id))
        if current == wanted:
            return False
        self._anchors[rec.rec_id] = set(wanted)
        if rec.rec_id not in self._new and rec.seq <= self.start_seq:
            before = rec.seq
            rec.seq = self.next_seq()
            self.restamped[rec.rec_id] = (before, rec.seq, current)
            self.put(rec, new=False)
        lost = current - wanted
        if lost:
            self.conn.execute(delete(anchors).where(anchors.c.rec_id == rec.rec_id,
                                                    anchors.c.org_id.in_(lost)))
            self.conn.execute(insert(scope_log), [
                {"seq": rec.seq, "rec_id": rec.rec_id, "org_id": o} for o in sorted(lost)])
        gained = wanted - current
        if gained:
            self.conn.execute(insert(anchors), [
                {"rec_id": rec.rec_id, "org_id": o} for o in sorted(gained)])
        return True

    def flush(self) -> None:
        """Write the changed records and the counter."""
        for rec_id in self._new:
            rec = self._cache[rec_id]
            assert rec is not None
            self.conn.execute(_INSERT_RECORD, _row(rec))
        for rec_id in self._dirty - self._new:
            rec = self._cache[rec_id]
            assert rec is not None
            self.conn.execute(_UPDATE_RECORD, {**_row(rec), "where_rec_id": rec_id})
        self._new.clear()
        self._dirty.clear()
        if self.seq != self.start_seq:
            self.conn.execute(_SET_HEAD, {"seq": self.seq})
