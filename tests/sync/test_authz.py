"""The authorization matrix, generated from the schema (DESIGN §3.3, §7: "cross-scope reads and
writes, every pair of orgs: 0 leaks, 0 accepted").

Two counties: K → T1 → A, B and K → T2 → C; K2 → T3 → D. A device at every organization, so
every record meets every relation an organization can have to it: home, host, sibling, parent
committee, county, other county. Data made the way branch workers make it, one record of every
type at least: members at every branch, an outflow hosted under the other committee (with an
earlier flow to a sibling), an outflow to a host outside the system, an inflow whose home is
outside, an ended flow, contacts and every kind of member record from both sides, meetings, an
application, a fund entry, a county task with replies, a sync conflict.

The rules are written out again below from DESIGN §3.3 and the schema's declarations (owners,
fixed fields, scope kinds read as data), independently of ``store/scope.py``. Then:
- reads: every device holds exactly the records (and, for meetings, the attendees) the rules
  give it, field for field as the server has them;
- writes: for every device, every record and **every field of its type** an edit, a delete, and
  creates of every type under every organization and for every member, sent as signed requests
  as a modified client would. Each write the rules forbid must come back refused with the rules'
  reason and change nothing; each write they allow must be applied. The figures are printed.
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
from store.register import add_member, end_flow, flow_in, flow_out, log_contact, report_in
from store.schema import TYPES, Field
from sync.client import Device
from sync.protocol import SYNC_PATH, encode_body, sign_request, unb64u
from sync.server import db
from sync.server.admin import send_task
from tests.conftest import make_id_number
from tests.sync.harness import County

# The counties: K → T1 → A, B; K → T2 → C; K2 → T3 → D.
PARENT: dict[str, str | None] = {"K": None, "T1": "K", "T2": "K", "A": "T1", "B": "T1",
                                 "C": "T2", "K2": None, "T3": "K2", "D": "T3"}
KINDS = {"K": "county", "T1": "committee", "T2": "committee", "A": "branch", "B": "branch",
         "C": "branch", "K2": "county", "T3": "committee", "D": "branch"}
ORG_NAMES = {"K": "光山县委", "T1": "城关镇党委", "T2": "十里镇党委", "A": "城关村党支部",
             "B": "东关村党支部", "C": "十里村党支部", "K2": "商城县委", "T3": "上石桥镇党委",
             "D": "上石桥村党支部"}
MEMBER_RECORDS = [name for name, t in TYPES.items() if t.scope.kind == "member_record"]
CHUNK = 150  # ops per hand-made request


def subtree_keys(key: str) -> set[str]:
    out = {key}
    while True:
        more = {k for k, parent in PARENT.items() if parent in out} - out
        if not more:
            return out
        out |= more


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

    def post(self, key: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """Send ``ops`` (rec_id, type, set, base?, deleted?) from device ``key`` in one request,
        numbered from the server's ``applied_dev_seq`` and signed with the device's key, as a
        modified client would."""
        device = self.devices[key]
        first = self.applied_dev_seq(key) + 1
        wire_ops = []
        for i, op in enumerate(ops):
            ms = time.time_ns() // 1_000_000
            wire = {"device_id": device.store.device_id, "dev_seq": first + i,
                    "rec_id": op["rec_id"], "type": op["type"], "set": op["set"],
                    "base": op.get("base", {}),
                    "hlc": f"{ms:012x}{next(self.counter) % 65536:04x}"}
            if op.get("deleted"):
                wire["deleted"] = True
            wire_ops.append(wire)
        body = {"device_id": device.store.device_id, "epoch": device.store.meta.get("epoch"),
                "cursor": int(device.store.meta.get("cursor", 0)), "ops": wire_ops,
                "head": first + len(ops) - 1}
        raw = encode_body(body)
        header = sign_request(unb64u(device.store.meta["private_key"]), device.store.device_id,
                              "POST", SYNC_PATH, raw, int(time.time()))
        response = self.county.http.post(SYNC_PATH, content=raw, headers={
            "authorization": header, "content-encoding": "deflate"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["acked"] == first + len(ops) - 1, answer
        return answer

    def label(self, rec_id: str) -> str:
        names = {v: k for k, v in self.ids.items()} | {v: k for k, v in self.org.items()}
        return names.get(rec_id, rec_id)


# -- the rules, written out again from DESIGN §3.3 ----------------------------------------------

class Rules:
    """Who holds and who may write what, computed from the server's records, from who made each
    record (kept by the test as it made them) and from the schema's declarations."""

    def __init__(self, world: World, rows: dict[str, Row]) -> None:
        self.world = world
        self.rows = rows
        self.key_of = {org_id: key for key, org_id in world.org.items()}

    def sub(self, key: str) -> set[str]:
        return {self.world.org[k] for k in subtree_keys(key)}

    def made_by(self, rec_id: str) -> str | None:
        assert rec_id in self.world.made_by, f"the test does not know who made {rec_id}"
        return self.world.made_by[rec_id]

    def open_flows(self, member_id: str, replacing: Row | None = None) -> list[Row]:
        flows = [replacing if replacing is not None and r.rec_id == replacing.rec_id else r
                 for r in self.rows.values() if r.type == "flow"]
        if replacing is not None and replacing.rec_id not in self.rows:
            flows.append(replacing)
        return [r for r in flows if not r.deleted and r.fields.get("member_id") == member_id
                and r.fields.get("status") != "ended"]

    def home(self, member: Row) -> set[str]:
        """A member's home: its home org, or for a home outside the system, who registered it."""
        home = member.fields.get("home_org_id") or self.made_by(member.rec_id)
        return {home} if home else set()

    def hosts(self, member: Row, replacing: Row | None = None) -> set[str]:
        return {f.fields["host_org_id"] for f in self.open_flows(member.rec_id, replacing)
                if f.fields.get("host_org_id")}

    def member_of(self, rec: Row) -> Row | None:
        if rec.type == "member":
            return rec
        if rec.type in MEMBER_RECORDS:
            found = self.rows.get(rec.fields.get("member_id", ""))
            return found if found is not None and found.type == "member" else None
        return None

    def related(self, a: str | None, b: str) -> bool:
        if a is None:
            return False
        ka, kb = self.key_of[a], self.key_of[b]
        return ka in subtree_keys(kb) or kb in subtree_keys(ka)

    def anchors(self, rec: Row, made_by: str | None = None) -> set[str] | None:
        """The orgs a record belongs to; None: everyone holds it (organizations)."""
        t, f = rec.type, rec.fields
        writer = made_by if made_by is not None else self.world.made_by.get(rec.rec_id)
        if t == "org":
            return None
        if t == "member":
            return self.home(rec) | self.hosts(rec)
        if t in MEMBER_RECORDS:
            member = self.member_of(rec)
            if member is None:
                return set()
            out = self.home(member)
            view = TYPES[t].scope.host
            if view == "flow" and f.get("status") != "ended" and f.get("host_org_id"):
                out.add(f["host_org_id"])
            elif view == "open":
                out |= self.hosts(member)
            elif view == "written":  # the host holds what its own side recorded
                out |= {h for h in self.hosts(member) if self.related(writer, h)}
            return out
        if t == "meeting":
            out = {f["org_id"]}
            for member_id in self.people(rec):
                out |= self.home(self.rows[member_id])
            return out
        if t in ("application", "fund"):
            return {f["org_id"]}
        if t == "task":
            return {f["issued_by_org_id"], *f["target_org_ids"]}
        if t == "task_reply":
            return {f["org_id"], self.rows[f["task_id"]].fields["issued_by_org_id"]}
        if t == "conflict":
            subject = self.rows.get(f["subject_id"])
            return (self.anchors(subject) or set()) if subject is not None else set()
        raise AssertionError(f"no rule for {t}")

    @staticmethod
    def people(rec: Row) -> list[str]:
        return [*(rec.fields.get("attendee_ids") or []),
                *(a["member_id"] for a in rec.fields.get("absences") or [])]

    def sees(self, key: str, rec: Row, made_by: str | None = None) -> bool:
        anchors = self.anchors(rec, made_by)
        return anchors is None or bool(anchors & self.sub(key))

    def sides(self, key: str, rec: Row, made_by: str | None = None) -> set[str]:
        sub = self.sub(key)
        out = set()
        member = self.member_of(rec)
        if member is not None:
            if self.home(member) & sub:
                out.add("home")
            if self.hosts(member, rec if rec.type == "flow" else None) & sub:
                out.add("host")
        owning = {"meeting": "org_id", "application": "org_id", "fund": "org_id",
                  "task": "issued_by_org_id", "task_reply": "org_id"}.get(rec.type)
        writer = made_by if made_by is not None else self.world.made_by.get(rec.rec_id)
        if (owning and rec.fields.get(owning) in sub) or (writer is not None and writer in sub):
            out.add("writer")
        if self.sees(key, rec, made_by):
            out.add("reader")
        return out

    def owns(self, f: Field, value: Any, held: set[str], rec: Row) -> bool:
        if f.owner == "any":
            return True
        if f.owner == "home":
            return "home" in held or ("host" in held and value in f.host_values)
        if f.owner == "host":
            member = self.member_of(rec)
            in_system = bool(rec.fields.get("host_org_id")) if rec.type == "flow" else (
                member is not None and bool(self.hosts(member)))
            return "host" in held or ("home" in held and not in_system)
        if f.owner == "writer":
            return "writer" in held
        return False

    def expected(self, key: str, op: dict[str, Any]) -> str | None:
        """The reason the server must give for refusing ``op`` from device ``key``, or None
        when the device may make it."""
        t, values = op["type"], op["set"]
        rtype = TYPES[t]
        sub = self.sub(key)
        before = self.rows.get(op["rec_id"])
        if t == "org":
            return "org_readonly"
        if any(rtype[name].owner == "server" for name in values):
            return "server_field"
        own = self.world.org[key]
        if before is not None:
            held = self.sides(key, before)
            if "reader" not in held:
                return "scope"
            if any(rtype[n].fixed and v != before.fields.get(n) for n, v in values.items()):
                return "fixed"
            after = Row(before.rec_id, t, {k: v for k, v in {**before.fields, **values}.items()
                                           if v is not None}, {}, False)
            if not self.sees(key, after) and not any(rtype[n].hands_over for n in values):
                return "reach"  # an edit keeps a record in sight, but to hand it over
            rec = before
        else:
            rec = Row(op["rec_id"], t, dict(values), {}, False)
            held = self.sides(key, rec, made_by=own)
            member = self.member_of(rec)
            if t == "member" and "home" not in held:
                return "scope"
            if t in MEMBER_RECORDS:
                if member is None or not self.sees(key, member):
                    return "scope"
                if t == "flow":
                    if "home" not in held:
                        return "ownership"
                    if values.get("home_org_id") != member.fields.get("home_org_id"):
                        return "scope"
                elif not {"home", "host"} & held:
                    return "scope"
            if t in ("meeting", "application", "fund", "task_reply") and \
                    values.get("org_id") not in sub:
                return "scope"
            if t == "task" and values.get("issued_by_org_id") not in sub:
                return "scope"
            if t == "task_reply":
                task = self.rows.get(values.get("task_id", ""))
                if task is None or not self.sees(key, task):
                    return "scope"
            if "reader" not in held:
                return "scope"
        for name, value in values.items():
            if not self.owns(rtype[name], value, held, rec):
                return "ownership"
        if t == "meeting":
            added = set(Rules.people(Row("", t, values, {}, False))) - (
                set(Rules.people(before)) if before else set())
            if any(not self.sees(key, self.rows[m]) for m in added):
                return "scope"  # attendees: members it holds (its own, those hosted there)
        if op.get("deleted") and rtype.scope.delete not in held:
            return "ownership"
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

    def sync_all() -> None:
        for d in devices.values():
            d.sync()

    s = {key: d.store for key, d in devices.items()}
    for key, label, name in (("A", "mA1", "张三"), ("A", "mA2", "李四"), ("A", "mA3", "王五"),
                             ("B", "mB1", "赵六"), ("B", "mB2", "钱七"), ("C", "mC1", "孙八"),
                             ("D", "mD1", "周九")):
        # probationary: a probation review may be opened for each of them
        by(key, add_member(s[key], {"name": name, "phone": f"1380000{len(ids):04d}",
                                    "standing": "probationary", "joined_on": "2026-03-01",
                                    "probation_ends_on": "2027-03-01"}), label)
    sync_all()
    # mA2: an earlier flow to the sibling B, ended; now hosted under the other committee at C
    by("A", flow_out(s["A"], ids["mA2"], {"left_on": "2025-01-01", "reason": "work",
                                         "host_org_id": org["B"]}), "fA2old")
    end_flow(s["A"], ids["fA2old"], "2025-12-31", "returned")
    by("A", flow_out(s["A"], ids["mA2"], {"left_on": "2026-11-01", "reason": "work",
                                         "host_org_id": org["C"]}), "fA2")
    by("A", flow_out(s["A"], ids["mA3"], {"left_on": "2026-11-02", "reason": "study",
                                         "external_host": "深圳市南山区科技园党委"}), "fA3")
    by("B", flow_out(s["B"], ids["mB2"], {"left_on": "2026-10-01", "reason": "work",
                                         "host_org_id": org["A"]}), "fB2")
    member_id, flow_id = flow_in(s["C"], {"name": "吴十", "phone": "13800000099",
                                          "external_home_org": "安徽省六安市某村党支部"},
                                 {"left_on": "2026-09-01", "reason": "work"})
    by("C", member_id, "mC2")
    by("C", flow_id, "fC2")
    for key, member, label, summary in (("A", "mA1", "cA1", None), ("A", "mA2", "cA2", "家访"),
                                        ("B", "mB1", "cB1", None), ("C", "mC1", "cC1", None)):
        by(key, log_contact(s[key], ids[member], {"on": "2026-11-10", "channel": "phone",
                                                  "reached": True, "summary": summary}), label)
    sync_all()
    report_in(s["C"], ids["fA2"], "2026-11-05")
    end_flow(s["B"], ids["fB2"], "2026-11-10", "returned")
    by("C", log_contact(s["C"], ids["mA2"], {"on": "2026-11-14", "channel": "visit",
                                             "reached": True, "by": "十里村书记"}), "cC2")
    # every kind of record about mA2, from the home (A) and from the host (C)
    extras = {"study": {"on": "2026-11-15", "kind": "online", "topic": "网上学习"},
              "vanguard": {"kind": "volunteer", "title": "志愿服务"},
              "care": {"on": "2026-11-15", "kind": "employment", "description": "就业帮扶"},
              "appraisal": {"year": 2025, "by_org_id": None, "result": "qualified"},
              "commendation": {"on": "2026-11-15", "title": "优秀党员"}}
    for type_name, values in extras.items():
        for key in ("A", "C"):
            fields = {**values, "member_id": ids["mA2"]}
            if type_name == "appraisal":
                fields["by_org_id"] = org[key]
            by(key, s[key].put(type_name, fields), f"{type_name}:{key}")
    by("A", s["A"].put("probation_review", {"member_id": ids["mA2"], "due_on": "2027-03-01"}),
       "prA2")
    by("A", s["A"].put("transfer", {"member_id": ids["mA1"], "from_org_id": org["A"],
                                    "to_org_text": "外县某支部", "status": "draft"}), "trA1")
    by("B", s["B"].put("meeting", {"org_id": org["B"], "kind": "theme_day",
                                   "held_on": "2026-11-15", "topic": "主题党日",
                                   "attendee_ids": [ids["mB1"]]}), "gB")
    sync_all()
    by("C", s["C"].put("meeting", {"org_id": org["C"], "kind": "party_lesson",
                                   "held_on": "2026-11-16", "topic": "党课",
                                   "attendee_ids": [ids["mC1"], ids["mA2"]]}), "gC")
    by("C", s["C"].put("application", {"org_id": org["C"], "person_name": "郑十一",
                                       "received_on": "2026-10-01", "stage": "applicant"}), "apC")
    by("C", s["C"].put("fund", {"org_id": org["C"], "on": "2026-10-01", "kind": "allocation",
                                "purpose": "education", "amount_yuan": "500"}), "fdC")
    ids["tK"] = send_task(county.engine, {"issued_by_org_id": org["K"],
                                          "target_org_ids": [org["B"]], "title": "年度排查",
                                          "due_on": "2026-12-31"})
    w.made_by[ids["tK"]] = None
    devices["B"].sync()
    by("B", s["B"].put("task_reply", {"task_id": ids["tK"], "org_id": org["B"],
                                      "status": "open"}), "rB")
    # a conflict: the county and the home branch change one phone at once
    devices["K"].sync()
    s["K"].put("member", {"phone": "13900000001"}, ids["mA1"])
    s["A"].put("member", {"phone": "13900000002"}, ids["mA1"])
    sync_all()
    conflicts = [r for r in w.rows().values() if r.type == "conflict"]
    assert [(x.fields["subject_id"], x.fields["field"]) for x in conflicts] == [
        (ids["mA1"], "phone")]
    ids["xA1"] = conflicts[0].rec_id
    w.made_by[ids["xA1"]] = None
    built = {w.rows()[i].type for i in ids.values()}
    assert built == set(TYPES) - {"org"}, set(TYPES) - {"org"} - built  # every type is here
    return w


def check_reads(w: World) -> list[str]:
    """Sync every device; what each holds must be exactly its scope, field for field, and a
    meeting's people only as far as the device holds them."""
    for _ in range(2):  # twice: what a sync writes back (an appraisal noted at home, M-4.2)
        for d in w.devices.values():  # reaches the devices that synced before it
            d.sync()
    rows = w.rows()
    rules = Rules(w, rows)
    problems = []
    for key, device in w.devices.items():
        state = device.store.state
        held = set(state.types)
        visible = {r.rec_id for r in rows.values() if rules.sees(key, r)}
        for rec_id in sorted(held - visible):
            problems.append(f"leak: device {key} holds {rows[rec_id].type} {w.label(rec_id)}"
                            if rec_id in rows else f"device {key} holds unknown {rec_id}")
        live = {r.rec_id for r in rows.values() if not r.deleted and rules.sees(key, r)}
        for rec_id in sorted(live):
            doc = device.store.get(rec_id)
            row = rows[rec_id]
            if doc is None:
                problems.append(f"missing: device {key} lacks {row.type} {w.label(rec_id)}")
                continue
            expected = dict(row.fields)
            for name in TYPES[row.type].scope.people:
                shown = [p for p in expected.get(name) or [] if rules.sees(
                    key, rows[p["member_id"] if isinstance(p, dict) else p])]
                expected.pop(name, None)
                if shown:
                    expected[name] = shown
            fields = {k: v for k, v in doc.items() if k in TYPES[row.type].by_name}
            if fields != expected:
                problems.append(f"stale: device {key} has {row.type} {w.label(rec_id)} as "
                                f"{fields}, the rules {expected}")
        for rec_id in sorted(held & visible - live):
            if device.store.get(rec_id) is not None:
                problems.append(f"device {key} shows deleted {w.label(rec_id)}")
    return problems


# -- the attempts, generated from the schema ------------------------------------------------------

def edit_values(w: World, rows: dict[str, Row], key: str, rec: Row, f: Field,
                n: int) -> list[dict[str, Any]]:
    """Changes to try on field ``f`` of ``rec`` from device ``key``: valid values, so that a
    write the rules allow is applied."""
    own = w.org[key]
    others = [o for o in w.org.values() if o != rec.fields.get(f.name)]
    if f.kind in ("text", "longtext"):
        return [{f.name: f"改{n}"}]
    if f.kind == "name":
        return [{f.name: f"王改{n % 10}"}]
    if f.kind == "phone":
        return [{f.name: f"139{n:08d}"}]
    if f.kind == "id_number":
        return [{f.name: make_id_number("411522", "19850315", n % 1000)}]
    if f.kind == "date":
        special = {"left_on": "2026-10-15", "expected_until": "2027-06-30",
                   "probation_ends_on": "2027-06-30", "due_on": "2027-06-30",
                   "receipt_due_on": "2027-06-30", "started_on": "2026-01-01",
                   "joined_on": "2000-01-01", "birth_date": "1980-01-01",
                   "approved_on": "2026-11-21"}
        return [{f.name: special.get(f.name, "2026-11-20")}]
    if f.kind == "month":
        return [{f.name: "2026-10"}]
    if f.kind == "year":
        return [{f.name: 2024}]
    if f.kind in ("int", "hours"):
        return [{f.name: 60}]
    if f.kind == "money":
        return [{f.name: "100.00"}]
    if f.kind == "division_code":
        return [{f.name: "411522"}]
    if f.kind == "bool":
        return [{f.name: not rec.fields.get(f.name)}]
    if f.kind == "json":
        return [{f.name: []}]
    if f.kind == "enum":
        if (rec.type, f.name) == ("flow", "status"):
            return [{"status": "reported", "reported_on": "2026-11-21"},
                    {"status": "ended", "ended_on": "2026-11-25", "end_reason": "returned"}]
        values = [v for v in f.choice_values() if v != rec.fields.get(f.name)]
        if (rec.type, f.name) == ("flow", "end_reason") or f.name == "status":
            return [{f.name: values[0]}] if rec.type != "flow" else []
        return [{f.name: values[0]}]
    if f.kind == "ref" and f.ref == "org":
        out = [{f.name: own}] if own != rec.fields.get(f.name) else []
        return [*out, {f.name: others[0]}]
    if f.kind == "ref":  # a member, a flow, a task: always an anchor, fixed once made
        candidates = [r for r, row in rows.items() if row.type == f.ref
                      and r != rec.fields.get(f.name)]
        return [{f.name: candidates[0]}] if candidates else []
    if f.kind == "refs" and f.ref == "org":
        return [{f.name: [own]}]
    if f.kind == "refs":  # attendees: add each member in turn (some held, some not)
        current = rec.fields.get(f.name) or []
        return [{f.name: [*current, m]} for m in sorted(members(rows)) if m not in current]
    if f.kind == "absences":
        return [{f.name: [{"member_id": m, "reason": "病假"}]} for m in sorted(members(rows))]
    raise AssertionError(f"no edit for {f.kind}")


def members(rows: dict[str, Row]) -> list[str]:
    return [r for r, row in rows.items() if row.type == "member" and not row.deleted]


def create_values(w: World, rows: dict[str, Row], type_name: str, key: str,
                  n: int) -> list[tuple[str, dict]]:
    """New records of ``type_name`` to try from device ``key``: under every organization, for
    every member."""
    org, ids = w.org, w.ids
    out: list[tuple[str, dict]] = []
    if type_name == "org":
        return [("org", {"name": "新支部", "kind": "branch", "parent_id": org[key]})]
    if type_name == "conflict":
        return [("conflict", {"subject_id": ids["mA1"], "subject_type": "member",
                              "field": "phone", "values": [], "status": "open"})]
    if type_name == "member":
        return [(f"member at {o}", {"name": f"新党员{n % 10}", "home_org_id": org[o],
                                    "standing": "full"}) for o in org]
    if type_name in ("meeting", "application", "fund"):
        base = {"meeting": {"kind": "group", "held_on": "2026-11-20", "topic": "小组会"},
                "application": {"person_name": "新申请人", "received_on": "2026-11-20",
                                "stage": "applicant"},
                "fund": {"on": "2026-11-20", "kind": "expense", "purpose": "activities",
                         "amount_yuan": "50.00"}}[type_name]
        out += [(f"{type_name} at {o}", {**base, "org_id": org[o]}) for o in org]
        if type_name == "meeting":
            out += [(f"meeting here attended by {w.label(m)}",
                     {**base, "org_id": org[key], "attendee_ids": [m]}) for m in members(rows)]
        return out
    if type_name == "task":
        return [(f"task as {o}", {"issued_by_org_id": org[o], "target_org_ids": [org[key]],
                                  "title": "派活"}) for o in org]
    if type_name == "task_reply":
        return [(f"reply to tK as {o}", {"task_id": ids["tK"], "org_id": org[o],
                                         "status": "done", "done_on": "2026-11-20"})
                for o in org]
    minimal = {"flow": {"left_on": "2026-11-20", "reason": "work", "status": "pending_report"},
               "contact": {"on": "2026-11-20", "channel": "phone", "reached": False},
               "study": {"on": "2026-11-20", "kind": "self"},
               "vanguard": {"kind": "pledge", "title": "承诺"},
               "care": {"on": "2026-11-20", "kind": "hardship"},
               "appraisal": {"year": 2025, "by_org_id": org[key], "result": "excellent"},
               "commendation": {"on": "2026-11-20", "title": "表彰"},
               "probation_review": {"due_on": "2027-01-01"},
               "transfer": {"from_org_id": org[key], "to_org_text": "外县", "status": "draft"}}
    for member_id in members(rows):
        member = rows[member_id]
        values = {**minimal[type_name], "member_id": member_id}
        if type_name == "transfer":  # a letter leaves from the member's home
            values["from_org_id"] = member.fields.get("home_org_id") or org[key]
        if type_name == "flow":
            values["home_org_id"] = member.fields.get("home_org_id")
            out.append((f"flow for {w.label(member_id)}", dict(values)))
            out.append((f"flow hosting {w.label(member_id)} here",
                        {**values, "host_org_id": org[key]}))
        else:
            out.append((f"{type_name} for {w.label(member_id)}", values))
    return out


def attempts(w: World, key: str, rows: dict[str, Row]) -> list[dict[str, Any]]:
    """Every write this matrix tries from device ``key``: for every record an edit of every
    field of its type and a delete; creates of every type."""
    n = next(w.counter)
    out: list[dict[str, Any]] = []
    for rec in rows.values():
        if rec.deleted:
            continue
        for f in TYPES[rec.type].fields:
            for values in edit_values(w, rows, key, rec, f, n + len(out)):
                out.append({"rec_id": rec.rec_id, "type": rec.type, "set": values,
                            "what": f"{f.name} of {w.label(rec.rec_id)}"})
        out.append({"rec_id": rec.rec_id, "type": rec.type, "set": {}, "deleted": True,
                    "what": f"delete of {w.label(rec.rec_id)}"})
    for type_name in TYPES:
        for what, values in create_values(w, rows, type_name, key, n + len(out)):
            out.append({"rec_id": new_ulid(), "type": type_name, "set": values, "what": what,
                        "new": True})
    return out


def try_refused(w: World, key: str, ops: list[dict[str, Any]], rules: Rules) -> list[str]:
    """Send the ops device ``key`` may not make, many to a request; report each one the server
    answers otherwise than the rules say."""
    problems = []
    for start in range(0, len(ops), CHUNK):
        chunk = ops[start:start + CHUNK]
        answer = w.post(key, chunk)
        first = answer["acked"] - len(chunk) + 1
        got = {r["dev_seq"]: r["reason"] for r in answer["rejected"]}
        for i, op in enumerate(chunk):
            want, reason = rules.expected(key, op), got.get(first + i)
            if reason != want:
                problems.append(f"{'ACCEPTED' if reason is None else 'reason'}: device {key}, "
                                f"{op['what']} {op['set']}: {reason!r}, expected {want!r}")
    return problems


@pytest.fixture
def world(county: County) -> World:
    return build(county)


# -- the matrix ----------------------------------------------------------------------------------

def test_every_device_holds_exactly_its_scope(world: World) -> None:
    rules = Rules(world, world.rows())
    ids, org = world.ids, world.org
    # a few cells written out by hand, so the rules above are checked too
    seen_by = {key: {r.rec_id for r in rules.rows.values() if rules.sees(key, r)}
               for key in world.devices}
    assert ids["mA2"] in seen_by["C"] and ids["mA2"] in seen_by["T2"]  # hosted there
    assert ids["fA2"] in seen_by["C"] and ids["fA2old"] not in seen_by["C"]  # not its history
    assert ids["fA2old"] not in seen_by["B"]  # an ended flow leaves its host
    assert ids["cC2"] in seen_by["A"] and ids["cA2"] not in seen_by["C"]  # home's log stays
    assert ids["study:C"] in seen_by["A"] and ids["study:A"] not in seen_by["C"]
    assert ids["prA2"] in seen_by["C"]  # the host writes its conduct report into it
    assert ids["mA2"] not in seen_by["B"] and ids["mA1"] not in seen_by["C"]
    assert ids["mB2"] not in seen_by["A"] and ids["fB2"] not in seen_by["A"]  # flow ended
    assert ids["mA3"] not in seen_by["C"] and ids["mC2"] in seen_by["T2"]
    assert ids["gC"] in seen_by["A"] and ids["gC"] not in seen_by["B"]  # attended from A
    assert ids["tK"] in seen_by["T1"] and ids["tK"] not in seen_by["A"]
    assert ids["rB"] in seen_by["K"] and ids["rB"] not in seen_by["T2"]
    assert ids["xA1"] in seen_by["T1"] and ids["xA1"] not in seen_by["B"]
    county_records = {r.rec_id for r in rules.rows.values() if r.rec_id != ids["mD1"]}
    assert seen_by["K"] == county_records  # the county: everything in it, nothing of K2's
    assert seen_by["K2"] == {*org.values(), ids["mD1"]}
    assert set(org.values()) <= seen_by["C"]
    assert check_reads(world) == []


def test_writes_the_rules_forbid_are_refused(world: World,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rows = world.rows()
    rules = Rules(world, rows)
    before = world.snapshot()
    problems: list[str] = []
    sent = allowed = 0
    for key in world.devices:
        tried = attempts(world, key, rows)
        refused = [op for op in tried if rules.expected(key, op)]
        allowed += len(tried) - len(refused)
        sent += len(refused)
        problems += try_refused(world, key, refused, rules)
    with capsys.disabled():
        print(f"\nauthorization matrix: {len(TYPES)} types, {len(world.devices)} organizations, "
              f"{sent} forbidden writes sent, {allowed} allowed ones (tried apart), "
              f"{sum(p.startswith('ACCEPTED') for p in problems)} accepted")
    assert sent > 3000
    problems.sort(key=lambda p: not p.startswith("ACCEPTED"))  # holes first, then wrong reasons
    assert problems == [], "\n".join(problems[:60])
    after = world.snapshot()
    assert after[0] == before[0], "the records changed"
    assert after[1:] == before[1:]
    assert check_reads(world) == []


# The matrix writes each field with a plain valid value; the workflows' rules (a probation
# review needs a probationary member and a decision its approver, a letter leaves from the
# member's home, a status moves one step) may refuse such a value as invalid although this side
# may write the field. Those steps are tested in tests/store/test_workflows.py and, as a modified
# client would send them, in tests/sync/test_workflows_sync.py.
WORKFLOW_RULES = ("is not a probationary member", "is required with the decision",
                  "may approve probationary members", "cannot be the organization it leaves",
                  "cannot go from", "the letter has been issued", "required to issue the letter",
                  "at most one year later")


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
            moves = set(op["set"]) & {"home_org_id", "host_org_id", "target_org_ids",
                                      "attendee_ids", "absences", "status", "id_number"}
            if op.get("deleted") or (moves and not op.get("new")) or op["type"] == "flow":
                continue  # writes that move records or end them are tried below
            if op["type"] == "member" and op.get("new") and op["set"]["home_org_id"] != (
                    world.org[key]):
                continue  # one new member per device and org is plenty
            allowed.append(op)
        # many to a request, but one op per record in each, so each edit's base is the
        # server's version of the record when the request is made
        while allowed:
            rows = world.rows()
            batch, later, touched = [], [], set()
            for op in allowed:
                if op["rec_id"] in touched or len(batch) >= CHUNK:
                    later.append(op)
                    continue
                touched.add(op["rec_id"])
                if not op.get("new"):
                    op["base"] = dict(rows[op["rec_id"]].versions)
                batch.append(op)
            answer = world.post(key, batch)
            first = answer["acked"] - len(batch) + 1
            refused = {r["dev_seq"]: r for r in answer["rejected"]}
            if answer["conflicts"]:
                problems.append(f"device {key}: conflicts {answer['conflicts']}")
            stored = world.rows()
            for i, op in enumerate(batch):
                if first + i in refused:
                    r = refused[first + i]
                    if r["reason"] == "invalid" and any(w in r["en"] for w in WORKFLOW_RULES):
                        continue  # allowed to this side, but not a step from this state
                    problems.append(f"device {key}, {op['what']} {op['set']}: refused "
                                    f"{r['reason']} ({r['en']})")
                    continue
                accepted += 1
                if op.get("new"):
                    world.made_by[op["rec_id"]] = world.org[key]
                for name, value in op["set"].items():
                    if stored[op["rec_id"]].fields.get(name) != value:
                        problems.append(f"device {key}, {op['what']}: {name} is "
                                        f"{stored[op['rec_id']].fields.get(name)!r} on the server")
            allowed = later
    assert problems == [], "\n".join(problems)
    ids, org = world.ids, world.org
    assert accepted > 400
    rows = world.rows()
    assert rows[ids["mA1"]].fields["phone"] != "13900000002"  # the county edits anywhere
    assert rows[ids["prA2"]].fields.get("host_conduct_report")  # the host wrote its part
    # the writes that move records or close them: the host reports in, the home ends a flow,
    # hands a member over, a committee deletes what its branch wrote
    answer = world.post("C", [{"rec_id": ids["fC2"], "type": "flow",
                               "set": {"status": "reported", "reported_on": "2026-11-21"},
                               "base": rows[ids["fC2"]].versions}])
    assert not answer["rejected"], answer["rejected"]
    answer = world.post("T1", [
        {"rec_id": ids["gB"], "type": "meeting", "set": {}, "deleted": True},
        {"rec_id": ids["cA1"], "type": "contact", "set": {}, "deleted": True},
    ])
    assert not answer["rejected"], answer["rejected"]
    answer = world.post("A", [{"rec_id": ids["mA1"], "type": "member",
                               "set": {"home_org_id": org["C"]},
                               "base": world.rows()[ids["mA1"]].versions}])
    assert not answer["rejected"], answer["rejected"]
    answer = world.post("A", [{"rec_id": ids["fA2"], "type": "flow",
                               "set": {"status": "ended", "ended_on": "2026-11-25",
                                       "end_reason": "returned"},
                               "base": world.rows()[ids["fA2"]].versions}])
    assert not answer["rejected"], answer["rejected"]
    assert check_reads(world) == []
    assert world.devices["A"].store.get(ids["mA1"]) is None  # handed over to C
    assert world.devices["C"].store.get(ids["mA1"]) is not None
    assert world.devices["C"].store.get(ids["mA2"]) is None  # no longer hosted at C


# -- the attacks a modified client made, one test each (issue: "one register") -----------------

def reasons(answer: dict[str, Any]) -> list[str]:
    return [r["reason"] for r in answer["rejected"]]


def test_a_flow_cannot_be_repointed_at_another_branchs_member(world: World) -> None:
    """A made a flow for its own member hosted by itself, then edited the flow's member_id to
    B's member: before, the server authorized the record as it was and re-scoped it from what
    it became, and A's next pull brought B's member in full."""
    ids, org = world.ids, world.org
    flow = new_ulid()
    assert reasons(world.post("A", [{"rec_id": flow, "type": "flow", "set": {
        "member_id": ids["mA1"], "home_org_id": org["A"], "host_org_id": org["A"],
        "left_on": "2026-11-20", "reason": "work", "status": "pending_report"}}])) == []
    world.made_by[flow] = org["A"]
    answer = world.post("A", [{"rec_id": flow, "type": "flow",
                               "set": {"member_id": ids["mB1"]}}])
    assert [(r["reason"], r["field"]) for r in answer["rejected"]] == [("fixed", "member_id")]
    world.devices["A"].sync()
    assert world.devices["A"].store.get(ids["mB1"]) is None
    assert world.rows()[flow].fields["member_id"] == ids["mA1"]


def test_a_task_cannot_be_relabelled_as_issued_by_the_county(world: World) -> None:
    ids, org = world.ids, world.org
    task = new_ulid()
    assert reasons(world.post("A", [{"rec_id": task, "type": "task", "set": {
        "issued_by_org_id": org["A"], "target_org_ids": [org["A"]], "title": "自己的任务"}}])) == []
    answer = world.post("A", [{"rec_id": task, "type": "task",
                               "set": {"issued_by_org_id": org["K"]}}])
    assert [(r["reason"], r["field"]) for r in answer["rejected"]] == [
        ("fixed", "issued_by_org_id")]
    assert world.rows()[task].fields["issued_by_org_id"] == org["A"]
    assert ids["tK"]  # the county's own task is untouched


def test_a_task_reply_cannot_be_passed_off_as_another_branchs(world: World) -> None:
    ids, org = world.ids, world.org
    task = send_task(world.county.engine, {"issued_by_org_id": org["K"],
                                           "target_org_ids": [org["A"], org["B"]],
                                           "title": "两村共同任务"})
    world.made_by[task] = None
    world.devices["A"].sync()
    reply = new_ulid()
    assert reasons(world.post("A", [{"rec_id": reply, "type": "task_reply", "set": {
        "task_id": task, "org_id": org["A"], "status": "done", "done_on": "2026-11-20"}}])) == []
    answer = world.post("A", [{"rec_id": reply, "type": "task_reply",
                               "set": {"org_id": org["B"]}}])
    assert [(r["reason"], r["field"]) for r in answer["rejected"]] == [("fixed", "org_id")]
    assert world.rows()[reply].fields["org_id"] == org["A"]
    assert ids["rB"] != reply


def test_a_contact_cannot_be_moved_onto_another_branchs_member(world: World) -> None:
    ids = world.ids
    answer = world.post("A", [{"rec_id": ids["cA1"], "type": "contact",
                               "set": {"member_id": ids["mB1"]}}])
    assert [(r["reason"], r["field"]) for r in answer["rejected"]] == [("fixed", "member_id")]
    world.devices["A"].sync()
    assert world.devices["A"].store.get(ids["mB1"]) is None


def test_member_ids_do_not_leak_through_meetings(world: World) -> None:
    """gC at C was attended by C's member and by A's member hosted there: A sees the attendance
    of its own member only; before, the whole list reached it."""
    ids = world.ids
    world.devices["A"].sync()
    meeting = world.devices["A"].store.get(ids["gC"])
    assert meeting["attendee_ids"] == [ids["mA2"]]
    assert ids["mC1"] not in json.dumps(world.devices["A"].store.state.to_bytes().decode())
    assert world.devices["C"].store.get(ids["gC"])["attendee_ids"] == [ids["mC1"], ids["mA2"]]


def test_a_host_cannot_reopen_an_ended_flow(world: World) -> None:
    """fB2 took B's member to A and has ended, so A no longer sees the member. Reporting the
    member in again would reopen the flow and bring the member back into A's scope."""
    ids = world.ids
    answer = world.post("A", [{"rec_id": ids["fB2"], "type": "flow",
                               "set": {"status": "reported", "reported_on": "2026-11-21"}}])
    assert reasons(answer) == ["scope"]
    assert world.rows()[ids["fB2"]].fields["status"] == "ended"
    world.devices["A"].sync()
    assert world.devices["A"].store.get(ids["mB2"]) is None


def test_the_host_records_reporting_in_unless_the_host_is_outside(world: World) -> None:
    ids = world.ids
    report = {"reported_on": "2026-11-06"}
    assert [(r["reason"], r["field"]) for r in world.post("A", [{
        "rec_id": ids["fA2"], "type": "flow", "set": dict(report)}])["rejected"]] == [
        ("ownership", "reported_on")]
    assert reasons(world.post("C", [{"rec_id": ids["fA2"], "type": "flow",
                                     "set": dict(report)}])) == []
    assert reasons(world.post("A", [{"rec_id": ids["fA3"], "type": "flow",
                                     "set": {"status": "reported", **report}}])) == []


def test_what_hangs_off_a_member_follows_it_to_a_new_home(world: World) -> None:
    ids = world.ids
    base = world.rows()[ids["mA1"]].versions
    answer = world.post("A", [{"rec_id": ids["mA1"], "type": "member",
                               "set": {"home_org_id": world.org["C"]}, "base": base}])
    assert reasons(answer) == []
    for key in ("A", "T1", "C", "T2"):
        world.devices[key].sync()
    moved = [ids["mA1"], ids["cA1"], ids["xA1"], ids["trA1"]]
    for key in ("A", "T1"):
        assert [world.devices[key].store.get(r, include_deleted=True) for r in moved] == [
            None] * 4, key
    for key in ("C", "T2"):
        assert None not in [world.devices[key].store.get(r) for r in moved], key
