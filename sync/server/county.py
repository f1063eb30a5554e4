"""The county server's work: one sync request in one transaction (DESIGN §3.2), enrollment,
and the writes the county admin makes.

A sync request, inside one serialized write transaction:
1. ops already applied (by ``(device_id, dev_seq)``) are skipped, so a resent request changes
   nothing; a gap stops the batch until the device resends from where the server is;
2. each op is authorized against the record's scope and field ownership (``scope.py``) and
   validated against the schema; a refused op is answered in ``rejected`` and never blocks the
   queue;
3. each field whose ``base`` version is stale becomes a **conflict**: both values are kept in a
   conflict record, the later HLC is shown for now, and both sides see it;
4. every change gets the next ``server_seq``; records whose scope changed are re-stamped, so
   they reach devices that now see them, and their old anchors are logged so devices that no
   longer see them get a ``remove``;
5. the changes in the device's scope after its cursor are returned, up to ``max_bytes``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, insert, select, update

from store.errors import Issue, ValidationError
from store.ids import Hlc, is_ulid, new_ulid
from store.schema import TYPES
from store.validate import check_record, coerce, issue

from . import db
from .db import anchors, counter, org_closure, records, scope_log
from .scope import Rec, anchors_of, parent_of, refusal

ADMIN_DEVICE = "admin"
PULL_CHUNK = 400


class Refused(Exception):
    """A request the server will not take: an HTTP status and a code with its messages."""

    def __init__(self, status: int, code: str, zh: str, en: str, **extra: Any) -> None:
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.extra = status, code, zh, en, extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "zh": self.zh, "en": self.en, **self.extra}


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
_SUBTREE = select(org_closure.c.org_id).where(org_closure.c.ancestor_id == bindparam("org_id"))
_INSERT_RECORD = insert(records)
_UPDATE_RECORD = update(records).where(records.c.rec_id == bindparam("where_rec_id"))
_INSERT_OP = insert(db.ops)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class Tx:
    """One write transaction: the counter, a cache of records, and the writes to make."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        head = conn.execute(_HEAD).one()
        self.seq = int(head.seq)
        self.start_seq = self.seq
        self.epoch: str = head.epoch
        self._cache: dict[str, Rec | None] = {}
        self._new: set[str] = set()
        self._dirty: set[str] = set()
        self._subtrees: dict[str, set[str]] = {}
        self._anchors: dict[str, set[str]] = {}
        self.first_seq: dict[str, int] = {}  # a record's seq before this transaction
        self._open_flows: dict[str, list[str]] = {}

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # -- records ---------------------------------------------------------------------------
    def load(self, rec_id: str) -> Rec | None:
        if rec_id not in self._cache:
            row = self.conn.execute(_LOAD, {"rec_id": rec_id}).first()
            self._cache[rec_id] = _rec(row) if row is not None else None
            self.first_seq[rec_id] = row.seq if row is not None else 0
        return self._cache[rec_id]

    def lookup(self, rec_id: str) -> dict[str, Any] | None:
        """A live record as validation sees it (``check_record``'s lookup)."""
        rec = self.load(rec_id)
        if rec is None or rec.deleted:
            return None
        return {"id": rec.rec_id, "type": rec.type, **rec.fields}

    def open_flows(self, member_id: str) -> list[Rec]:
        if member_id not in self._open_flows:
            # asked three times per member op (sides, its anchors, the member's): once here
            rows = list(self.conn.execute(_FLOWS, {"parent_id": member_id}).scalars())
            rows += [i for i in self._cache_children(member_id) if i not in rows]
            self._open_flows[member_id] = rows
        rows = self._open_flows[member_id]
        flows = [self.load(r) for r in rows]
        return [f for f in flows if f is not None and f.type == "flow" and not f.deleted
                and f.fields.get("status") != "ended" and f.fields.get("member_id") == member_id]

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
        known = self._open_flows.get(rec.parent_id or "")
        if rec.type == "flow" and known is not None and rec.rec_id not in known:
            known.append(rec.rec_id)

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
            rec.seq = self.next_seq()
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

    def subtree(self, org_id: str) -> set[str]:
        if org_id not in self._subtrees:
            self._subtrees[org_id] = set(self.conn.execute(_SUBTREE, {"org_id": org_id})
                                         .scalars())
        return self._subtrees[org_id]

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


def _rec(row: Any) -> Rec:
    return Rec(row.rec_id, row.type, json.loads(row.data), json.loads(row.versions),
               json.loads(row.hlcs), row.created_at, row.updated_at, bool(row.deleted), row.seq,
               row.last_device, row.writer_org_id, row.parent_id, row.county_id)


def _row(rec: Rec) -> dict[str, Any]:
    return {"rec_id": rec.rec_id, "type": rec.type, "county_id": rec.county_id,
            "parent_id": rec.parent_id, "data": _dumps(rec.fields),
            "versions": _dumps(rec.versions), "hlcs": _dumps(rec.hlcs),
            "created_at": rec.created_at, "updated_at": rec.updated_at,
            "deleted": rec.deleted, "seq": rec.seq, "last_device": rec.last_device,
            "writer_org_id": rec.writer_org_id}


def wire(rec: Rec) -> dict[str, Any]:
    """A record as a device receives it; ``v`` is one number when every field has the same
    version (most records), which keeps an initial sync small."""
    versions = {k: v for k, v in rec.versions.items() if k in rec.fields}
    distinct = set(versions.values())
    out: dict[str, Any] = {"id": rec.rec_id, "t": rec.type, "f": rec.fields,
                           "v": distinct.pop() if len(distinct) == 1 and len(versions) ==
                           len(rec.fields) else versions, "c": rec.created_at}
    if rec.updated_at != rec.created_at:
        out["u"] = rec.updated_at
    if rec.deleted:
        out["d"] = 1
    return out


# -- applying one op ---------------------------------------------------------------------------

class Outcome:
    def __init__(self) -> None:
        self.applied: list[list[int]] = []
        self.rejected: list[dict[str, Any]] = []
        self.conflicts: list[str] = []
        # rec_id → (its seq before this request, the seq of this device's last write to it)
        self.own_writes: dict[str, tuple[int, int]] = {}
        self.unclean: set[str] = set()  # records the device must receive back


def _shape_ok(op: Any) -> bool:
    return (isinstance(op, dict) and isinstance(op.get("dev_seq"), int)
            and isinstance(op.get("rec_id"), str) and is_ulid(op["rec_id"])
            and op.get("type") in TYPES and isinstance(op.get("set"), dict)
            and isinstance(op.get("base", {}), dict)
            and all(isinstance(v, int) for v in op.get("base", {}).values())
            and isinstance(op.get("hlc"), str) and len(op["hlc"]) == 16
            and all(c in "0123456789abcdef" for c in op["hlc"])
            and all(k in TYPES[op["type"]].by_name for k in op["set"]))


def apply_op(tx: Tx, op: dict[str, Any], device_id: str, device_org: str | None,
             outcome: Outcome, today: dt.date) -> tuple[str, str | None, int | None]:
    """Apply one op; returns (outcome, reason, seq). ``device_org`` None: the county admin."""
    if not _shape_ok(op):
        return "rejected", "malformed", None
    rtype = TYPES[op["type"]]
    before = tx.load(op["rec_id"])
    if before is not None and before.type != op["type"]:
        return "rejected", "type_mismatch", None
    values = {}
    for name, raw in op["set"].items():
        value = coerce(rtype[name], raw, today)
        if isinstance(value, Issue):
            return "rejected", f"invalid:{value.en}", None
        values[name] = value
    after = Rec(op["rec_id"], op["type"], dict(before.fields) if before else {},
                dict(before.versions) if before else {}, dict(before.hlcs) if before else {},
                before.created_at if before else op["hlc"],
                before.updated_at if before else op["hlc"],
                before.deleted if before else False, before.seq if before else 0,
                writer_org_id=before.writer_org_id if before else device_org,
                parent_id=before.parent_id if before else None,
                county_id=before.county_id if before else None)
    for name, value in values.items():
        if value is None:
            after.fields.pop(name, None)
        else:
            after.fields[name] = value
    if device_org is not None:
        reason = refusal(tx, before, after, {"set": values, "deleted": op.get("deleted")},
                         tx.subtree(device_org))
        if reason:
            return "rejected", reason, None
    if not (op.get("deleted") or after.deleted):
        issues = check_record(rtype, after.fields, tx.lookup, today)
        if issues:
            return "rejected", f"invalid:{issues[0].en}", None
    # Field by field: a stale base is a conflict, unless the write the device did not know of
    # is its own earlier one; the later HLC is shown until someone decides. ``hlcs`` keeps
    # "hlc:device" per field: when and by whom it was last written.
    seq = tx.next_seq()
    final = dict(before.fields) if before else {}
    versions, hlcs = after.versions, after.hlcs
    conflicted = False
    for name, value in values.items():
        current_version = versions.get(name, 0)
        base = op.get("base", {}).get(name, 0)
        their_hlc, _, their_device = hlcs.get(name, "").partition(":")
        if (before is not None and base < current_version and final.get(name) != value
                and their_device != device_id):
            _record_conflict(tx, before, name, final.get(name), their_hlc, their_device,
                             current_version, value, op["hlc"], device_id, device_org, seq,
                             outcome)
            conflicted = True
            if (op["hlc"], device_id) < (their_hlc, their_device):
                continue  # theirs is the later write: it stays shown
        if value is None:
            final.pop(name, None)
        else:
            final[name] = value
        versions[name], hlcs[name] = seq, f"{op['hlc']}:{device_id}"
    after.fields = final
    after.seq = seq
    after.updated_at = max(after.updated_at, op["hlc"])
    after.last_device = device_id
    if op.get("deleted"):
        after.deleted = True
    after.parent_id = parent_of(after)
    if before is None:
        after.created_at = op["hlc"]
        after.county_id = _county_of(tx, device_org or after.fields.get("parent_id")
                                     or after.fields.get("issued_by_org_id"))
    tx.put(after, new=before is None)
    prev = outcome.own_writes.get(op["rec_id"], (tx.first_seq.get(op["rec_id"], 0), 0))[0]
    outcome.own_writes[op["rec_id"]] = (prev, seq)
    if conflicted:
        outcome.unclean.add(op["rec_id"])
    if after.type == "org":
        _maintain_closure(tx, after)
    _rescope(tx, after)
    return ("conflict" if conflicted else "applied"), None, seq


def _county_of(tx: Tx, org_id: str | None) -> str | None:
    if not org_id:
        return None
    rows = tx.conn.execute(select(org_closure.c.ancestor_id).where(
        org_closure.c.org_id == org_id)).scalars().all()
    for ancestor in rows:
        rec = tx.load(ancestor)
        if rec is not None and rec.fields.get("kind") == "county":
            return ancestor
    return None


def _record_conflict(tx: Tx, subject: Rec, name: str, theirs: Any, their_hlc: str,
                     their_device: str, their_version: int, mine: Any, my_hlc: str,
                     device_id: str, device_org: str | None, seq: int,
                     outcome: Outcome) -> None:
    """Keep both values in one open conflict record per (record, field) (DESIGN §3.2)."""
    existing = [c for c in tx.children(subject.rec_id) if c.type == "conflict"
                and c.fields.get("field") == name and c.fields.get("status") == "open"]
    entry_theirs = {"value": theirs, "hlc": their_hlc, "version": their_version,
                    "device_id": their_device or None}
    entry_mine = {"value": mine, "hlc": my_hlc, "version": seq, "device_id": device_id,
                  "org_id": device_org}
    if existing:
        conflict = existing[0]
        values = list(conflict.fields["values"])
        if all(v.get("hlc") != their_hlc for v in values):
            values.append(entry_theirs)
        values.append(entry_mine)
        conflict.fields = {**conflict.fields, "values": values}
        conflict.versions["values"] = conflict.seq = tx.next_seq()
        conflict.hlcs["values"] = f"{max(my_hlc, their_hlc)}:{ADMIN_DEVICE}"
        conflict.updated_at = max(conflict.updated_at, my_hlc)
        conflict.last_device = ADMIN_DEVICE
        tx.put(conflict, new=False)
    else:
        hlc = max(my_hlc, their_hlc)
        cseq = tx.next_seq()
        fields = {"subject_id": subject.rec_id, "subject_type": subject.type, "field": name,
                  "values": [entry_theirs, entry_mine], "status": "open"}
        conflict = Rec(new_ulid(), "conflict", fields, dict.fromkeys(fields, cseq),
                       dict.fromkeys(fields, f"{hlc}:{ADMIN_DEVICE}"), hlc, hlc, False, cseq,
                       ADMIN_DEVICE,
                       None, subject.rec_id, subject.county_id)
        tx.put(conflict, new=True)
    outcome.conflicts.append(conflict.rec_id)
    tx.set_anchors(conflict, anchors_of(tx, conflict))


def _rescope(tx: Tx, rec: Rec) -> None:
    """Bring anchors up to date after a change to ``rec``: its own, and where it moves a member
    (a flow gets or loses a host, a member changes home), the member's and everything hanging
    off it."""
    if rec.type == "org":
        return
    changed = tx.set_anchors(rec, anchors_of(tx, rec))
    member_id = rec.rec_id if rec.type == "member" else (
        rec.fields.get("member_id") if rec.type == "flow" else None)
    if member_id is None:
        return
    member = tx.load(member_id)
    if member is None:
        return
    if rec.type == "member":
        if not changed:
            return  # the member's scope did not change: nothing hanging off it moves
        # meetings it attended are anchored at its home (M-3.2): they follow it
        for meeting_id in tx.conn.execute(select(records.c.rec_id).where(
                records.c.type == "meeting",
                records.c.data.like(f'%"{member_id}"%'))).scalars():
            meeting = tx.load(meeting_id)
            if meeting is not None:
                tx.set_anchors(meeting, anchors_of(tx, meeting))
    else:
        tx.set_anchors(member, anchors_of(tx, member))
    stack = list(tx.children(member_id))
    seen = {member_id}
    while stack:
        child = stack.pop()
        if child.rec_id in seen:
            continue
        seen.add(child.rec_id)
        tx.set_anchors(child, anchors_of(tx, child))
        stack.extend(tx.children(child.rec_id))


def _maintain_closure(tx: Tx, org: Rec) -> None:
    """The org tree as a closure table: (org, ancestor, depth) for every ancestor and itself."""
    conn = tx.conn
    subtree = [org.rec_id, *[o for o in tx.subtree(org.rec_id) if o != org.rec_id]]
    parent = org.fields.get("parent_id")
    parent_chain = list(conn.execute(select(org_closure.c.ancestor_id, org_closure.c.depth)
                                     .where(org_closure.c.org_id == parent))) if parent else []
    for member in subtree:
        inner = conn.execute(select(org_closure.c.depth).where(
            org_closure.c.org_id == member, org_closure.c.ancestor_id == org.rec_id)).scalar()
        inner = 0 if member == org.rec_id else int(inner or 0)
        conn.execute(delete(org_closure).where(
            org_closure.c.org_id == member,
            org_closure.c.ancestor_id.not_in(subtree)))
        if member == org.rec_id:
            exists = conn.execute(select(org_closure.c.org_id).where(
                org_closure.c.org_id == member, org_closure.c.ancestor_id == member)).first()
            if not exists:
                conn.execute(insert(org_closure).values(org_id=member, ancestor_id=member,
                                                        depth=0))
        for ancestor, depth in parent_chain:
            conn.execute(insert(org_closure).values(org_id=member, ancestor_id=ancestor,
                                                    depth=depth + 1 + inner))
    tx._subtrees.clear()


def _printable(value: Any) -> str:
    """A value a device sent, fit for a text column (PostgreSQL text holds no NUL)."""
    return str(value).replace("\x00", "\ufffd")


def _audit(conn: Connection, device_id: str, org_id: str | None, op: Any, outcome: str,
           reason: str | None, seq: int | None, prev_seq: int = 0) -> None:
    conn.execute(_INSERT_OP, {
        "device_id": device_id, "dev_seq": op["dev_seq"], "county_id": None, "org_id": org_id,
        "seq": seq, "prev_seq": prev_seq, "rec_id": _printable(op.get("rec_id"))[:26],
        "type": _printable(op.get("type"))[:32], "body": _dumps(op), "received_at": db.now(),
        "outcome": outcome, "reason": reason})


# -- writes by the county admin ----------------------------------------------------------------

def admin_put(engine: Engine, type_name: str, values: dict[str, Any],
              rec_id: str | None = None) -> str:
    """A record written by the county admin (orgs, tasks): validated, stamped and logged like
    a device's op, with no scope limit. Raises store.ValidationError on bad input."""
    rtype = TYPES[type_name]
    today = dt.date.today()
    issues: list[Issue] = []
    coerced: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in rtype.by_name:
            issues.append(issue(name, "unknown_field"))
            continue
        value = coerce(rtype[name], raw, today)
        if isinstance(value, Issue):
            issues.append(value)
        else:
            coerced[name] = value
    if issues:
        raise ValidationError(issues)
    with db.write(engine) as conn:
        tx = Tx(conn)
        before = tx.load(rec_id) if rec_id else None
        merged = {k: v for k, v in {**(before.fields if before else {}), **coerced}.items()
                  if v is not None}
        issues = check_record(rtype, merged, tx.lookup, today)
        if type_name == "org" and before is not None and \
                merged.get("parent_id") in tx.subtree(before.rec_id):
            issues.append(Issue("parent_id", "cycle", "「上级组织」不能是本组织或其下级",
                                "parent_id cannot be the organization itself or one below it"))
        if issues:
            raise ValidationError(issues)
        op = {"dev_seq": tx.seq + 1, "rec_id": rec_id or new_ulid(), "type": type_name,
              "set": coerced, "base": dict(before.versions) if before else {},
              "hlc": Hlc().now()}
        result, reason, seq = apply_op(tx, op, ADMIN_DEVICE, None, Outcome(), today)
        if result == "rejected":
            raise ValidationError([Issue("record", "invalid", reason or "", reason or "")])
        tx.flush()
        _audit(conn, ADMIN_DEVICE, None, op, result, reason, seq)
    return str(op["rec_id"])


def live_records(conn: Connection, type_name: str) -> list[Rec]:
    return [_rec(r) for r in conn.execute(
        select(records).where(and_(records.c.type == type_name, records.c.deleted.is_(False))))]
