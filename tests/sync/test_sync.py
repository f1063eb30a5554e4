"""Sync between branch laptops through the county server (DESIGN §3), in process against the
real app and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store import Store, StoreNotFound
from store.errors import Forbidden
from store.ids import new_ulid
from store.register import (
    add_member,
    end_flow,
    flow_out,
    log_contact,
    member_mobility,
    report_in,
    resolve_conflict,
)
from sync.client import Device
from sync.errors import Offline, Refused, Revoked, SyncError
from sync.protocol import SYNC_PATH, encode_body, sign_request, unb64u
from sync.server import db
from sync.server.admin import backup, restore, revoke_device
from tests.conftest import PASSPHRASE
from tests.sync.harness import County, database


def names(store: Store) -> set[str]:
    return {m["name"] for m in store.live("member")}


def test_outflow_reaches_the_host_and_leaves_it_when_it_ends(
        county: County, county_tree: dict[str, str]) -> None:
    """M-1.2, M-2.3: registered once at home, seen at the host, reported in there, closed at
    home, gone from the host."""
    a = county.device("a", county_tree["a"])
    b = county.device("b", county_tree["b"])
    member_id = add_member(a.store, {"name": "张三", "phone": "13800138000"})
    flow_id = flow_out(a.store, member_id, {"left_on": "2026-11-01", "reason": "work",
                                             "host_org_id": county_tree["b"]})
    a.sync()
    assert names(b.store) == set()
    b.sync()
    assert names(b.store) == {"张三"}
    assert b.store.get(flow_id)["status"] == "pending_report"
    report_in(b.store, flow_id, "2026-11-05")
    b.sync()
    a.sync()
    assert a.store.get(flow_id)["reported_on"] == "2026-11-05"
    assert a.store.get(flow_id)["status"] == "reported"
    end_flow(a.store, flow_id, "2026-11-20", "returned")
    a.sync()
    report = b.sync()
    assert report.removed >= 2
    assert names(b.store) == set() and b.store.get(flow_id) is None
    assert member_mobility(a.store, a.store.get(member_id)) == "none"
    # a third branch never saw any of it
    c = county.device("c", county_tree["c"])
    c.sync()
    assert names(c.store) == set()


def test_records_made_before_enrollment_go_up_with_the_first_sync(
        county: County, county_tree: dict[str, str]) -> None:
    store = county.new_store("early")
    local_org = store.meta["own_org_id"]
    member_id = add_member(store, {"name": "李四"})
    log_contact(store, member_id, {"on": "2026-10-01", "channel": "phone", "reached": True})
    device = Device(store, http=county.http, sleep=lambda s: None)
    device.enroll(county.code(county_tree["a"]))
    assert store.get(member_id)["home_org_id"] == county_tree["a"]  # re-homed
    assert store.get(local_org) is None
    assert [op["dev_seq"] for op in store.state.outbox] == [1, 2]
    assert device.sync().sent == 2
    other = county.device("a2", county_tree["a"])
    other.sync()
    assert names(other.store) == {"李四"}
    assert len(list(other.store.live("contact"))) == 1


def test_concurrent_edits_are_both_kept_and_either_side_resolves(
        county: County, county_tree: dict[str, str]) -> None:
    one = county.device("one", county_tree["a"])
    two = county.device("two", county_tree["a"])
    member_id = add_member(one.store, {"name": "王五", "phone": "13800000001"})
    one.sync()
    two.sync()
    one.store.put("member", {"phone": "13800000002"}, member_id)
    two.store.put("member", {"phone": "13800000003"}, member_id)
    one.sync()
    report = two.sync()
    assert report.conflicts == 1
    one.sync()
    for d in (one, two):
        conflicts = [c for c in d.store.live("conflict") if c["status"] == "open"]
        assert len(conflicts) == 1
        assert sorted(v["value"] for v in conflicts[0]["values"]) == ["13800000002",
                                                                    "13800000003"]
        # the later edit is shown until someone decides
        assert d.store.get(member_id)["phone"] == "13800000003"
    conflict_id = conflicts[0]["id"]
    resolve_conflict(one.store, conflict_id, "13800000002")
    one.sync()
    two.sync()
    for d in (one, two):
        assert d.store.get(member_id)["phone"] == "13800000002"
        assert d.store.get(conflict_id)["status"] == "resolved"
    # a later ordinary edit is no conflict
    two.store.put("member", {"phone": "13800000009"}, member_id)
    two.sync()
    one.sync()
    assert one.store.get(member_id)["phone"] == "13800000009"
    assert [c["status"] for c in one.store.live("conflict")] == ["resolved"]


def hand_made(device: Device, rec_id: str, type_name: str, values: dict) -> None:
    """What a modified client commits: an op the store's own checks would have refused."""
    store = device.store
    store.commit({"k": "local", "ops": [{
        "device_id": store.device_id, "dev_seq": store.meta["dev_seq"] + 1,
        "rec_id": rec_id, "type": type_name, "set": values, "base": {},
        "hlc": "%016x" % (time.time_ns() // 1_000_000 << 16)}]})


def test_writes_outside_scope_or_ownership_are_refused_and_reported(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    b = county.device("b", county_tree["b"])
    c = county.device("c", county_tree["c"])
    member_id = add_member(a.store, {"name": "赵六", "phone": "13800000001"})
    flow_out(a.store, member_id, {"left_on": "2026-11-01", "reason": "work",
                                  "host_org_id": county_tree["b"]})
    a.sync()
    b.sync()
    # the host may not change the member's core fields (the home side owns them): refused as
    # it is typed, nothing written
    seq = b.store.meta["dev_seq"]
    with pytest.raises(Forbidden) as typed:
        b.store.put("member", {"phone": "13900000000"}, member_id)
    assert "手机号" in typed.value.zh and typed.value.field == "phone"
    assert b.store.meta["dev_seq"] == seq and b.store.get(member_id)["phone"] == "13800000001"
    # a modified client sends it anyway: the server refuses it with the same message
    hand_made(b, member_id, "member", {"phone": "13900000000"})
    report = b.sync()
    assert [(r["reason"], r["field"]) for r in report.rejected] == [("ownership", "phone")]
    assert (report.rejected[0]["zh"], report.rejected[0]["en"]) == (typed.value.zh,
                                                                    typed.value.en)
    assert report.rejected[0]["title"] == "赵六"  # named as people know the member
    assert b.store.get(member_id)["phone"] == "13800000001"  # put back as the server has it
    assert b.store.meta["rejected"][0]["set"] == {"phone": "13900000000"}  # kept to show
    # a branch elsewhere cannot write into a record it cannot see (a hand-made op)
    hand_made(c, member_id, "member", {"notes": "越权"})
    assert c.store.get(member_id) is not None
    report = c.sync()
    assert [r["reason"] for r in report.rejected] == ["scope"]
    assert c.store.get(member_id) is None  # the local copy is dropped, the op kept in the list
    a.sync()
    assert "notes" not in a.store.get(member_id)


def signed_post(county: County, device: Device, body: dict, created: int | None = None,
                header: str | None = None) -> tuple[int, dict]:
    raw = encode_body(body)
    header = header or sign_request(unb64u(device.store.meta["private_key"]),
                                    device.store.device_id, "POST", SYNC_PATH, raw,
                                    created if created is not None else int(time.time()))
    response = county.http.post(SYNC_PATH, content=raw, headers={
        "authorization": header, "content-encoding": "deflate"})
    return response.status_code, response.json()


def test_replayed_forged_and_stale_requests_are_refused(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    body = {"device_id": a.store.device_id, "cursor": 0, "ops": []}
    raw = encode_body(body)
    header = sign_request(unb64u(a.store.meta["private_key"]), a.store.device_id, "POST",
                          SYNC_PATH, raw, int(time.time()))
    assert signed_post(county, a, body, header=header)[0] == 200
    status, problem = signed_post(county, a, body, header=header)
    assert (status, problem["error"]) == (401, "replay")
    # the body changed under the signature
    status, problem = county.http.post(SYNC_PATH, content=encode_body({**body, "cursor": 5}),
                                       headers={"authorization": header,
                                                "content-encoding": "deflate"}).status_code, {}
    assert status == 401
    # signed by another key
    forged = sign_request(unb64u(county.device("b", county_tree["b"]).store.meta["private_key"]),
                          a.store.device_id, "POST", SYNC_PATH, raw, int(time.time()))
    status, problem = signed_post(county, a, body, header=forged)
    assert (status, problem["error"]) == (401, "bad_signature")
    status, problem = signed_post(county, a, body, created=int(time.time()) - 3600)
    assert (status, problem["error"]) == (401, "stale") and "server_time" in problem
    status, problem = county.http.post(SYNC_PATH, content=raw).status_code, {}
    assert status == 401  # unsigned
    # a laptop whose clock is an hour behind still syncs: it learns the server's time
    a.store.set_meta(clock_offset=-3600)
    add_member(a.store, {"name": "钟表"})
    assert a.sync().sent == 1
    assert abs(a.store.meta["clock_offset"]) < 60


def test_enrollment_codes_are_one_time_and_expire(county: County,
                                                  county_tree: dict[str, str]) -> None:
    code = county.code(county_tree["a"])
    first = Device(county.new_store("first"), http=county.http, sleep=lambda s: None)
    first.enroll(code)
    second = Device(county.new_store("second"), http=county.http, sleep=lambda s: None)
    with pytest.raises(Refused) as used:
        second.enroll(code)
    assert used.value.code == "used_code" and "new one" in used.value.en
    expired = county.code(county_tree["a"], hours=1e-6)
    time.sleep(0.01)
    with pytest.raises(Refused) as late:
        second.enroll(expired)
    assert late.value.code == "expired_code" and "expired" in late.value.en
    for garbage in ("ld2.garbage", "ld1." + code[4:], "AAAA-BBBB-CCCC-DDDD-EEEE"):
        with pytest.raises(SyncError):  # garbled, or of before codes carried the server key
            second.enroll(garbage)
    from sync.protocol import make_code, parse_code

    unknown_code = make_code("AAAA-BBBB-CCCC-DDDD-EEEE", "http://county.test",
                             parse_code(code).server_key, None)
    with pytest.raises(Refused) as unknown:
        second.enroll(unknown_code)
    assert unknown.value.code == "unknown_code"
    # the same enrollment sent again (its answer lost on the way) succeeds again
    retry = Device(county.new_store("retry"), http=county.http, sleep=lambda s: None)
    code = county.code(county_tree["b"])
    retry.store.set_meta(enroll_pending=None)
    answer = retry.enroll(code)
    retry.store.set_meta(server_url=None)  # as if the answer had never arrived
    retry.store.set_meta(enroll_pending={"token": code_token(code),
                                         "private_key": retry.store.meta["private_key"],
                                         "public_key": retry.store.meta["public_key"]})
    assert retry.enroll(code)["device_id"] == answer["device_id"]


def code_token(code: str) -> str:
    from sync.protocol import parse_code

    return parse_code(code).token


def test_a_revoked_device_erases_its_keys(county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    add_member(a.store, {"name": "张三"})
    a.sync()
    path = a.store.path
    revoke_device(county.engine, a.store.device_id)
    with pytest.raises(Revoked) as caught:
        a.sync()
    assert "revoked" in caught.value.en and caught.value.exit_code != 0
    a.store.close()
    county.stores.remove(a.store)
    assert not (path / "keyslots").exists()
    with pytest.raises(StoreNotFound):
        Store.open(path, PASSPHRASE)


def test_unreachable_server_is_a_clear_error_and_loses_nothing(
        county: County, county_tree: dict[str, str]) -> None:
    import httpx

    a = county.device("a", county_tree["a"])
    add_member(a.store, {"name": "张三"})
    dead = httpx.Client(base_url="http://127.0.0.1:9", timeout=0.5)
    offline = Device(a.store, http=dead, sleep=lambda s: None, attempts=2)
    with pytest.raises(Offline) as caught:
        offline.sync()
    assert "cannot reach" in caught.value.en and caught.value.exit_code != 0
    assert a.store.state.pending_count() == 1
    assert a.sync().sent == 1


def test_a_server_restored_from_an_older_backup_gets_everything_again(
        county: County, county_tree: dict[str, str], tmp_path: Path) -> None:
    a = county.device("a", county_tree["a"])
    b = county.device("b", county_tree["a"])
    first = add_member(a.store, {"name": "备份前"})
    a.sync()
    b.sync()
    saved = tmp_path / "county.bak"
    backup(county.engine, saved, passphrase="county backup passphrase")
    later = add_member(a.store, {"name": "备份后"})
    a.store.put("member", {"phone": "13800000001"}, first)
    a.sync()
    b.sync()
    kind = "postgresql" if county.engine.dialect.name == "postgresql" else "sqlite"
    with database(kind, tmp_path) as url:
        engine = db.make_engine(url)  # restored before the server starts on it, as admins do:
        restore(engine, saved, passphrase="county backup passphrase")  # the restored server has the identity devices know
        engine.dispose()
        restored = County(url, tmp_path / "restored")
        (tmp_path / "restored").mkdir()
        try:
            for d in (a, b):
                d._http = restored.http
            report = a.sync()
            assert report.reset and report.sent == 2  # resent what the server lost
            b.sync()
            assert names(b.store) == {"备份前", "备份后"}
            assert b.store.get(first)["phone"] == "13800000001"
            fresh = restored.device("fresh", county_tree["a"])
            fresh.sync()
            assert names(fresh.store) == {"备份前", "备份后"}
            assert fresh.store.get(later) is not None
        finally:
            restored.close()


def test_retries_after_a_lost_answer_apply_each_op_once(
        county: County, county_tree: dict[str, str]) -> None:
    import httpx

    class LoseFirstAnswer(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner, self.lost = inner, 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.url.path == SYNC_PATH and self.lost < 2:
                self.lost += 1
                response.read()
                raise httpx.ReadError("connection dropped", request=request)
            return response

    flaky = httpx.Client(base_url="http://county.test",
                         transport=LoseFirstAnswer(county.http._transport))
    a = county.device("a", county_tree["a"])
    a._http = flaky
    waits: list[float] = []
    a.sleep = waits.append
    for i in range(5):
        add_member(a.store, {"name": f"党员{i}"})
    assert a.sync().sent == 5
    assert len(waits) == 1 and waits[0] > 0  # the first drop is retried at once, not the next
    with county.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.ops).where(
            db.ops.c.device_id == a.store.device_id)).scalar() == 5
        members = conn.execute(select(func.count()).select_from(db.records).where(
            db.records.c.type == "member")).scalar()
    assert members == 5
    b = county.device("b", county_tree["a"])
    b.sync()
    assert len(names(b.store)) == 5


def test_a_refusal_whose_answer_was_lost_is_told_again(
        county: County, county_tree: dict[str, str]) -> None:
    """Two laptops of one branch open a flow for the same member; the second is refused, and the
    answer saying so is lost on the link. Asked again, the server tells it again: the laptop
    drops the flow it holds and lists the refusal (found by the sync model's state machine)."""
    import httpx

    class LoseOneAnswer(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner, self.armed = inner, False

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.url.path == SYNC_PATH and self.armed:
                self.armed = False
                response.read()
                raise httpx.ReadError("connection dropped", request=request)
            return response

    link = LoseOneAnswer(county.http._transport)
    a1 = county.device("a1", county_tree["a"])
    a2 = county.device("a2", county_tree["a"], http=httpx.Client(
        base_url="http://county.test", transport=link))
    member_id = add_member(a1.store, {"name": "张三"})
    a1.sync()
    a2.sync()
    flow_out(a1.store, member_id, {"left_on": "2026-10-01", "reason": "work"})
    refused = flow_out(a2.store, member_id, {"left_on": "2026-10-02", "reason": "study"})
    a1.sync()
    link.armed = True
    report = a2.sync()
    assert [(r["reason"], r["field"]) for r in report.rejected] == [("invalid", "left_on")]
    assert a2.store.get(refused) is None and a2.store.state.outbox == []
    assert [r["dev_seq"] for r in a2.store.meta["rejected"]] == [a2.store.meta["dev_seq"]]


def test_a_conflict_that_grows_as_it_is_resolved_reaches_the_resolver_whole(
        county: County, county_tree: dict[str, str]) -> None:
    """a2 resolves a conflict from a stale copy: its resolving edit adds one more value to the
    very conflict it closes. The server wrote that value, not a2: a2 receives the conflict as
    the server has it (found by the sync model's state machine)."""
    a1 = county.device("a1", county_tree["a"])
    a2 = county.device("a2", county_tree["a"])
    whole = county.device("county", county_tree["county"])
    member_id = add_member(a1.store, {"name": "张三", "phone": "13800000001"})
    a1.sync(), a2.sync(), whole.sync()
    a1.store.put("member", {"phone": "13900000001"}, member_id)
    whole.store.put("member", {"phone": "13900000002"}, member_id)
    a1.sync(), whole.sync(), a1.sync(), a2.sync()
    conflict = next(iter(a2.store.live("conflict")))
    a1.store.put("member", {"phone": "13900000003"}, member_id)
    a1.sync()
    resolve_conflict(a2.store, conflict["id"], "13900000001")
    for device in (a2, a1, a2, whole):
        device.sync()
    with db.read(county.engine) as conn:
        row = conn.execute(select(db.records.c.data).where(
            db.records.c.rec_id == conflict["id"])).scalar_one()
    server = json.loads(row)
    assert server["status"] == "resolved" and len(server["values"]) == 4
    for device in (a1, a2, whole):
        mine = device.store.get(conflict["id"])
        assert (mine["status"], mine["values"]) == (server["status"], server["values"])


def test_incremental_sync_is_one_round_trip_and_pages_when_large(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"], max_bytes=8 * 1024)
    b = county.device("b", county_tree["a"], max_bytes=8 * 1024)
    member_id = add_member(a.store, {"name": "张三"})
    assert a.sync().requests == 1
    a.store.put("member", {"phone": "13800138000"}, member_id)
    assert a.sync().requests == 1
    with a.store.batch() as batch:
        for i in range(300):
            batch.put("member", {"name": f"成员{i}", "home_org_id": county_tree["a"],
                                 "notes": "x" * 200})
    assert a.sync().requests > 1  # 64 KB of ops per request
    report = b.sync()
    assert report.requests > 3 and len(names(b.store)) == 301  # pages of 8 KB
    assert b.sync().requests == 1  # nothing left: one round trip


def test_the_op_log_is_an_audit_trail(county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "审计"})
    a.store.put("member", {"phone": "13800138000"}, member_id)
    a.sync()
    with county.engine.connect() as conn:
        rows = conn.execute(select(db.ops).where(db.ops.c.rec_id == member_id)
                            .order_by(db.ops.c.dev_seq)).all()
    assert [(r.device_id, r.org_id, r.outcome) for r in rows] == [
        (a.store.device_id, county_tree["a"], "applied")] * 2
    assert json.loads(rows[1].body)["set"] == {"phone": "13800138000"}
    assert all(r.received_at > 0 and r.seq for r in rows)


def test_unknown_and_new_ids_do_not_confuse_the_server(county: County,
                                                      county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    status, answer = signed_post(county, a, {"device_id": a.store.device_id, "ops": [
        {"dev_seq": 1, "rec_id": new_ulid(), "type": "member", "set": {"name": 5}, "base": {},
         "hlc": "0" * 16}]})
    assert status == 200 and answer["rejected"][0]["reason"] == "invalid"
    assert "name" in answer["rejected"][0]["en"]
    status, answer = signed_post(county, a, {"device_id": a.store.device_id, "ops": [
        {"dev_seq": 2, "rec_id": "not-an-id", "type": "member", "set": {}, "base": {},
         "hlc": "0" * 16}]})
    assert status == 200 and answer["rejected"][0]["reason"] == "malformed"


def test_an_edit_does_not_hide_what_others_changed_in_the_same_record(
        county: County, county_tree: dict[str, str]) -> None:
    """The server does not echo a device's own edit back, but only when the device had seen
    the record as it was: here `two` edits a record `one` changed since `two` last synced."""
    one = county.device("one", county_tree["a"])
    two = county.device("two", county_tree["a"])
    member_id = add_member(one.store, {"name": "王五"})
    one.sync()
    two.sync()
    one.store.put("member", {"phone": "13800000001"}, member_id)
    one.sync()
    two.store.put("member", {"notes": "另一处修改"}, member_id)
    two.sync()
    one.sync()
    for d in (one, two):
        assert d.store.get(member_id)["phone"] == "13800000001"
        assert d.store.get(member_id)["notes"] == "另一处修改"


def test_unsent_edits_survive_changes_that_arrive_first(
        county: County, county_tree: dict[str, str]) -> None:
    """More than 64 KB waits to go up: changes from others arrive with the first round, and the
    edits still waiting are replayed on top of them (not lost, not overwritten)."""
    one = county.device("one", county_tree["a"])
    two = county.device("two", county_tree["a"])
    member_id = add_member(one.store, {"name": "王五"})
    one.sync()
    two.sync()
    with two.store.batch() as batch:
        for i in range(400):
            batch.put("member", {"name": f"成员{i}", "home_org_id": county_tree["a"],
                                 "notes": "x" * 200})
    two.store.put("member", {"notes": "排在后面的修改"}, member_id)
    one.store.put("member", {"phone": "13800000001"}, member_id)
    one.sync()
    report = two.sync()
    assert report.requests > 1
    one.sync()
    for d in (one, two):
        assert d.store.get(member_id)["phone"] == "13800000001"
        assert d.store.get(member_id)["notes"] == "排在后面的修改"


def test_a_device_does_not_conflict_with_itself(county: County,
                                                county_tree: dict[str, str]) -> None:
    """Edits made offline one after another carry the versions seen before the first: the
    server must not mistake the device's own earlier write for someone else's."""
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "张三"})
    for phone in ("13800000001", "13800000002", "13800000003"):
        a.store.put("member", {"phone": phone}, member_id)
    flow_out(a.store, member_id, {"left_on": "2026-11-01", "reason": "work"})
    report = a.sync()
    assert report.conflicts == 0 and report.received == 0
    a.store.put("member", {"phone": "13800000004"}, member_id)
    a.store.put("member", {"phone": "13800000005"}, member_id)
    assert a.sync().conflicts == 0
    other = county.device("other", county_tree["a"])
    assert other.store.get(member_id)["phone"] == "13800000005"


def test_a_device_gets_back_only_what_it_did_not_write(
        county: County, county_tree: dict[str, str]) -> None:
    """Bytes matter on a 2G link: an outflow (a new flow, and its member, whose scope grows to
    the host) sends nothing back to the device that registered it."""
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "张三"})
    a.sync()
    flow_out(a.store, member_id, {"left_on": "2026-11-01", "reason": "work",
                                  "host_org_id": county_tree["b"]})
    report = a.sync()
    assert (report.sent, report.received) == (1, 0)
    b = county.device("b", county_tree["b"])  # the member did reach the host
    assert b.store.get(member_id) is not None


def test_one_device_racing_itself_applies_each_op_once(
        county: County, county_tree: dict[str, str]) -> None:
    """The same ops sent twice at the same moment (a retry overtaking a slow first try): the
    device's row lock puts one after the other, so both are answered and nothing doubles."""
    from concurrent.futures import ThreadPoolExecutor

    from sync.protocol import parse_authorization
    from sync.server.requests import handle_sync

    a = county.device("a", county_tree["a"])
    for i in range(3):
        add_member(a.store, {"name": f"党员{i}"})
    body = {"device_id": a.store.device_id, "cursor": 0, "ops": a.store.state.outbox}
    raw = encode_body(body)

    def send(_: int) -> dict:
        header = sign_request(unb64u(a.store.meta["private_key"]), a.store.device_id, "POST",
                              SYNC_PATH, raw, int(time.time()))
        signed = parse_authorization(header)
        return handle_sync(county.engine, signed, "POST", SYNC_PATH, raw, body)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    assert all(answer["acked"] == 3 for answer in answers)
    with county.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.ops).where(
            db.ops.c.device_id == a.store.device_id)).scalar() == 3
        assert conn.execute(select(func.count()).select_from(db.records).where(
            db.records.c.type == "member")).scalar() == 3
