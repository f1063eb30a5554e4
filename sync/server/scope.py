"""Scope and field ownership (DESIGN §3.3), decided by the server from its own tables.

Every record has **anchors**: the organizations it belongs to. A device enrolled at org D sees
a record when one of its anchors lies in D's subtree; organizations themselves are seen by all.

- a member: the home organization (or, for a member whose home is outside the system, the
  organization that registered them), and the host organization of each open flow;
- a flow, contact, study … (anything hanging off a member): the member's anchors;
- a meeting: its organization and the home organizations of those who attended, so that
  attendance at the host counts at home (M-3.2);
- an application or fund entry: its organization; a task: who issued it and its targets; a reply:
  the replying organization and the issuer; a conflict: the anchors of the record it is about.

A device holds **sides** of a record: ``home`` (the member's home in its subtree), ``host`` (an
open flow's host in its subtree), ``writer`` (it, or an organization above it, made the record).
Each field's owner in ``store/schema.py`` says which side may write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from store.schema import TYPES

MEMBER_CHILDREN = frozenset({"flow", "contact", "study", "vanguard", "care", "appraisal",
                             "commendation", "probation_review", "transfer"})
ORG_ANCHORED = {"meeting": "org_id", "application": "org_id", "fund": "org_id"}
# The field naming the organization that keeps a record not hanging off a member.
OWNING_ORG = {**ORG_ANCHORED, "task": "issued_by_org_id", "task_reply": "org_id"}
# Fields a host may set although the home side owns them, and the values it may set.
HOST_MAY_SET = {("flow", "status"): {"reported"}}


@dataclass
class Rec:
    rec_id: str
    type: str
    fields: dict[str, Any]
    versions: dict[str, int] = field(default_factory=dict)
    hlcs: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    deleted: bool = False
    seq: int = 0
    last_device: str | None = None
    writer_org_id: str | None = None
    parent_id: str | None = None
    county_id: str | None = None


class Records(Protocol):
    def load(self, rec_id: str) -> Rec | None: ...
    def open_flows(self, member_id: str) -> list[Rec]: ...


def parent_of(rec: Rec) -> str | None:
    """The record this one hangs off: its member, the subject of a conflict, a reply's task."""
    if rec.type in MEMBER_CHILDREN:
        return rec.fields.get("member_id")
    if rec.type == "conflict":
        return rec.fields.get("subject_id")
    if rec.type == "task_reply":
        return rec.fields.get("task_id")
    return None


def member_home_orgs(member: Rec) -> set[str]:
    home = member.fields.get("home_org_id")
    if home:
        return {home}
    return {member.writer_org_id} if member.writer_org_id else set()


def member_host_orgs(db: Records, member: Rec, flows: list[Rec] | None = None) -> set[str]:
    flows = db.open_flows(member.rec_id) if flows is None else flows
    return {f.fields["host_org_id"] for f in flows if f.fields.get("host_org_id")}


def anchors_of(db: Records, rec: Rec) -> set[str]:
    """The organizations ``rec`` belongs to, computed from current server state."""
    t, f = rec.type, rec.fields
    if t == "org":
        return set()
    if t == "member":
        return member_home_orgs(rec) | member_host_orgs(db, rec)
    if t in MEMBER_CHILDREN or t == "conflict":
        parent = db.load(parent_of(rec) or "")
        return anchors_of(db, parent) if parent is not None else set()
    if t in ORG_ANCHORED:
        out = {f[ORG_ANCHORED[t]]} if f.get(ORG_ANCHORED[t]) else set()
        if t == "meeting":
            for member_id in f.get("attendee_ids") or []:
                member = db.load(member_id)
                if member is not None and member.type == "member":
                    out |= member_home_orgs(member)
        return out
    if t == "task":
        return {f.get("issued_by_org_id"), *(f.get("target_org_ids") or [])} - {None}  # type: ignore[return-value]
    if t == "task_reply":
        task = db.load(f.get("task_id") or "")
        issuer = task.fields.get("issued_by_org_id") if task is not None else None
        return {f.get("org_id"), issuer} - {None}  # type: ignore[return-value]
    return set()


def sides(db: Records, rec: Rec, subtree: set[str]) -> set[str]:
    """Which sides of ``rec`` a device whose subtree is ``subtree`` holds: ``home``, ``host``,
    ``writer``, and ``reader`` for any record it may see."""
    out: set[str] = set()
    t = rec.type
    if t == "member" or t in MEMBER_CHILDREN:
        member = rec if t == "member" else db.load(rec.fields.get("member_id") or "")
        if member is not None and member.type == "member":
            if member_home_orgs(member) & subtree:
                out.add("home")
            if member_host_orgs(db, member) & subtree:
                out.add("host")
        if t == "flow" and rec.fields.get("host_org_id") in subtree and \
                rec.fields.get("status") != "ended":
            out.add("host")
    elif t in OWNING_ORG and rec.fields.get(OWNING_ORG[t]) in subtree:
        out.add("writer")
    if rec.writer_org_id in subtree:
        out.add("writer")
    if out or t == "org" or anchors_of(db, rec) & subtree:
        out.add("reader")
    return out


def refusal(db: Records, before: Rec | None, after: Rec, op: dict[str, Any],
            subtree: set[str]) -> str | None:
    """Why a device may not make this op, or None when it may (DESIGN §3.3).

    A change is judged by who holds the record now; a new record by what it would be (its
    ``writer_org_id`` is the device's organization)."""
    t = after.type
    if t == "org":
        return "org_readonly"
    if t == "conflict" and before is None:
        return "server_field"
    if before is not None:
        held = sides(db, before, subtree)
        if "reader" not in held:
            return "scope"
    else:
        held = sides(db, after, subtree)
        if t == "member" and "home" not in held:
            return "scope"
        if t in MEMBER_CHILDREN:
            member = db.load(after.fields.get("member_id") or "")
            if member is None or not anchors_of(db, member) & subtree:
                return "scope"
        if t == "flow" and "home" not in held:
            return "ownership"
        if t in MEMBER_CHILDREN and not {"home", "host"} & held:
            return "scope"
        if t in ORG_ANCHORED and after.fields.get(ORG_ANCHORED[t]) not in subtree:
            return "scope"
        if t == "task" and after.fields.get("issued_by_org_id") not in subtree:
            return "scope"
        if t == "task_reply":
            task = db.load(after.fields.get("task_id") or "")
            if after.fields.get("org_id") not in subtree or task is None or \
                    not anchors_of(db, task) & subtree:
                return "scope"
    rtype = TYPES[t]
    for name, value in op["set"].items():
        owner = rtype[name].owner
        if owner == "server":
            return "server_field"
        if owner == "home" and "home" not in held:
            allowed = HOST_MAY_SET.get((t, name))
            if not (allowed and "host" in held and value in allowed):
                return "ownership"
        if owner == "host" and "host" not in held and not (
                "home" in held and not _in_system_host(db, after)):
            return "ownership"
        if owner == "writer" and "writer" not in held:
            return "ownership"
    if t == "meeting":
        listed = _meeting_members(after)
        for member_id in listed - (_meeting_members(before) if before else set()):
            member = db.load(member_id)
            if member is None or not anchors_of(db, member) & subtree:
                return "scope"
    if op.get("deleted"):
        needed = "home" if t in ("member", "flow", "probation_review", "transfer") else "writer"
        if needed not in held:
            return "ownership"
    if t in ORG_ANCHORED and after.fields.get(ORG_ANCHORED[t]) not in subtree:
        return "scope"  # an org-anchored record cannot be moved out of one's own subtree
    return None


def _in_system_host(db: Records, rec: Rec) -> bool:
    """Whether the host side of ``rec`` has devices: a flow's host org, or for a record about a
    member, the host org of the member's open flow."""
    if rec.type == "flow":
        return bool(rec.fields.get("host_org_id"))
    member = db.load(rec.fields.get("member_id") or "")
    return member is not None and bool(member_host_orgs(db, member))


def _meeting_members(rec: Rec) -> set[str]:
    return {*(rec.fields.get("attendee_ids") or []),
            *(a.get("member_id") for a in rec.fields.get("absences") or [])}


REASONS: dict[str, tuple[str, str]] = {
    "scope": ("超出本设备的管理范围", "outside this device's scope"),
    "ownership": ("该字段由对方组织负责维护", "the field belongs to the other side of the flow"),
    "org_readonly": ("组织信息由县级管理员维护", "organizations are kept by the county admin"),
    "server_field": ("该字段只能由县级服务器写入", "only the county server writes this field"),
    "invalid": ("内容不符合规则", "the content breaks a rule"),
    "type_mismatch": ("记录类型不一致", "the record exists with another type"),
    "malformed": ("操作格式有误", "the op is malformed"),
}
