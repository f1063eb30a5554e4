"""The store's indexes (store/indexes.py) are kept up to date by every change: after any
sequence of local ops and sync entries they equal a rebuild from scratch; the open flow, a
member's meetings and the members' list order answer as a scan of the records would. The
worklist kept between changes (store/rules_index.py) equals one worked out from nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import Store, indexes
from store.indexes import Indexes
from store.register import add_member, end_flow, flow_out, open_flow
from store.rules import Thresholds, fresh_worklist, state_worklist
from store.search import _name_keys
from store.state import MEMBER_RECORDS, State
from tests.conftest import PASSPHRASE, create_store

MEMBERS = [f"01J0000000000000000000M{i:03d}" for i in range(8)]
FLOWS = [f"01J0000000000000000000F{i:03d}" for i in range(8)]
MEETINGS = [f"01J0000000000000000000G{i:03d}" for i in range(4)]
ORGS = [f"01J0000000000000000000R{i:03d}" for i in range(4)]
# records the worklist's indexes follow: type → ids
OTHERS = {"contact": [f"01J0000000000000000000C{i:03d}" for i in range(6)],
          "appraisal": [f"01J0000000000000000000A{i:03d}" for i in range(4)],
          "transfer": [f"01J0000000000000000000T{i:03d}" for i in range(4)],
          "probation_review": [f"01J0000000000000000000P{i:03d}" for i in range(3)]}
DATES = [None, "2024-11-20", "2025-06-01", "2025-12-31", "2026-01-10", "2026-03-01", "2026-05-20",
         "2026-06-14", "2026-07-01"]
TODAY = dt.date(2026, 6, 15)
NAMES = ["张三", "李四", "王五", "单田芳", "曾国藩", "欧阳修", "zhang", "吕布", ""]
NUMBERS = [None, "110101199003070011", "110101199003070038"]


def hlc(n: int) -> str:
    return f"{n:012x}0000"


@st.composite
def ops(draw: Any) -> list[dict[str, Any]]:
    """Journal entries touching members, flows and meetings, local or from the server."""
    out = []
    for n in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["member", "member", "flow", "flow", "meeting", "delete",
                                     "purge", "server", "org", *OTHERS, "contact"]))
        t = hlc(1000 + n)
        date = st.sampled_from(DATES)
        member = st.sampled_from(MEMBERS)
        home = st.sampled_from([ORGS[0], ORGS[0], None, *ORGS])  # ORGS[0] is mostly the own
        if kind == "member":
            values: dict[str, Any] = {"name": draw(st.sampled_from(NAMES)) or None,
                                      "id_number": draw(st.sampled_from(NUMBERS))}
            if draw(st.integers(0, 3)):
                values.update(home_org_id=draw(home), joined_on=draw(date),
                              standing=draw(st.sampled_from(["full", "probationary"])),
                              probation_ends_on=draw(date), lost_contact_since=draw(date),
                              archived=draw(st.sampled_from([None, None, "deceased"])))
            out.append(("member", draw(member), values, t))
        elif kind == "flow":
            out.append(("flow", draw(st.sampled_from(FLOWS)), {
                "member_id": draw(member),
                "status": draw(st.sampled_from(["pending_report", "reported", "ended"])),
                "left_on": draw(date) or f"2026-0{draw(st.integers(1, 9))}-01",
                "home_org_id": draw(home), "host_org_id": draw(st.sampled_from([None, *ORGS])),
                "home_contact": draw(st.sampled_from([None, "李书记"])),
                "reason": draw(st.sampled_from(["work", "study_abroad"]))}, t))
        elif kind == "meeting":
            out.append(("meeting", draw(st.sampled_from(MEETINGS)), {
                "org_id": draw(st.sampled_from(ORGS)), "held_on": draw(date),
                "attendee_ids": draw(st.lists(member, max_size=3, unique=True)) or None,
                "absences": [{"member_id": m, "reason": "病假"} for m in draw(
                    st.lists(member, max_size=2, unique=True))] or None}, t))
        elif kind == "org":
            i = draw(st.integers(0, len(ORGS) - 1))
            out.append(("org", ORGS[i], {"name": draw(st.sampled_from(NAMES)) or None,
                                         "parent_id": draw(st.sampled_from([None, *ORGS[:i]]))},
                        t))
        elif kind in OTHERS:
            values = {"member_id": draw(member)}
            if kind == "contact":
                values.update(on=draw(date), reached=draw(st.booleans()))
            elif kind == "appraisal":
                values.update(year=draw(st.sampled_from([2024, 2025])))
            elif kind == "transfer":
                values.update(status=draw(st.sampled_from(["draft", "issued", "received",
                                                           "cancelled"])),
                              issued_on=draw(date), received_on=draw(date))
            else:
                values.update(due_on=draw(date), decision=draw(st.sampled_from(
                    [None, "converted", "extended"])))
            out.append((kind, draw(st.sampled_from(OTHERS[kind])), values, t))
        else:
            ids = MEMBERS + FLOWS + MEETINGS + ORGS + [i for v in OTHERS.values() for i in v]
            out.append((kind, draw(st.sampled_from(ids)), {}, t))
    return out


def apply(state: State, changes: list[tuple[str, str, dict[str, Any], str]],
          after: Any = None) -> None:
    """Apply the changes in turn (``after`` is called after each)."""
    seq = 0
    for kind, rec_id, values, t in changes:
        if after is not None:
            after()
        if kind in ("member", "flow", "meeting", "org", *OTHERS):
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
            if doc["type"] in ("member", "org"):
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


def scan_rule_indexes(state: State) -> dict[str, Any]:
    """What the worklist's indexes hold, by a scan of the records."""
    live = {t: list(state.live(t)) for t in ("contact", "appraisal", "transfer", "member")}
    reached: dict[str, str] = {}
    for c in live["contact"]:
        if c.get("reached") and c.get("on") and c["on"] > reached.get(c["member_id"], ""):
            reached[c["member_id"]] = c["on"]
    years: dict[str, set[Any]] = {}
    for a in live["appraisal"]:
        years.setdefault(a["member_id"], set()).add(a.get("year"))
    return {"last_reached": reached, "appraised": years,
            "transferring": {t["member_id"] for t in live["transfer"]
                             if t.get("status") in ("draft", "issued", "received")},
            "lost_since": {m["id"]: m["lost_contact_since"] for m in live["member"]
                           if m.get("lost_contact_since")},
            "open_flow": {m: f["id"] for m in MEMBERS if (f := scan_open_flow(state, m))}}


def test_rule_indexes_answer_as_a_scan() -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(changes=ops())
    def check(changes: list[Any]) -> None:
        state = State()
        apply(state, changes)
        ix = state.ix
        assert scan_rule_indexes(state) == {
            "last_reached": ix.last_reached,
            "appraised": {k: set(v) for k, v in ix.appraised.items()},
            "transferring": set(ix.transferring), "lost_since": ix.lost_since,
            "open_flow": ix.open_flow}

    check()


def seeded(own: str) -> State:
    """A state looking from ``own`` that holds the organizations (ORGS[1] under ORGS[0]) and
    the members (at home in either), so that the changes drawn make items."""
    state = State()
    state.apply_entry({"k": "meta", "set": {"own_org_id": own}})
    apply(state, [("org", ORGS[0], {"name": "城关镇党委"}, hlc(1)),
                  ("org", ORGS[1], {"name": "城关村党支部", "parent_id": ORGS[0]}, hlc(2))] + [
        ("member", m, {"name": NAMES[i], "home_org_id": ORGS[i % 2], "joined_on": "2020-01-01"},
         hlc(3)) for i, m in enumerate(MEMBERS)])
    return state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=ops(), own=st.sampled_from([ORGS[0], ORGS[0], *ORGS[1:]]), days=st.sampled_from([0, 0, 0, 200]))
def test_kept_worklist_equals_one_worked_out_from_nothing(changes: list[Any], own: str,
                                                          days: int) -> None:
    """After every change, the worklist kept from before the change (brought up to date
    member by member) is the one worked out from nothing; the day may move between looks."""
    state = seeded(own)
    cfg = Thresholds()
    looks = iter(range(10_000))

    def look() -> None:
        today = TODAY + dt.timedelta(days=days * (next(looks) % 3 == 2))
        assert state_worklist(state, today, cfg) == fresh_worklist(state, today, cfg)

    apply(state, changes, after=look)
    look()
    if len(state.types) > 3:  # the own organization moves: everything is worked out again
        state.apply_entry({"k": "meta", "set": {"own_org_id": ORGS[0]}})
        look()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=ops(), own=st.sampled_from([ORGS[0], ORGS[0], *ORGS[1:]]))
def test_kept_worklist_left_behind_by_the_member_log_starts_again(changes: list[Any],
                                                                  own: str) -> None:
    """A kept worklist whose place in the member log was cut away works everything out again
    (the log keeps one entry here, and the worklist is looked at every eighth change)."""
    state = seeded(own)
    cfg, looks = Thresholds(), iter(range(10_000))

    def look() -> None:
        if next(looks) % 8 == 0:
            assert state_worklist(state, TODAY, cfg) == fresh_worklist(state, TODAY, cfg)

    kept = indexes.LOG_KEPT
    indexes.LOG_KEPT = 1
    try:
        apply(state, changes, after=look)
        assert state_worklist(state, TODAY, cfg) == fresh_worklist(state, TODAY, cfg)
    finally:
        indexes.LOG_KEPT = kept
