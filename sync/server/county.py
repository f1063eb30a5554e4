"""The county server's work: one sync request in one transaction (DESIGN §3.2), enrollment,
and the writes the county admin makes.

A sync request, inside one serialized write transaction:
1. ops already applied (by ``(device_id, dev_seq)``) are skipped, so a resent request changes
   nothing; a gap stops the batch until the device resends from where the server is;
2. ids a device made for records the county already had (``aliases``) are mapped to the
   county's; a host registering the arrival of a member the county holds is linked to that
   member instead of making a second one (``_link_arrival``);
3. each op is authorized against the record before and after it by the rules the schema
   declares (``store/scope.py``) and validated against the schema (``store/validate.py``) —
   the same code the device ran when the edit was typed; a refused op is answered in
   ``rejected`` and never blocks the queue;
4. each field whose ``base`` version is stale becomes a **conflict**: both values are kept in a
   conflict record, the later HLC is shown for now, and both sides see it;
5. every change gets the next ``server_seq``; records whose scope changed are re-stamped, so
   they reach devices that now see them, and their old anchors are logged so devices that no
   longer see them get a ``remove``;
6. the changes in the device's scope after its cursor are returned, up to ``max_bytes``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, select

from store.errors import Issue, ValidationError
from store.ids import Hlc, is_ulid, new_ulid
from store.record import Rec
from store.schema import TYPES
from store.scope import REASONS, Refusal, anchors, refusal, refusal_text, sees
from store.validate import check_record, coerce, issue

from ..protocol import op_digest
from . import db
from .db import org_closure, records
from .tx import Tx, dumps, rec_of

ADMIN_DEVICE = "admin"


class Refused(Exception):
    """A request the server will not take: an HTTP status and a code with its messages."""

    def __init__(self, status: int, code: str, zh: str, en: str, **extra: Any) -> None:
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.extra = status, code, zh, en, extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "zh": self.zh, "en": self.en, **self.extra}


@dataclass(frozen=True)
class Rejection:
    """Why one op was not applied, in the words the device shows (the same as its own)."""

    code: str
    zh: str
    en: str
    field: str | None = None

    @classmethod
    def of(cls, type_name: str, refused: Refusal) -> Rejection:
        zh, en = refusal_text(type_name, refused)
        return cls(refused.code, zh, en, refused.field)

    @classmethod
    def invalid(cls, found: Issue) -> Rejection:
        code = "duplicate" if found.rule == "id_duplicate" else "invalid"
        return cls(code, found.zh, found.en, found.field)

    @classmethod
    def plain(cls, code: str) -> Rejection:
        zh, en = REASONS[code]
        return cls(code, zh, en)

    def audit(self) -> str:
        """As the audit trail keeps it: whole, so a request sent again after its answer was
        lost is told again (``requests._recall``)."""
        return dumps({"code": self.code, "field": self.field, "zh": self.zh, "en": self.en})

    @classmethod
    def from_audit(cls, text: str | None) -> Rejection:
        try:
            kept = json.loads(text or "")
            return cls(str(kept["code"]), str(kept["zh"]), str(kept["en"]), kept.get("field"))
        except (ValueError, KeyError, TypeError):  # written before refusals were kept whole
            code = (text or "invalid").split(":", 1)[0]
            return cls.plain(code if code in REASONS else "invalid")


def parent_of(rec: Rec) -> str | None:
    """The record this one hangs off: its member, the subject of a conflict, a reply's task."""
    kind = TYPES[rec.type].scope.kind
    name = {"member_record": "member_id", "subject": "subject_id", "reply": "task_id"}.get(kind)
    return rec.fields.get(name) if name else None


# -- applying one op ---------------------------------------------------------------------------

@dataclass
class Outcome:
    applied: list[list[int]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    # rec_id → (its seq before this request, the seq of this device's last write to it)
    own_writes: dict[str, tuple[int, int]] = field(default_factory=dict)
    unclean: set[str] = field(default_factory=set)  # records the device must receive back
    # (dev_seq, the device's id, the county's): records linked to one the county had
    linked: list[tuple[int, str, str]] = field(default_factory=list)


def _shape_ok(op: Any) -> bool:
    return (isinstance(op, dict) and isinstance(op.get("dev_seq"), int)
            and isinstance(op.get("rec_id"), str) and is_ulid(op["rec_id"])
            and op.get("type") in TYPES and isinstance(op.get("set"), dict)
            and isinstance(op.get("base", {}), dict)
            and all(isinstance(v, int) for v in op.get("base", {}).values())
            and isinstance(op.get("hlc"), str) and len(op["hlc"]) == 16
            and all(c in "0123456789abcdef" for c in op["hlc"])
            and all(k in TYPES[op["type"]].by_name for k in op["set"]))


def _unalias(tx: Tx, op: dict[str, Any]) -> dict[str, Any]:
    """The op with the ids of records the county linked (its own record, and references to
    members and flows) replaced by the county's ids."""
    def mapped(rec_id: Any) -> Any:
        if not isinstance(rec_id, str):
            return rec_id
        found = tx.alias(rec_id)
        return found.new_id if found is not None else rec_id

    rtype = TYPES[op["type"]]
    changes = {}
    for name, value in op["set"].items():
        f = rtype[name]
        if f.kind == "ref" and f.ref in ("member", "flow"):
            value = mapped(value)
        elif f.kind == "refs" and f.ref == "member" and isinstance(value, list):
            value = [mapped(v) for v in value]
        elif f.kind == "absences" and isinstance(value, list):
            value = [{**a, "member_id": mapped(a.get("member_id"))} if isinstance(a, dict)
                     else a for a in value]
        changes[name] = value
    return {**op, "rec_id": mapped(op["rec_id"]), "set": changes}


def apply_op(tx: Tx, op: dict[str, Any], device_id: str, device_org: str | None,
             outcome: Outcome, today: dt.date,
             ) -> tuple[str, Rejection | None, int | None]:
    """Apply one op; returns (outcome, why it was refused, seq). ``device_org`` None: the county
    admin, or the server itself finishing what a device's op started."""
    if not _shape_ok(op):
        return "rejected", Rejection.plain("malformed"), None
    sent_member = op["set"].get("member_id")
    op = _unalias(tx, op)
    rtype = TYPES[op["type"]]
    before = tx.load(op["rec_id"])
    if before is not None and before.type != op["type"]:
        return "rejected", Rejection.plain("type_mismatch"), None
    values = {}
    for name, raw in op["set"].items():
        value = coerce(rtype[name], raw, today)
        if isinstance(value, Issue):
            return "rejected", Rejection.invalid(value), None
        values[name] = value
    arrival = False
    if device_org is not None and before is None and not op.get("deleted"):
        if op["type"] == "member" and values.get("id_number") and not values.get("home_org_id"):
            holder = tx.member_with_id_number(values["id_number"])
            if holder is not None:
                # The host registers the arrival of a member the county already holds: its
                # new record stands for that member from now on (one person, one record).
                tx.add_alias(op["rec_id"], holder.rec_id, device_id, op["dev_seq"])
                outcome.linked.append((op["dev_seq"], op["rec_id"], holder.rec_id))
                return "linked", None, None
        if op["type"] == "flow":
            link = tx.alias(sent_member) if isinstance(sent_member, str) else None
            arrival = link is not None and link.device_id == device_id
            member = tx.load(values.get("member_id") or "")
            if arrival and member is not None:
                merged = _link_arrival(tx, op, values, member, device_id, device_org, outcome,
                                       today)
                if merged is not None:
                    return merged
                values["home_org_id"] = member.fields.get("home_org_id")
    after = Rec(op["rec_id"], op["type"], dict(before.fields) if before else {},
                dict(before.versions) if before else {}, dict(before.hlcs) if before else {},
                before.created_at if before else op["hlc"],
                before.updated_at if before else op["hlc"],
                before.deleted if before else False, before.seq if before else 0,
                writer_org_id=before.writer_org_id if before else device_org,
                parent_id=before.parent_id if before else None,
                county_id=before.county_id if before else tx.county_id)
    if device_org is not None and before is not None:
        _keep_unseen_people(tx, before, values, tx.subtree(device_org))
    for name, value in values.items():
        if value is None:
            after.fields.pop(name, None)
        else:
            after.fields[name] = value
    if device_org is not None:
        refused = refusal(tx, before, after, values, bool(op.get("deleted")),
                          tx.subtree(device_org), arrival=arrival)
        if refused is not None:
            return "rejected", Rejection.of(op["type"], refused), None
    if not (op.get("deleted") or after.deleted):
        issues = check_record(rtype, after.fields, tx, today, op["rec_id"])
        if issues:
            return "rejected", Rejection.invalid(issues[0]), None
    return _write(tx, op, before, after, values, device_id, device_org, outcome)


def _write(tx: Tx, op: dict[str, Any], before: Rec | None, after: Rec, values: dict[str, Any],
           device_id: str, device_org: str | None, outcome: Outcome,
           ) -> tuple[str, Rejection | None, int | None]:
    """Stamp and store an authorized, valid op. Field by field: a stale base is a conflict,
    unless the write the device did not know of is its own earlier one; the later HLC is shown
    until someone decides. ``hlcs`` keeps "hlc:device" per field: when and by whom it was last
    written."""
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
    old_number = before.fields.get("id_number") if before is not None else None
    after.fields = final
    after.seq = seq
    after.updated_at = max(after.updated_at, op["hlc"])
    after.last_device = device_id
    if op.get("deleted"):
        after.deleted = True
    after.parent_id = parent_of(after)
    if before is None:
        after.created_at = op["hlc"]
        after.county_id = tx.county_of(device_org or after.fields.get("parent_id")
                                       or after.fields.get("issued_by_org_id"))
    tx.put(after, new=before is None)
    if after.type == "member":
        tx.index_id_number(after, old_number)
    prev = outcome.own_writes.get(op["rec_id"], (tx.first_seq.get(op["rec_id"], 0), 0))[0]
    outcome.own_writes[op["rec_id"]] = (prev, seq)
    if conflicted:
        outcome.unclean.add(op["rec_id"])
    if after.type == "org":
        _maintain_closure(tx, after)
    _rescope(tx, after)
    return ("conflict" if conflicted else "applied"), None, seq


def _link_arrival(tx: Tx, op: dict[str, Any], values: dict[str, Any], member: Rec,
                  device_id: str, device_org: str, outcome: Outcome, today: dt.date,
                  ) -> tuple[str, Rejection | None, int | None] | None:
    """A host registered the arrival of a member the county holds, whose home has already
    registered the flow: the host's flow is that flow. It takes the host's part of what was
    typed (the host, once known, its contact person, the report-in) and the host's id stands
    for it. None when there is no such open flow (the host's flow is then made as sent)."""
    subtree = tx.subtree(device_org)
    current = [f for f in tx.flows_of(member.rec_id) if f.fields.get("status") != "ended"]
    if not current:
        return None
    flow = current[0]
    host = flow.fields.get("host_org_id")
    if host and host not in subtree:
        return None  # hosted elsewhere: the flow as sent overlaps it and is refused
    part: dict[str, Any] = {}
    if not host and values.get("host_org_id") in subtree:
        part["host_org_id"] = values["host_org_id"]
    for name in ("host_contact", "reported_on"):
        if values.get(name) and not flow.fields.get(name):
            part[name] = values[name]
    if part.get("reported_on") and flow.fields.get("status") == "pending_report":
        part["status"] = "reported"
    tx.add_alias(op["rec_id"], flow.rec_id, device_id, op["dev_seq"])
    outcome.linked.append((op["dev_seq"], op["rec_id"], flow.rec_id))
    if not part:
        return "linked", None, None
    edit = {**op, "rec_id": flow.rec_id, "set": part, "base": dict(flow.versions)}
    result, rejection, seq = apply_op(tx, edit, device_id, None, outcome, today)
    return ("linked" if result == "applied" else result), rejection, seq


def _keep_unseen_people(tx: Tx, before: Rec, values: dict[str, Any], subtree: set[str]) -> None:
    """A device holds a meeting's list of people only as far as it may see them (pull.py); what
    it sends back keeps the people it was not shown."""
    rtype = TYPES[before.type]
    for name in rtype.scope.people:
        if name not in values:
            continue
        hidden = [item for item in before.fields.get(name) or []
                  if not _sees_member(tx, item["member_id"] if isinstance(item, dict) else item,
                                      subtree)]
        if hidden:
            values[name] = [*(values[name] or []), *hidden]


def _sees_member(tx: Tx, member_id: str, subtree: set[str]) -> bool:
    member = tx.load(member_id)
    return member is not None and sees(tx, member, subtree)


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
    # the server wrote it, not the device: it goes back even if the device writes it too (a
    # resolution in the same request) and would otherwise be spared its own write
    outcome.unclean.add(conflict.rec_id)
    tx.set_anchors(conflict, anchors(tx, conflict) or set())


def _rescope(tx: Tx, rec: Rec) -> None:
    """Bring anchors up to date after a change to ``rec``: its own, and where it moves a member
    (a flow gets or loses a host, a member changes home), the member's and everything hanging
    off it."""
    if rec.type == "org":
        return
    changed = tx.set_anchors(rec, anchors(tx, rec) or set())
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
                tx.set_anchors(meeting, anchors(tx, meeting) or set())
    else:
        tx.set_anchors(member, anchors(tx, member) or set())
    stack = list(tx.children(member_id))
    seen = {member_id}
    while stack:
        child = stack.pop()
        if child.rec_id in seen:
            continue
        seen.add(child.rec_id)
        tx.set_anchors(child, anchors(tx, child) or set())
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
    tx.clear_subtrees()


def _printable(value: Any) -> str:
    """A value a device sent, fit for a text column (PostgreSQL text holds no NUL)."""
    return str(value).replace("\x00", "\ufffd")


_INSERT_OP = insert(db.ops)


def audit(conn: Connection, device_id: str, org_id: str | None, op: Any, outcome: str,
          rejection: Rejection | None, seq: int | None, prev_seq: int = 0) -> None:
    conn.execute(_INSERT_OP, {
        "device_id": device_id, "dev_seq": op["dev_seq"], "county_id": None, "org_id": org_id,
        "seq": seq, "prev_seq": prev_seq, "rec_id": _printable(op.get("rec_id"))[:26],
        "type": _printable(op.get("type"))[:32], "body": dumps(op), "received_at": db.now(),
        "outcome": outcome, "reason": rejection.audit() if rejection else None,
        "digest": op_digest(op) if isinstance(op, dict) else None})


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
        issues = check_record(rtype, merged, tx, today, rec_id)
        if type_name == "org" and before is not None and \
                merged.get("parent_id") in tx.subtree(before.rec_id):
            issues.append(Issue("parent_id", "cycle", "「上级组织」不能是本组织或其下级",
                                "parent_id cannot be the organization itself or one below it"))
        if issues:
            raise ValidationError(issues)
        op = {"dev_seq": tx.seq + 1, "rec_id": rec_id or new_ulid(), "type": type_name,
              "set": coerced, "base": dict(before.versions) if before else {},
              "hlc": Hlc().now()}
        result, rejection, seq = apply_op(tx, op, ADMIN_DEVICE, None, Outcome(), today)
        if rejection is not None:
            raise ValidationError([Issue(rejection.field or "record", rejection.code,
                                         rejection.zh, rejection.en)])
        tx.flush()
        audit(conn, ADMIN_DEVICE, None, op, result, rejection, seq)
    return str(op["rec_id"])


def live_records(conn: Connection, type_name: str) -> list[Rec]:
    return [rec_of(r) for r in conn.execute(
        select(records).where(and_(records.c.type == type_name, records.c.deleted.is_(False))))]
