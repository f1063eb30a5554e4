"""Scope and ownership (DESIGN §3.3), interpreted from the declarations in ``schema.py``.

One implementation for both sides: the county server authorizes and routes every op with it,
and a device refuses an edit as it is typed with the same rule and the same message. Each reads
the register through a ``Register``: the server from its tables, the device from its state.

A record's **anchors** are the organizations it belongs to; a device enrolled at org D holds the
records with an anchor in D's subtree. A device holds **sides** of a record: ``home`` (the
member's home is in its subtree), ``host`` (it hosts the member's open flow), ``writer`` (its
organization made the record, or owns it: a meeting's organization, a task's issuer), and
``reader`` for any record it may hold. Each field's ``owner`` says which side may write it.

Every op is judged on the record **before and after** it: a device may change only a record it
holds and only fields its side owns. The fields that decide scope are ``fixed`` once the record
is made, so no edit can bring a record into the writer's reach (re-pointing a flow at another
branch's member, relabelling a task's issuer); and an edit may not take a record out of the
writer's sight, except through a field whose owner hands the record over (a member's home).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .record import Rec
from .schema import TYPES, Field, RecordType


class Register(Protocol):
    """What the rules read. ``load`` returns deleted records too (as tombstones)."""

    def load(self, rec_id: str) -> Rec | None: ...
    def flows_of(self, member_id: str) -> list[Rec]: ...
    def subtree(self, org_id: str) -> set[str]: ...


def is_open(flow: Rec) -> bool:
    return not flow.deleted and flow.fields.get("status") != "ended"


def home_orgs(member: Rec) -> set[str]:
    """A member's home; for a home outside the system, the organization that registered it."""
    home = member.fields.get("home_org_id") or member.writer_org_id
    return {home} if home else set()


def open_flows(reg: Register, member_id: str, replacing: Rec | None = None) -> list[Rec]:
    """The member's open flows (at most one, but the rules do not rely on it); ``replacing`` is
    a flow as it would be after a change, in place of its stored version."""
    flows = [f for f in reg.flows_of(member_id) if replacing is None
             or f.rec_id != replacing.rec_id]
    if replacing is not None and replacing.type == "flow":
        flows.append(replacing)
    return [f for f in flows if is_open(f)]


def host_orgs(reg: Register, member: Rec, replacing: Rec | None = None) -> set[str]:
    return {f.fields["host_org_id"] for f in open_flows(reg, member.rec_id, replacing)
            if f.fields.get("host_org_id")}


def member_of(reg: Register, rec: Rec) -> Rec | None:
    if rec.type == "member":
        return rec
    if TYPES[rec.type].scope.kind == "member_record":
        member = reg.load(rec.fields.get("member_id") or "")
        return member if member is not None and member.type == "member" else None
    return None


def _related(reg: Register, a: str | None, b: str) -> bool:
    """One organization is the other or lies below it."""
    return a is not None and (b in reg.subtree(a) or a in reg.subtree(b))


def people(rtype: RecordType, fields: Mapping[str, Any]) -> set[str]:
    """Members a record names in its ``people`` fields (a meeting's attendees and absentees)."""
    out: set[str] = set()
    for name in rtype.scope.people:
        for item in fields.get(name) or []:
            out.add(item["member_id"] if isinstance(item, dict) else item)
    return out


def anchors(reg: Register, rec: Rec) -> set[str] | None:
    """The organizations ``rec`` belongs to; None when every device holds it."""
    scope = TYPES[rec.type].scope
    f = rec.fields
    if scope.kind == "everyone":
        return None
    if scope.kind == "member":
        return home_orgs(rec) | host_orgs(reg, rec)
    if scope.kind == "member_record":
        member = member_of(reg, rec)
        if member is None:
            return set()
        out = home_orgs(member)
        if scope.host == "flow":
            if is_open(rec) and f.get("host_org_id"):
                out.add(f["host_org_id"])
        elif scope.host == "open":
            out |= host_orgs(reg, member)
        elif scope.host == "written":
            out |= {h for h in host_orgs(reg, member) if _related(reg, rec.writer_org_id, h)}
        return out
    if scope.kind == "org":
        out = {f[scope.anchors[0]]} if f.get(scope.anchors[0]) else set()
        for member_id in people(TYPES[rec.type], f):
            member = reg.load(member_id)
            if member is not None and member.type == "member":
                out |= home_orgs(member)
        return out
    if scope.kind == "task":
        return {o for o in (f.get("issued_by_org_id"), *(f.get("target_org_ids") or [])) if o}
    if scope.kind == "reply":
        task = reg.load(f.get("task_id") or "")
        issuer = task.fields.get("issued_by_org_id") if task is not None else None
        return {o for o in (f.get("org_id"), issuer) if o}
    # subject: whoever holds the record it is about
    subject = reg.load(f.get("subject_id") or "")
    if subject is None:
        return set()
    found = anchors(reg, subject)
    return set() if found is None else found


def sees(reg: Register, rec: Rec, subtree: set[str]) -> bool:
    found = anchors(reg, rec)
    return found is None or bool(found & subtree)


def sides(reg: Register, rec: Rec, subtree: set[str]) -> set[str]:
    """The sides of ``rec`` a device whose subtree is ``subtree`` holds."""
    scope = TYPES[rec.type].scope
    out: set[str] = set()
    member = member_of(reg, rec)
    if member is not None:
        if home_orgs(member) & subtree:
            out.add("home")
        if host_orgs(reg, member, rec if rec.type == "flow" else None) & subtree:
            out.add("host")
    if scope.kind in ("org", "task", "reply") and rec.fields.get(scope.anchors[0]) in subtree:
        out.add("writer")
    if rec.writer_org_id in subtree:
        out.add("writer")
    if sees(reg, rec, subtree):
        out.add("reader")
    return out


def in_system_host(reg: Register, rec: Rec) -> bool:
    """Whether the host side of ``rec`` has devices of its own: a flow's host organization, or
    for a record about a member, the host of the member's open flow."""
    if rec.type == "flow":
        return bool(rec.fields.get("host_org_id"))
    member = member_of(reg, rec)
    return member is not None and bool(host_orgs(reg, member))


def owns(reg: Register, f: Field, value: Any, held: set[str], rec: Rec) -> bool:
    """May a device holding ``held`` sides of ``rec`` write ``value`` into field ``f``?"""
    if f.owner == "any":
        return True
    if f.owner == "home":
        return "home" in held or ("host" in held and value in f.host_values)
    if f.owner == "host":
        # The host records reporting in; the home side does it only for a host outside the
        # system, which has no device to do it (M-1.3).
        return "host" in held or ("home" in held and not in_system_host(reg, rec))
    if f.owner == "writer":
        return "writer" in held
    return False  # server


@dataclass(frozen=True)
class Refusal:
    """Why a write may not be made: a reason code and, where one field is the cause, its name."""

    code: str
    field: str | None = None


def refusal(reg: Register, before: Rec | None, after: Rec, changes: Mapping[str, Any],
            deleted: bool, subtree: set[str], *, arrival: bool = False) -> Refusal | None:
    """Why a device whose subtree is ``subtree`` may not turn ``before`` into ``after`` by
    setting ``changes`` (and deleting, if ``deleted``); None when it may.

    ``arrival``: the op creates a flow for a member the device reached by the member's ID
    number, registering an arrival it hosts (the server sets this, DESIGN §3.3)."""
    rtype = TYPES[after.type]
    scope = rtype.scope
    if scope.kind == "everyone":
        return Refusal("org_readonly")
    for name in changes:
        if rtype[name].owner == "server":
            return Refusal("server_field", name)
    if before is not None:
        held = sides(reg, before, subtree)
        if "reader" not in held:
            return Refusal("scope")
        for name, value in changes.items():
            if rtype[name].fixed and value != before.fields.get(name):
                return Refusal("fixed", name)
        # Re-pointing what decides scope is closed by fixed anchors; what is left to check is
        # that an edit keeps the record in the writer's sight, unless it hands it over.
        if (not scope_fields(rtype).isdisjoint(changes) and not sees(reg, after, subtree)
                and not any(rtype[n].hands_over for n in changes)):
            return Refusal("reach", _first_anchor(rtype, changes))
    else:
        held = sides(reg, after, subtree)
        found = _create_refusal(reg, after, held, subtree, arrival)
        if found is not None:
            return found
    for name, value in changes.items():
        if arrival and before is None and rtype[name].owner == "home":
            continue  # the host registers the arrival whole: nobody else has recorded it
        if not owns(reg, rtype[name], value, held, before or after):
            return Refusal("ownership", name)
    if scope.people:
        added = people(rtype, after.fields) - (people(rtype, before.fields) if before else set())
        for member_id in sorted(added):
            member = reg.load(member_id)
            if member is None or member.type != "member" or not sees(reg, member, subtree):
                return Refusal("scope", scope.people[0])
    if deleted and scope.delete not in held:
        return Refusal("ownership")
    return None


def _create_refusal(reg: Register, after: Rec, held: set[str], subtree: set[str],
                    arrival: bool) -> Refusal | None:
    scope = TYPES[after.type].scope
    f = after.fields
    if scope.kind == "member" and "home" not in held:
        return Refusal("scope", "home_org_id")
    if scope.kind == "member_record":
        member = member_of(reg, after)
        if member is None or not (arrival or sees(reg, member, subtree)):
            return Refusal("scope", "member_id")
        if after.type == "flow":
            if arrival:
                if f.get("host_org_id") not in subtree:
                    return Refusal("scope", "host_org_id")
            elif "home" not in held:
                return Refusal("ownership")
            if f.get("home_org_id") != member.fields.get("home_org_id"):
                return Refusal("scope", "home_org_id")
        elif not {"home", "host"} & held:
            return Refusal("scope")
    if scope.kind in ("org", "task", "reply") and f.get(scope.anchors[0]) not in subtree:
        return Refusal("scope", scope.anchors[0])
    if scope.kind == "reply":
        task = reg.load(f.get("task_id") or "")
        if task is None or task.type != "task" or not sees(reg, task, subtree):
            return Refusal("scope", "task_id")
    if "reader" not in held:
        return Refusal("scope")
    return None


def scope_fields(rtype: RecordType) -> frozenset[str]:
    """The fields of a record whose change can change who holds it: its anchors, the people it
    names, and a flow's status (an ended flow leaves its host)."""
    return frozenset({*rtype.scope.anchors, *rtype.scope.people,
                      *(("status",) if rtype.scope.host == "flow" else ())})


def _first_anchor(rtype: RecordType, changes: Iterable[str]) -> str | None:
    names = set(changes)
    for name in (*rtype.scope.anchors, *rtype.scope.people):
        if name in names:
            return name
    return next(iter(sorted(names)), None)


def mobility(reg: Register, member: Rec, subtree: set[str]) -> set[str]:
    """How a member is mobile as seen from an organization (DESIGN §2.2): ``outflow`` where its
    open flow left from (the home side), ``inflow`` where that flow is hosted; a county above
    both sees both; empty when the member has no open flow."""
    out: set[str] = set()
    for flow in open_flows(reg, member.rec_id):
        if flow.fields.get("home_org_id") in subtree:
            out.add("outflow")
        if flow.fields.get("host_org_id") in subtree:
            out.add("inflow")
    return out


# -- messages --------------------------------------------------------------------------------
# The device and the server give the same message for the same refusal.

REASONS: dict[str, tuple[str, str]] = {
    "scope": ("超出本组织的管理范围", "outside this organization's scope"),
    "ownership": ("该内容由对方组织负责维护", "it belongs to the other side of the flow"),
    "fixed": ("该字段登记后不能更改", "the field cannot change once the record is made"),
    "reach": ("此项修改会把记录移入或移出本组织的管理范围",
              "the change would move the record into or out of this organization's reach"),
    "org_readonly": ("组织信息由县级管理员维护", "organizations are kept by the county admin"),
    "server_field": ("该字段只能由县级服务器写入", "only the county server writes this field"),
    "duplicate": ("身份证号与已登记的党员重复", "the ID number belongs to a member already registered"),
    "invalid": ("内容不符合规则", "the content breaks a rule"),
    "type_mismatch": ("记录类型不一致", "the record exists with another type"),
    "malformed": ("操作格式有误", "the op is malformed"),
}
OWNER_SIDE = {"home": ("流出地（所在）党组织", "the home organization"),
              "host": ("流入地党组织", "the host organization"),
              "writer": ("记录它的组织", "the organization that recorded it"),
              "server": ("县级服务器", "the county server")}


def refusal_text(type_name: str, refused: Refusal) -> tuple[str, str]:
    """The message for a refusal, naming the field and who keeps it."""
    zh, en = REASONS.get(refused.code, REASONS["invalid"])
    rtype = TYPES.get(type_name)
    if rtype is None or refused.field not in (rtype.by_name if rtype else {}):
        return zh, en
    f = rtype[refused.field or ""]
    if refused.code == "ownership":
        side_zh, side_en = OWNER_SIDE.get(f.owner, OWNER_SIDE["home"])
        return (f"「{f.zh}」由{side_zh}维护，本组织不能修改",
                f"{f.name} is kept by {side_en}; this organization cannot change it")
    return f"「{f.zh}」：{zh}", f"{f.name}: {en}"
