"""The store's indexes (store/indexes.py) are kept up to date by every change: after any
sequence of local ops and sync entries they equal a rebuild from scratch; the open flow, a
member's meetings and the members' list order answer as a scan of the records would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import Store
from store.indexes import Indexes
from store.register import add_member, end_flow, flow_out, open_flow
from store.search import _name_keys
from store.state import MEMBER_RECORDS, State
from tests.conftest import PASSPHRASE, create_store

MEMBERS = [f"01J0000000000000000000M{i:03d}" for i in range(8)]
FLOWS = [f"01J0000000000000000000F{i:03d}" for i in range(8)]
MEETINGS = [f"01J0000000000000000000G{i:03d}" for i in range(4)]
NAMES = ["张三", "李四", "王五", "单田芳", "曾国藩", "欧阳修", "zhang", "吕布", ""]
NUMBERS = [None, "110101199003070011", "110101199003070038"]


def hlc(n: int) -> str:
    return f"{n:012x}0000"


@st.composite
def ops(draw: Any) -> list[dict[str, Any]]:
    """Journal entries touching members, flows and meetings, local or from the server."""
    out = []
    for n in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["member", "flow", "meeting", "delete", "purge", "server"]))
        t = hlc(1000 + n)
        if kind == "member":
            values: dict[str, Any] = {"name": draw(st.sampled_from(NAMES)) or None,
                                      "id_number": draw(st.sampled_from(NUMBERS))}
            out.append(("member", draw(st.sampled_from(MEMBERS)), values, t))
        elif kind == "flow":
            out.append(("flow", draw(st.sampled_from(FLOWS)), {
                "member_id": draw(st.sampled_from(MEMBERS)),
                "status": draw(st.sampled_from(["pending_report", "reported", "ended"])),
                "left_on": f"2026-0{draw(st.integers(1, 9))}-01"}, t))
        elif kind == "meeting":
            out.append(("meeting", draw(st.sampled_from(MEETINGS)), {
                "attendee_ids": draw(st.lists(st.sampled_from(MEMBERS), max_size=3,
                                              unique=True)) or None,
                "absences": [{"member_id": m, "reason": "病假"} for m in draw(
                    st.lists(st.sampled_from(MEMBERS), max_size=2, unique=True))] or None}, t))
        else:
            out.append((kind, draw(st.sampled_from(MEMBERS + FLOWS + MEETINGS)), {}, t))
    return out


def apply(state: State, changes: list[tuple[str, str, dict[str, Any], str]]) -> None:
    seq = 0
    for kind, rec_id, values, t in changes:
        if kind in ("member", "flow", "meeting"):
            if rec_id in state.types and state.types[rec_id] != kind:
                continue
            seq += 1
            state.apply_entry({"k": "local", "ops": [{
                "device_id": "D", "dev_seq": seq, "rec_id": rec_id, "type": kind,
                "set": values, "base": {}, "hlc": t}]})
        elif kind == "delete" and rec_id in state.types:
            seq += 1
            state.apply_entry({"k": "local", "ops": [{
                "device_id": "D", "dev_seq": seq, "rec_id": rec_id, "type": state.types[rec_id],
                "set": {}, "base": {}, "hlc": t, "deleted": True}]})
        elif kind == "purge":
            state.apply_entry({"k": "sync", "acked": seq, "removes": [rec_id]})
        elif kind == "server" and rec_id in state.types:
            doc = state.get(rec_id, include_deleted=True)
            assert doc is not None
            fields = {k: v for k, v in doc.items() if k not in (
                "id", "type", "created_at", "updated_at", "deleted")}
            if doc["type"] == "member":
                fields["name"] = "服务器改名"
            state.apply_entry({"k": "sync", "acked": seq, "changes": [{
                "id": rec_id, "t": doc["type"], "f": fields, "v": 5, "c": doc["created_at"],
                "u": t, **({"d": 1} if doc.get("deleted") else {})}]})


def rebuilt(state: State) -> dict[str, Any]:
    fresh = Indexes()
    fresh.rebuild(state.data, state.search, MEMBER_RECORDS)
    fresh.ensure_order(state.data["member"], state.search)
    return fresh.snapshot()


def scan_open_flow(state: State, member_id: str) -> dict[str, Any] | None:
    flows = [f for f in state.live("flow") if f.get("member_id") == member_id
             and f.get("status") != "ended"]
    return max(flows, key=lambda f: (f["left_on"], f["id"])) if flows else None


def scan_order(state: State) -> list[str]:
    members = list(state.live("member"))
    return [m["id"] for m in sorted(members, key=lambda m: (
        _name_keys(m["name"])[1] if m.get("name") else "", m.get("name") or "", m["id"]))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=ops())
def test_indexes_equal_a_rebuild_after_random_changes(changes: list[Any]) -> None:
    state = State()
    assert state.member_order() == []  # the order is kept from here on, change by change
    apply(state, changes)
    assert state.ix.snapshot() == rebuilt(state)
    for member_id in MEMBERS:
        assert state.open_flow_of(member_id) == scan_open_flow(state, member_id)
        assert {m["id"] for m in state.meetings_of(member_id)} == {
            m["id"] for m in state.live("meeting") if member_id in (m.get("attendee_ids") or [])
            or member_id in [a["member_id"] for a in m.get("absences") or []]}
    assert state.member_order() == scan_order(state)
    # and the same after a round trip through the snapshot form
    again = State.from_bytes(state.to_bytes())
    assert not again.ix.order_ready  # built when first asked for, not at open
    assert again.member_order() == scan_order(state)
    assert again.ix.snapshot() == state.ix.snapshot()


def test_store_indexes_follow_commits_and_reopen(store_path: Path) -> None:
    store, _ = create_store(store_path)
    ids = {name: add_member(store, {"name": name}) for name in ("王五", "张三", "单田芳", "李四")}
    assert [store.get(i)["name"] for i in store.member_order()] == [  # type: ignore[index]
        "李四", "单田芳", "王五", "张三"]  # li, shan (单 as a surname), wang, zhang
    first = flow_out(store, ids["张三"], {"left_on": "2026-03-01", "reason": "work"})
    assert open_flow(store, ids["张三"])["id"] == first  # type: ignore[index]
    end_flow(store, first, "2026-04-01", "returned")
    assert open_flow(store, ids["张三"]) is None
    second = flow_out(store, ids["张三"], {"left_on": "2026-05-01", "reason": "work"})
    meeting = store.put("meeting", {"org_id": store.meta["own_org_id"], "kind": "branch_congress",
                                    "held_on": "2026-05-02", "attendee_ids": [ids["李四"]],
                                    "absences": [{"member_id": ids["王五"], "reason": "病假"}]})
    store.put("member", {"name": "阿凡提"}, ids["王五"])
    store.delete(ids["单田芳"])
    expected_order = ["阿凡提", "李四", "张三"]
    assert [store.get(i)["name"] for i in store.member_order()] == expected_order  # type: ignore[index]
    assert [m["id"] for m in store.meetings_of(ids["王五"])] == [meeting]
    assert store.state.ix.snapshot() == rebuilt(store.state)
    store.close()
    with Store.open(store_path, PASSPHRASE) as again:
        assert again.open_flow_of(ids["张三"])["id"] == second  # type: ignore[index]
        assert [again.get(i)["name"] for i in again.member_order()] == expected_order  # type: ignore[index]
        assert again.state.ix.snapshot() == rebuilt(again.state)
