"""The authorization matrix (DESIGN §3.3, §7: "cross-scope reads and writes, every pair of orgs:
0 leaks, 0 accepted").

A county with two committees and three branches, one device at each organization, and data made
the way branch workers make it: members at every branch, an outflow hosted at a branch under the
*other* committee, an outflow to a host outside the system, an inflow of a member whose home is
outside, a flow that has ended, contacts from both sides, meetings (one attended by an inflow
member), a county task with a reply, and a sync conflict.

Then, for every device and every record:
- reads: after a sync the device holds exactly the records whose scope reaches its subtree, as
  computed here from the rules of DESIGN §3.3, independently of ``sync/server/scope.py``;
- writes: hand-made signed requests try every write the device may not make (edits of fields
  it does not own, edits and deletes out of scope, creates under another organization, orgs,
  conflicts); each must come back in ``rejected`` with its reason and change nothing on the
  server. The writes it may make are sent too, and must be applied, so the matrix fails both
  ways.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from store.ids import new_ulid
from store.register import add_member, end_flow, flow_in, flow_out, log_contact
from store.schema import TYPES
from sync.client import Device
from sync.protocol import SYNC_PATH, encode_body, sign_request, unb64u
from sync.server import db
from sync.server.admin import send_task
from tests.sync.harness import County

# The county tree: K → T1 → A, B; K → T2 → C.
PARENT: dict[str, str | None] = {"K": None, "T1": "K", "T2": "K", "A": "T1", "B": "T1",
                                 "C": "T2"}
KINDS = {"K": "county", "T1": "committee", "T2": "committee", "A": "branch", "B": "branch",
         "C": "branch"}
ORG_NAMES = {"K": "光山县委", "T1": "城关镇党委", "T2": "十里镇党委", "A": "城关村党支部",
             "B": "东关村党支部", "C": "十里村党支部"}
# Sides a device may hold besides reading (DESIGN §3.3); ``writer``: it made the record.
MEMBER_CHILDREN = {"flow", "contact", "study", "vanguard", "care", "appraisal", "commendation",
                   "probation_review", "transfer"}
HOME_DELETES = {"member", "flow", "probation_review", "transfer"}


def subtree_keys(key: str) -> set[str]:
    out = {key}
    changed = True
    while changed:
        changed = False
        for k, parent in PARENT.items():
            if parent in out and k not in out:
                out.add(k)
                changed = True
    return out


@dataclass
class Row:
    """A record as the server keeps it, read from its table."""

    rec_id: str
    type: str
    fields: dict[str, Any]
    versions: dict[str, int]
    deleted: bool


@dataclass
class World:
    county: County
    org: dict[str, str]  # key → org id
    devices: dict[str, Device]
    made_by: dict[str, str | None] = field(default_factory=dict)  # rec_id → org id (None: admin)
    ids: dict[str, str] = field(default_factory=dict)  # label → rec_id
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- the server's state ------------------------------------------------------------------
    def rows(self) -> dict[str, Row]:
        with db.read(self.county.engine) as conn:
            found = conn.execute(select(db.records)).all()
        return {r.rec_id: Row(r.rec_id, r.type, json.loads(r.data), json.loads(r.versions),
                              bool(r.deleted)) for r in found}

    def snapshot(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
        """Everything a write could change: records (all columns), anchors, the counter."""
        with db.read(self.county.engine) as conn:
            records = sorted(tuple(r) for r in conn.execute(select(db.records)))
            anchors = sorted(tuple(r) for r in conn.execute(select(db.anchors)))
            seq = int(conn.execute(select(db.counter.c.seq)).scalar_one())
        return records, anchors, seq

    def applied_dev_seq(self, key: str) -> int:
        with db.read(self.county.engine) as conn:
            return int(conn.execute(select(db.devices.c.applied_dev_seq).where(
                db.devices.c.device_id == self.devices[key].store.device_id)).scalar_one())

    # -- hand-made signed requests -----------------------------------------------------------
    def post(self, key: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """Send ``ops`` (rec_id, type, set, base?, deleted?) from device ``key``, numbered from
        the server's ``applied_dev_seq`` and signed with the device's key, as a device would."""
        device = self.devices[key]
        first = self.applied_dev_seq(key) + 1
        wire_ops = []
        for i, op in enumerate(ops):
            ms = time.time_ns() // 1_000_000
            wire = {"device_id": device.store.device_id, "dev_seq": first + i,
                    "rec_id": op["rec_id"], "type": op["type"], "set": op["set"],
                    "base": op.get("base", {}), "hlc": f"{ms:012x}{next(self.counter) % 65536:04x}"}
            if op.get("deleted"):
                wire["deleted"] = True
            wire_ops.append(wire)
        body = {"device_id": device.store.device_id, "epoch": device.store.meta.get("epoch"),
                "cursor": int(device.store.meta.get("cursor", 0)), "ops": wire_ops}
        raw = encode_body(body)
        header = sign_request(unb64u(device.store.meta["private_key"]), device.store.device_id,
                              "POST", SYNC_PATH, raw, int(time.time()))
        response = self.county.http.post(SYNC_PATH, content=raw, headers={
            "authorization": header, "content-encoding": "deflate"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["acked"] == first + len(ops) - 1, answer
        return answer


# -- the rules, written out again from DESIGN §3.3 ----------------------------------------------

class Rules:
    """Who sees and who may write what, computed from the server's records and from who made
    each record (kept by the test as it made them)."""

    def __init__(self, world: World, rows: dict[str, Row]) -> None:
        self.world = world
        self.rows = rows
        self.key_of = {org_id: key for key, org_id in world.org.items()}

    def sub(self, key: str) -> set[str]:
        return {self.world.org[k] for k in subtree_keys(key)}

    def made_by(self, rec_id: str) -> str | None:
        assert rec_id in self.world.made_by, f"the test does not know who made {rec_id}"
        return self.world.made_by[rec_id]

    def open_flows(self, member_id: str) -> list[Row]:
        return [r for r in self.rows.values() if r.type == "flow" and not r.deleted
                and r.fields.get("member_id") == member_id
                and r.fields.get("status") != "ended"]

    def home(self, member: Row) -> set[str]:
        """A member's home: its home org, or for a home outside the system, who registered it."""
        home = member.fields.get("home_org_id") or self.made_by(member.rec_id)
        return {home} if home else set()

    def hosts(self, member: Row) -> set[str]:
        return {f.fields["host_org_id"] for f in self.open_flows(member.rec_id)
                if f.fields.get("host_org_id")}

    def anchors(self, rec: Row) -> set[str] | None:
        """The orgs a record belongs to; None: everyone sees it (organizations)."""
        t, f = rec.type, rec.fields
        if t == "org":
            return None
        if t == "member":
            return self.home(rec) | self.hosts(rec)
        if t in MEMBER_CHILDREN or t == "conflict":
            parent = self.rows.get(f["subject_id"] if t == "conflict" else f["member_id"])
            return (self.anchors(parent) or set()) if parent is not None else set()
        if t == "meeting":
            out = {f["org_id"]}
            for member_id in f.get("attendee_ids") or []:
                out |= self.home(self.rows[member_id])
            return out
        if t in ("application", "fund"):
            return {f["org_id"]}
        if t == "task":
            return {f["issued_by_org_id"], *f["target_org_ids"]}
        if t == "task_reply":
            return {f["org_id"], self.rows[f["task_id"]].fields["issued_by_org_id"]}
        raise AssertionError(f"no rule for {t}")

    def sees(self, key: str, rec: Row) -> bool:
        anchors = self.anchors(rec)
        return anchors is None or bool(anchors & self.sub(key))

    def member_of(self, rec: Row) -> Row | None:
        if rec.type == "member":
            return rec
        if rec.type in MEMBER_CHILDREN:
            return self.rows.get(rec.fields.get("member_id", ""))
        return None

    def is_home(self, key: str, rec: Row) -> bool:
        member = self.member_of(rec)
        return member is not None and bool(self.home(member) & self.sub(key))

    def is_host(self, key: str, rec: Row) -> bool:
        member = self.member_of(rec)
        if member is not None and self.hosts(member) & self.sub(key):
            return True
        return (rec.type == "flow" and rec.fields.get("status") != "ended"
                and rec.fields.get("host_org_id") in self.sub(key))

    def is_writer(self, key: str, rec: Row, new: bool) -> bool:
        if new:
            return True
        owning = {"meeting": "org_id", "application": "org_id", "fund": "org_id",
                  "task": "issued_by_org_id", "task_reply": "org_id"}.get(rec.type)
        if owning and rec.fields.get(owning) in self.sub(key):
            return True
        return rec.type != "conflict" and self.made_by(rec.rec_id) in self.sub(key)

    def expected(self, key: str, op: dict[str, Any]) -> str | None:
        """The reason the server must give for refusing ``op`` from device ``key``, or None
        when the device may make it."""
        t, values = op["type"], op["set"]
        sub = self.sub(key)
        before = self.rows.get(op["rec_id"])
        if t == "org":
            return "org_readonly"
        if before is None and t == "conflict":
            return "server_field"
        if before is not None:
            if not self.sees(key, before):
                return "scope"
            rec = Row(before.rec_id, t, {**before.fields, **values}, {}, False)
            home, host = self.is_home(key, before), self.is_host(key, before)
        else:
            rec = Row(op["rec_id"], t, dict(values), {}, False)
            member = self.member_of(rec) if t in MEMBER_CHILDREN else None
            if t in MEMBER_CHILDREN and member is None:
                return "scope"
            home = (bool(self.home(member) & sub) if member is not None
                    else t == "member" and values.get("home_org_id", self.world.org[key]) in sub)
            host = member is not None and (bool(self.hosts(member) & sub)
                                           or values.get("host_org_id") in sub)
            if t == "member" and not home:
                return "scope"
            if t in MEMBER_CHILDREN and not self.sees(key, member):
                return "scope"  # a member it cannot see: whatever the op claims
            if t == "flow" and not home:
                return "ownership"
            if t in MEMBER_CHILDREN and not (home or host):
                return "scope"
            if t in ("meeting", "application", "fund") and values.get("org_id") not in sub:
                return "scope"
            if t == "meeting" and any(not self.sees(key, self.rows[m])
                                      for m in values.get("attendee_ids") or []):
                return "scope"  # attendees: its own members and those hosted there (§2.2)
            if t == "task" and values.get("issued_by_org_id") not in sub:
                return "scope"
            if t == "task_reply":
                task = self.rows.get(values.get("task_id", ""))
                if values.get("org_id") not in sub or task is None or not self.sees(key, task):
                    return "scope"
        writer = self.is_writer(key, before or rec, before is None)
        for name, value in values.items():
            owner = TYPES[t][name].owner
            if owner == "server":
                return "server_field"
            if owner == "home" and not home and not (
                    (t, name, value) == ("flow", "status", "reported") and host):
                return "ownership"
            # The host side owns what it records; the home side may record it only while the
            # host is outside the system (DESIGN §3.3, M-1.3).
            if owner == "host" and not host and not (home and not rec.fields.get("host_org_id")):
                return "ownership"
            if owner == "writer" and not writer:
                return "ownership"
        if op.get("deleted") and not (home if t in HOME_DELETES else writer):
            return "ownership"
        if t in ("meeting", "application", "fund") and rec.fields.get("org_id") not in sub:
            return "scope"
        return None


# -- the county ----------------------------------------------------------------------------------

def build(county: County) -> World:
    org: dict[str, str] = {}
    for key, parent in PARENT.items():  # parents come first in PARENT
        org[key] = county.org(ORG_NAMES[key], KINDS[key], org[parent] if parent else None)
    devices = {key: county.device(f"dev-{key}", org_id) for key, org_id in org.items()}
    w = World(county, org, devices)
    w.made_by.update(dict.fromkeys(org.values()))
    ids = w.ids

    def by(key: str, rec_id: str, label: str) -> str:
        w.made_by[rec_id] = org[key]
        ids[label] = rec_id
        return rec_id

    a, b, c = devices["A"].store, devices["B"].store, devices["C"].store
    by("A", add_member(a, {"name": "张三", "phone": "13800000001"}), "mA1")
    by("A", add_member(a, {"name": "李四", "phone": "13800000002"}), "mA2")
    by("A", add_member(a, {"name": "王五", "phone": "13800000003"}), "mA3")
    by("B", add_member(b, {"name": "赵六", "phone": "13800000004"}), "mB1")
    by("B", add_member(b, {"name": "钱七", "phone": "13800000005"}), "mB2")
    by("C", add_member(c, {"name": "孙八", "phone": "13800000006"}), "mC1")
    # (each member goes up before it is edited: see test_own_unsynced_edits_are_no_conflict)
    for d in devices.values():
        d.sync()
    # an outflow hosted at a branch under the other committee
    by("A", flow_out(a, ids["mA2"], {"left_on": "2026-11-01", "reason": "work",
                                     "host_org_id": org["C"]}), "fA2")
    # an outflow to a host outside the system
    by("A", flow_out(a, ids["mA3"], {"left_on": "2026-11-02", "reason": "study",
                                     "external_host": "深圳市南山区科技园党委"}), "fA3")
    by("A", log_contact(a, ids["mA1"], {"on": "2026-11-10", "channel": "phone",
                                        "reached": True}), "cA1")
    by("A", log_contact(a, ids["mA2"], {"on": "2026-11-11", "channel": "wechat",
                                        "reached": True, "summary": "已到十里村"}), "cA2")
    by("B", log_contact(b, ids["mB1"], {"on": "2026-11-12", "channel": "visit",
                                        "reached": True}), "cB1")
    # a flow to A that has ended: A no longer sees the member
    by("B", flow_out(b, ids["mB2"], {"left_on": "2026-10-01", "reason": "work",
                                     "host_org_id": org["A"]}), "fB2")
    by("B", b.put("meeting", {"org_id": org["B"], "kind": "theme_day", "held_on": "2026-11-15",
                              "topic": "主题党日", "attendee_ids": [ids["mB1"]]}), "gB")
    # an inflow member whose home is outside the system: C registered them
    member_id, flow_id = flow_in(c, {"name": "周九", "phone": "13800000007",
                                     "external_home_org": "安徽省六安市某村党支部"},
                                 {"left_on": "2026-09-01", "reason": "work"})
    by("C", member_id, "mC2")
    by("C", flow_id, "fC2")
    by("C", log_contact(c, ids["mC1"], {"on": "2026-11-13", "channel": "phone",
                                        "reached": True}), "cC1")
    for d in devices.values():
        d.sync()
    end_flow(b, ids["fB2"], "2026-11-10", "returned")
    # the host's own contact with the member hosted there; a meeting attended by that member
    by("C", log_contact(c, ids["mA2"], {"on": "2026-11-14", "channel": "visit",
                                        "reached": True, "by": "十里村书记"}), "cC2")
    by("C", c.put("meeting", {"org_id": org["C"], "kind": "party_lesson",
                              "held_on": "2026-11-16", "topic": "党课",
                              "attendee_ids": [ids["mC1"], ids["mA2"]]}), "gC")
    ids["tK"] = send_task(county.engine, {"issued_by_org_id": org["K"],
                                          "target_org_ids": [org["B"]], "title": "年度排查",
                                          "due_on": "2026-12-31"})
    w.made_by[ids["tK"]] = None
    devices["B"].sync()
    by("B", b.put("task_reply", {"task_id": ids["tK"], "org_id": org["B"], "status": "open"}),
       "rB")
    # a conflict: the county and the home branch change one phone at once
    devices["K"].sync()
    devices["K"].store.put("member", {"phone": "13900000001"}, ids["mA1"])
    a.put("member", {"phone": "13900000002"}, ids["mA1"])
    for d in devices.values():
        d.sync()
    conflicts = [r for r in w.rows().values() if r.type == "conflict"]
    assert [(x.fields["subject_id"], x.fields["field"]) for x in conflicts] == [
        (ids["mA1"], "phone")]
    ids["xA1"] = conflicts[0].rec_id
    w.made_by[ids["xA1"]] = None
    return w


def check_reads(w: World) -> list[str]:
    """Sync every device; what each holds must be exactly its scope, field for field."""
    for d in w.devices.values():
        d.sync()
    rows = w.rows()
    rules = Rules(w, rows)
    problems = []
    for key, device in w.devices.items():
        state = device.store.state
        held = set(state.types)
        visible = {r.rec_id for r in rows.values() if rules.sees(key, r)}
        for rec_id in sorted(held - visible):
            problems.append(f"leak: device {key} holds {rows[rec_id].type} {_label(w, rec_id)}"
                            if rec_id in rows else f"device {key} holds unknown {rec_id}")
        live = {r.rec_id for r in rows.values() if not r.deleted and rules.sees(key, r)}
        for rec_id in sorted(live):
            doc = device.store.get(rec_id)
            row = rows[rec_id]
            if doc is None:
                problems.append(f"missing: device {key} lacks {row.type} {_label(w, rec_id)}")
                continue
            fields = {k: v for k, v in doc.items() if k in TYPES[row.type].by_name}
            if fields != row.fields:
                problems.append(f"stale: device {key} has {row.type} {_label(w, rec_id)} as "
                                f"{fields}, the server {row.fields}")
        for rec_id in sorted(held & visible - live):
            if device.store.get(rec_id) is not None:
                problems.append(f"device {key} shows deleted {_label(w, rec_id)}")
    return problems


def _label(w: World, rec_id: str) -> str:
    names = {v: k for k, v in w.ids.items()} | {v: k for k, v in w.org.items()}
    return names.get(rec_id, rec_id)


# -- the attempts --------------------------------------------------------------------------------

def attempts(w: World, key: str, rows: dict[str, Row]) -> list[dict[str, Any]]:
    """Every write this matrix tries from device ``key``: edits and deletes of every record,
    creates under every organization and for every member."""
    n = next(w.counter)
    own = w.org[key]
    out: list[dict[str, Any]] = []

    def edit(rec: Row, values: dict[str, Any], what: str) -> None:
        out.append({"rec_id": rec.rec_id, "type": rec.type, "set": values,
                    "what": f"{what} of {_label(w, rec.rec_id)}"})

    def create(type_name: str, values: dict[str, Any], what: str) -> None:
        out.append({"rec_id": new_ulid(), "type": type_name, "set": values, "what": what,
                    "new": True})

    for rec in rows.values():
        if rec.deleted:
            continue
        t = rec.type
        if t == "org":
            edit(rec, {"name": f"改名{n}"}, "rename")
            edit(rec, {"parent_id": own} if rec.rec_id != own else {"address": "县城"},
                 "re-parent")
        elif t == "member":
            edit(rec, {"phone": f"139{n:04d}{len(out):04d}"}, "phone")
            edit(rec, {"home_org_id": own}, "take over home")
        elif t == "flow":
            edit(rec, {"certificate_no": f"豫流{n}-{len(out)}"}, "certificate_no")
            edit(rec, {"reported_on": "2026-11-20"}, "reported_on")
            edit(rec, {"status": "reported", "reported_on": "2026-11-21"}, "report in")
            edit(rec, {"status": "ended", "ended_on": "2026-11-25", "end_reason": "returned"},
                 "end")
            edit(rec, {"host_org_id": own}, "take over host")
        elif t == "contact":
            edit(rec, {"summary": f"改写{n}"}, "summary")
        elif t == "meeting":
            edit(rec, {"topic": f"改题{n}"}, "topic")
            for other in w.org.values():
                if other != rec.fields["org_id"]:
                    edit(rec, {"org_id": other}, f"move to {_label(w, other)}")
        elif t == "task":
            edit(rec, {"title": f"改题{n}"}, "title")
            edit(rec, {"target_org_ids": [own]}, "retarget")
        elif t == "task_reply":
            edit(rec, {"note": f"说明{n}"}, "note")
        elif t == "conflict":
            edit(rec, {"values": []}, "values")
            edit(rec, {"status": "resolved"}, "resolve")
        out.append({"rec_id": rec.rec_id, "type": t, "set": {}, "deleted": True,
                    "what": f"delete of {_label(w, rec.rec_id)}"})
    for org_key, org_id in w.org.items():
        create("member", {"name": f"新党员{n}", "home_org_id": org_id, "mobility": "none",
                          "standing": "full"}, f"member at {org_key}")
        create("meeting", {"org_id": org_id, "kind": "group", "held_on": "2026-11-20",
                           "topic": "小组会"}, f"meeting at {org_key}")
        create("task", {"issued_by_org_id": org_id, "target_org_ids": [own], "title": "派活"},
               f"task as {org_key}")
        create("task_reply", {"task_id": w.ids["tK"], "org_id": org_id, "status": "done",
                              "done_on": "2026-11-20"}, f"reply to tK as {org_key}")
    for member in [r for r in rows.values() if r.type == "member"]:
        label = _label(w, member.rec_id)
        create("contact", {"member_id": member.rec_id, "on": "2026-11-20", "channel": "phone",
                           "reached": False}, f"contact for {label}")
        create("flow", {"member_id": member.rec_id, "left_on": "2026-11-20", "reason": "work",
                        "status": "pending_report", "home_org_id": own},
               f"second flow for {label}")
        create("flow", {"member_id": member.rec_id, "left_on": "2026-11-20", "reason": "work",
                        "status": "pending_report", "host_org_id": own},
               f"flow hosting {label} here")
        create("meeting", {"org_id": own, "kind": "group", "held_on": "2026-11-20",
                           "topic": "小组会", "attendee_ids": [member.rec_id]},
               f"meeting here attended by {label}")
    create("org", {"name": "新支部", "kind": "branch", "parent_id": own}, "org")
    create("conflict", {"subject_id": w.ids["mA1"], "subject_type": "member", "field": "phone",
                        "values": [], "status": "open"}, "conflict")
    return out


def try_refused(w: World, key: str, ops: list[dict[str, Any]]) -> list[str]:
    """Send, one request each, the ops device ``key`` may not make; report each one the
    server answers otherwise than the rules say. After an op is wrongly accepted the rules are
    worked out again on the changed state, so one hole is reported once, not with what it opens."""
    problems = []
    rules = Rules(w, w.rows())
    for op in ops:
        want = rules.expected(key, op)
        if want is None:
            continue  # allowed now: an earlier op was wrongly accepted and changed things
        answer = w.post(key, [op])
        got = answer["rejected"][0]["reason"] if answer["rejected"] else None
        if got != want:
            problems.append(f"{'ACCEPTED' if got is None else 'reason'}: device {key}, "
                            f"{op['what']} {op['set']}: {got!r}, expected {want!r}")
        if got is None:
            if op.get("new"):
                w.made_by[op["rec_id"]] = w.org[key]
            rules = Rules(w, w.rows())
    return problems


@pytest.fixture
def world(county: County) -> World:
    return build(county)


def test_every_device_holds_exactly_its_scope(world: World) -> None:
    rules = Rules(world, world.rows())
    ids, org = world.ids, world.org
    # a few cells written out by hand, so the rules above are checked too
    seen_by = {key: {r.rec_id for r in rules.rows.values() if rules.sees(key, r)}
               for key in world.devices}
    assert ids["mA2"] in seen_by["C"] and ids["mA2"] in seen_by["T2"]  # hosted there
    assert ids["cA2"] in seen_by["C"] and ids["cC2"] in seen_by["A"]  # both sides' contacts
    assert ids["mA2"] not in seen_by["B"] and ids["mA1"] not in seen_by["C"]
    assert ids["mB2"] not in seen_by["A"] and ids["fB2"] not in seen_by["A"]  # flow ended
    assert ids["mA3"] not in seen_by["C"] and ids["mC2"] in seen_by["T2"]
    assert ids["gC"] in seen_by["A"] and ids["gC"] not in seen_by["B"]  # attended from A
    assert ids["tK"] in seen_by["T1"] and ids["tK"] not in seen_by["A"]
    assert ids["rB"] in seen_by["K"] and ids["rB"] not in seen_by["T2"]
    assert ids["xA1"] in seen_by["T1"] and ids["xA1"] not in seen_by["B"]
    assert seen_by["K"] == set(rules.rows)
    assert set(org.values()) <= seen_by["C"]
    assert check_reads(world) == []


def test_writes_outside_scope_or_ownership_are_refused(world: World) -> None:
    rows = world.rows()
    rules = Rules(world, rows)
    before = world.snapshot()
    problems: list[str] = []
    sent = 0
    for key in world.devices:
        refused = [op for op in attempts(world, key, rows) if rules.expected(key, op)]
        sent += len(refused)
        problems += try_refused(world, key, refused)
    assert sent > 500
    problems.sort(key=lambda p: not p.startswith("ACCEPTED"))  # holes first, then wrong reasons
    assert problems == [], "\n".join(problems)
    after = world.snapshot()
    assert after[0] == before[0], "the records changed"
    assert after[1:] == before[1:]
    assert check_reads(world) == []


def test_the_writes_each_side_may_make_are_accepted(world: World) -> None:
    """The other half of the matrix: what is allowed goes through, field for field, and then
    reaches exactly the devices whose scope holds it."""
    problems: list[str] = []
    accepted = 0
    for key in world.devices:
        rows = world.rows()
        rules = Rules(world, rows)
        allowed = []
        for op in attempts(world, key, rows):
            if rules.expected(key, op) is not None:
                continue
            moves = set(op["set"]) & {"home_org_id", "host_org_id", "org_id",
                                      "target_org_ids", "attendee_ids"}
            ends = op["type"] == "flow" and op["set"].get("status", "reported") != "reported"
            if op.get("deleted") or (moves and not op.get("new")) or ends or (
                    op["type"] == "flow" and op.get("new")):
                continue  # writes that move records between scopes are tried below
            if op["type"] == "member" and op.get("new") and op["set"]["home_org_id"] != (
                    world.org[key]):
                continue  # one new member per device and org is plenty
            allowed.append(op)
        # one request each, so each edit's base is the server's version just then
        for op in allowed:
            if not op.get("new"):
                op["base"] = dict(world.rows()[op["rec_id"]].versions)
            answer = world.post(key, [op])
            if answer["rejected"] or not answer["applied"] or answer["conflicts"]:
                problems.append(f"device {key}, {op['what']} {op['set']}: refused "
                                f"{[r['reason'] for r in answer['rejected']]} "
                                f"conflicts {answer['conflicts']}")
                continue
            accepted += 1
            if op.get("new"):
                world.made_by[op["rec_id"]] = world.org[key]
            stored = world.rows()[op["rec_id"]]
            for name, value in op["set"].items():
                if stored.fields.get(name) != value:
                    problems.append(f"device {key}, {op['what']}: {name} is "
                                    f"{stored.fields.get(name)!r} on the server")
    assert problems == [], "\n".join(problems)
    ids = world.ids
    assert accepted > 150
    # a few that must be among them (the matrix could otherwise pass by refusing everything)
    rows = world.rows()
    assert rows[ids["fA2"]].fields["status"] == "reported"  # the host reported the member in
    assert rows[ids["fA3"]].fields.get("reported_on") == "2026-11-21"  # home, host outside
    assert rows[ids["mC1"]].fields["phone"] != "13800000006"  # the county edits anywhere
    assert rows[ids["xA1"]].fields["status"] == "resolved"
    # writes that move records between scopes: a deletion by the writer's committee, a new
    # member made by a committee for a branch under it, a transfer of home
    answer = world.post("T1", [
        {"rec_id": ids["gB"], "type": "meeting", "set": {}, "deleted": True},
        {"rec_id": ids["cA1"], "type": "contact", "set": {}, "deleted": True},
    ])
    assert not answer["rejected"], answer["rejected"]
    answer = world.post("A", [{"rec_id": ids["mA1"], "type": "member",
                               "set": {"home_org_id": world.org["C"]},
                               "base": rows[ids["mA1"]].versions}])
    assert not answer["rejected"], answer["rejected"]
    assert check_reads(world) == []
    assert world.devices["A"].store.get(ids["mA1"]) is None  # moved away from A
    assert world.devices["C"].store.get(ids["mA1"]) is not None


# -- the holes the matrix found, one test each -------------------------------------------------

def reasons(answer: dict[str, Any]) -> list[str]:
    return [r["reason"] for r in answer["rejected"]]


def test_a_former_host_cannot_reopen_an_ended_flow(world: World) -> None:
    """fB2 took B's member to A and has ended, so A no longer sees the member. Reporting the
    member in again would reopen the flow and bring the member back into A's scope."""
    ids = world.ids
    answer = world.post("A", [{"rec_id": ids["fB2"], "type": "flow",
                               "set": {"status": "reported", "reported_on": "2026-11-21"}}])
    assert reasons(answer) == ["scope"]
    assert world.rows()[ids["fB2"]].fields["status"] == "ended"
    world.devices["A"].sync()
    assert world.devices["A"].store.get(ids["mB2"]) is None


def test_meeting_attendees_are_members_the_device_sees(world: World) -> None:
    """A meeting lists its organization's members and those hosted there (DESIGN §2.2); naming
    anyone else would push the meeting into that member's home branch."""
    ids, org = world.ids, world.org
    foreign = {"rec_id": new_ulid(), "type": "meeting", "set": {
        "org_id": org["C"], "kind": "group", "held_on": "2026-11-20", "topic": "小组会",
        "attendee_ids": [ids["mC1"], ids["mB1"]]}}
    added = {"rec_id": ids["gC"], "type": "meeting",
             "set": {"attendee_ids": [ids["mC1"], ids["mA2"], ids["mB1"]]}}
    assert reasons(world.post("C", [foreign, added])) == ["scope", "scope"]
    world.devices["B"].sync()
    assert world.devices["B"].store.get(foreign["rec_id"]) is None
    assert world.devices["B"].store.get(ids["gC"]) is None
    own = {"rec_id": new_ulid(), "type": "meeting", "set": {
        "org_id": org["C"], "kind": "group", "held_on": "2026-11-20", "topic": "小组会",
        "attendee_ids": [ids["mC1"], ids["mA2"], ids["mC2"]]}}
    assert reasons(world.post("C", [own])) == []


def test_the_host_records_reporting_in_unless_the_host_is_outside(world: World) -> None:
    """reported_on belongs to the host side (DESIGN §3.3); the home side records it only for a
    host outside the system, which has no device to do it."""
    ids = world.ids
    report = {"reported_on": "2026-11-05", "status": "reported"}
    assert reasons(world.post("A", [{"rec_id": ids["fA2"], "type": "flow",
                                     "set": dict(report)}])) == ["ownership"]
    assert "reported_on" not in world.rows()[ids["fA2"]].fields
    assert reasons(world.post("C", [{"rec_id": ids["fA2"], "type": "flow",
                                     "set": dict(report)}])) == []
    assert reasons(world.post("A", [{"rec_id": ids["fA3"], "type": "flow",
                                     "set": dict(report)}])) == []


def test_what_hangs_off_a_member_follows_it_to_a_new_home(world: World) -> None:
    """A moves its member to C: the member's contacts and its conflict go with it, out of A's
    and T1's devices and into C's and T2's."""
    ids = world.ids
    base = world.rows()[ids["mA1"]].versions
    answer = world.post("A", [{"rec_id": ids["mA1"], "type": "member",
                               "set": {"home_org_id": world.org["C"]}, "base": base}])
    assert reasons(answer) == []
    for key in ("A", "T1", "C", "T2"):
        world.devices[key].sync()
    moved = [ids["mA1"], ids["cA1"], ids["xA1"]]
    for key in ("A", "T1"):
        assert [world.devices[key].store.get(r, include_deleted=True) for r in moved] == [
            None] * 3, key
    for key in ("C", "T2"):
        assert None not in [world.devices[key].store.get(r) for r in moved], key


def test_a_meeting_follows_its_attendees_to_their_new_home(world: World) -> None:
    """gC at C was attended by A's member mA2; when mA2's home moves to B, the attendance counts
    at B (M-3.2) and A no longer sees it."""
    ids = world.ids
    base = world.rows()[ids["mA2"]].versions
    assert reasons(world.post("A", [{"rec_id": ids["mA2"], "type": "member",
                                     "set": {"home_org_id": world.org["B"]},
                                     "base": base}])) == []
    world.devices["A"].sync()
    world.devices["B"].sync()
    assert world.devices["B"].store.get(ids["gC"]) is not None
    assert world.devices["A"].store.get(ids["gC"]) is None


def test_own_unsynced_edits_are_no_conflict(county: County,
                                            county_tree: dict[str, str]) -> None:
    """A member added and sent out before the next sync: the second op's base cannot know the
    version the first one gets, yet the device saw its own value, so nothing conflicts."""
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "张三", "phone": "13800000001"})
    flow_out(a.store, member_id, {"left_on": "2026-11-01", "reason": "work",
                                  "host_org_id": county_tree["b"]})
    a.store.put("member", {"phone": "13800000002"}, member_id)
    assert a.sync().conflicts == 0
    with db.read(county.engine) as conn:
        assert conn.execute(select(db.records.c.rec_id).where(
            db.records.c.type == "conflict")).all() == []
