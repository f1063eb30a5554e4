"""Several devices and the county server under a network that drops requests, drops answers,
duplicates and cuts them, with devices crashing between steps (DESIGN §3.2, §7).

Once everything is quiet:
- every op a device committed is on the server, applied or in an explicit conflict or refusal
  (and a refusal is in the device's list);
- each device equals the server restricted to the device's scope;
- each ``(device, dev_seq)`` was applied once;
- cursors never went back.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select

from store.register import (
    FlowStateError,
    add_member,
    end_flow,
    flow_out,
    log_contact,
    open_flow,
    report_in,
)
from sync.errors import Offline, SyncError
from sync.protocol import SYNC_PATH
from sync.server import db
from sync.server.county import live_records
from tests.sync.harness import County

FAULTS = ["ok", "ok", "drop_request", "drop_answer", "duplicate", "cut_answer"]
DEVICES = ["a1", "a2", "b", "county"]


class FaultyNetwork(httpx.BaseTransport):
    """Delivers requests to the real app, except where the plan says otherwise."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.plan: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.plan.pop(0) if self.plan and request.url.path == SYNC_PATH else "ok"
        if fault == "drop_request":
            raise httpx.ConnectError("no route", request=request)
        if fault == "duplicate":
            first = self.inner.handle_request(request)
            b"".join(first.iter_raw())
            request = httpx.Request(request.method, request.url, headers=request.headers,
                                    content=request.content)
        response = self.inner.handle_request(request)
        body = b"".join(response.iter_raw())  # as it travels: still compressed
        if fault == "drop_answer":
            raise httpx.ReadError("connection reset", request=request)
        if fault == "cut_answer":
            body = body[: len(body) // 2]
        return httpx.Response(response.status_code, headers=response.headers, content=body,
                              request=request)


class SyncMachine(RuleBasedStateMachine):
    @initialize()
    def county_and_devices(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        self.county = County(f"sqlite:///{self.dir / 'county.db'}", self.dir)
        c = self.county
        self.orgs = {"county": c.org("光山县委", "county")}
        self.orgs["town"] = c.org("城关镇党委", "committee", self.orgs["county"])
        self.orgs["a"] = c.org("城关村党支部", "branch", self.orgs["town"])
        self.orgs["b"] = c.org("东关村党支部", "branch", self.orgs["town"])
        self.network = FaultyNetwork(c.http._transport)
        http = httpx.Client(base_url="http://county.test", transport=self.network)
        org_of = {"a1": "a", "a2": "a", "b": "b", "county": "county"}
        self.devices = {name: c.device(name, self.orgs[org_of[name]], http=http, attempts=4)
                        for name in DEVICES}
        self.cursors = {name: d.store.meta.get("cursor", 0) for name, d in self.devices.items()}

    # -- what people do on their laptops -----------------------------------------------------
    def _members(self, name: str) -> list[dict[str, Any]]:
        return sorted(self.devices[name].store.live("member"), key=lambda m: m["id"])

    @rule(name=st.sampled_from(["a1", "a2", "b"]), n=st.integers(0, 99))
    def add_member(self, name: str, n: int) -> None:
        add_member(self.devices[name].store, {"name": f"党员{n}", "phone": f"138{n:08d}"})

    @rule(name=st.sampled_from(DEVICES), pick=st.integers(0, 50), n=st.integers(0, 99),
          field=st.sampled_from(["phone", "notes"]))
    def edit_member(self, name: str, pick: int, n: int, field: str) -> None:
        members = self._members(name)
        if not members:
            return
        member = members[pick % min(3, len(members))]  # a few records, edited from all sides
        value = f"139{n:08d}" if field == "phone" else f"备注{n}"
        self.devices[name].store.put("member", {field: value}, member["id"])

    @rule(name=st.sampled_from(["a1", "a2", "b"]), pick=st.integers(0, 50),
          host=st.sampled_from(["a", "b", None]))
    def register_outflow(self, name: str, pick: int, host: str | None) -> None:
        store = self.devices[name].store
        members = [m for m in self._members(name) if m.get("home_org_id") == store.meta[
            "own_org_id"] and open_flow(store, m["id"]) is None]
        if not members:
            return
        values: dict[str, Any] = {"left_on": "2026-10-01", "reason": "work"}
        if host and self.orgs[host] != store.meta["own_org_id"]:
            values["host_org_id"] = self.orgs[host]
        flow_out(store, members[pick % len(members)]["id"], values)

    @rule(name=st.sampled_from(DEVICES), pick=st.integers(0, 50))
    def report_or_end(self, name: str, pick: int) -> None:
        store = self.devices[name].store
        flows = sorted((f for f in store.live("flow") if f["status"] != "ended"),
                       key=lambda f: f["id"])
        if not flows:
            return
        flow = flows[pick % len(flows)]
        if flow["status"] == "pending_report":
            try:
                report_in(store, flow["id"], "2026-10-05")
            except FlowStateError:
                pass  # the host is in the system: only it records the report
        else:
            end_flow(store, flow["id"], "2026-11-01", "returned")

    @rule(name=st.sampled_from(DEVICES), pick=st.integers(0, 50))
    def contact(self, name: str, pick: int) -> None:
        members = self._members(name)
        if members:
            log_contact(self.devices[name].store, members[pick % len(members)]["id"],
                        {"on": "2026-11-01", "channel": "phone", "reached": True})

    # -- the network and the laptops ---------------------------------------------------------
    @rule(name=st.sampled_from(DEVICES), plan=st.lists(st.sampled_from(FAULTS), max_size=5))
    def sync(self, name: str, plan: list[str]) -> None:
        self.network.plan = list(plan)
        try:
            self.devices[name].sync()
        except Offline:
            pass  # more faults than retries: the next sync carries on
        finally:
            self.network.plan = []
        self._check_cursor(name)

    @rule(name=st.sampled_from(DEVICES))
    def crash_and_restart(self, name: str) -> None:
        self.devices[name] = self.county.reopen(self.devices[name])

    def _check_cursor(self, name: str) -> None:
        cursor = self.devices[name].store.meta.get("cursor", 0)
        assert cursor >= self.cursors[name], "a cursor went back"
        self.cursors[name] = cursor

    @invariant()
    def each_op_applied_once(self) -> None:
        with self.county.engine.connect() as conn:
            rows = conn.execute(select(db.ops.c.device_id, db.ops.c.dev_seq)).all()
        assert len(rows) == len(set(rows))

    # -- once quiet ----------------------------------------------------------------------------
    @precondition(lambda self: True)
    @rule()
    def quiet_and_compare(self) -> None:
        for _ in range(2):  # a second round carries what the first round's changes caused
            for name in DEVICES:
                self.devices[name].sync()
                self._check_cursor(name)
        with self.county.engine.connect() as conn:
            ops = {(r.device_id, r.dev_seq): r.outcome for r in conn.execute(select(db.ops))}
            devices = {r.device_id: r for r in conn.execute(select(db.devices))}
            server = {t: {r.rec_id: r for r in live_records(conn, t)}
                      for t in ("org", "member", "flow", "contact", "conflict")}
            deleted = {r.rec_id for r in conn.execute(select(db.records.c.rec_id).where(
                db.records.c.deleted.is_(True)))}
            closure = conn.execute(select(db.org_closure)).all()
            anchors = conn.execute(select(db.anchors)).all()
        for name, device in self.devices.items():
            store = device.store
            assert store.state.outbox == [], f"{name} has unsent ops"
            refused = {r["dev_seq"] for r in store.meta.get("rejected", [])}
            for op in store.state.ops:
                outcome = ops.get((store.device_id, op["dev_seq"]))
                assert outcome in ("applied", "conflict", "rejected"), (name, op)
                assert (outcome == "rejected") == (op["dev_seq"] in refused), (name, op)
            assert devices[store.device_id].applied_dev_seq == store.meta["dev_seq"]
            org = devices[store.device_id].org_id
            subtree = {r.org_id for r in closure if r.ancestor_id == org}
            visible = {r.rec_id for r in anchors if r.org_id in subtree}
            for type_name, records in server.items():
                expected = {rid: rec.fields for rid, rec in records.items()
                            if type_name == "org" or rid in visible}
                local = {d["id"]: {k: v for k, v in d.items() if k not in (
                    "id", "type", "created_at", "updated_at", "deleted")}
                    for d in store.live(type_name)}
                assert local == expected, (name, type_name)
            assert not {d["id"] for t in server for d in store.live(t)} & deleted

    def teardown(self) -> None:
        try:
            if hasattr(self, "devices"):
                self.quiet_and_compare()  # every run ends quiet, and is checked
        finally:
            self.county.close()
        shutil.rmtree(self.dir, ignore_errors=True)


SyncMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestSyncMachine = SyncMachine.TestCase


def test_the_faulty_network_really_injects_faults(tmp_path: Path) -> None:
    """The machine above can fail: each fault does what it says."""
    county = County(f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
    try:
        org = county.org("城关村党支部", "branch")
        network = FaultyNetwork(county.http._transport)
        http = httpx.Client(base_url="http://county.test", transport=network)
        device = county.device("d", org, http=http, attempts=1)
        add_member(device.store, {"name": "张三"})
        for fault in ("drop_request", "drop_answer", "cut_answer"):
            network.plan = [fault]
            try:
                device.sync()
            except SyncError:
                pass
            else:
                raise AssertionError(f"{fault} went unnoticed")
        network.plan = ["duplicate"]
        device.attempts = 2  # the duplicate's answer is "replay": asked again, applied once
        device.sync()
        with county.engine.connect() as conn:
            assert len(conn.execute(select(db.ops).where(
                db.ops.c.device_id == device.store.device_id)).all()) == 1
    finally:
        county.close()
