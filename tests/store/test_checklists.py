"""The responsibility checklists (MANDATE M-2.2 home 7, M-2.3 host 6, M-2.4 member 5): one test
per duty, named by its id, each with records that just meet and just miss. Real stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import TEST_KDF, Store
from store.checklists import DUTIES, NO_RECORD, Check, checklist, checklists
from store.register import end_flow, report_in
from tests.conftest import PASSPHRASE
from tests.store.test_rules import World

D = dt.date
TODAY = D(2026, 6, 15)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store, _ = Store.create(tmp_path / "county", PASSPHRASE, kdf=TEST_KDF)
    with store:
        yield World(store)


def checks(world: World, member_id: str, org: str | None = None,
           today: D = TODAY) -> dict[str, Check]:
    world.store.set_meta(own_org_id=org or world.a)
    try:
        found = checklist(world.store, member_id, today)
    finally:
        world.store.set_meta(own_org_id=None)
    return {c.mandate: c for c in found}


def check(world: World, member_id: str, mandate: str, org: str | None = None,
          today: D = TODAY) -> Check:
    return checks(world, member_id, org, today)[mandate]


def not_done(c: Check, *needles: str) -> None:
    assert not c.done, c
    assert c.reason_zh and c.reason_en, c
    for needle in needles:
        assert needle in c.reason_zh + c.reason_en, (needle, c)


# -- which lists -----------------------------------------------------------------------------

def test_the_lists_follow_where_the_organization_stands(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-01-01", reported_on="2026-01-03")
    assert {c.side for c in checks(world, member_id).values()} == {"home", "member"}
    assert {c.side for c in checks(world, member_id, world.b).values()} == {"host", "member"}
    at_town = checks(world, member_id, world.town)
    assert [c.mandate for c in at_town.values()] == [d[1] for d in DUTIES]  # 7 + 6 + 5
    assert sum(c.side == "home" for c in at_town.values()) == 7
    assert sum(c.side == "host" for c in at_town.values()) == 6
    assert sum(c.side == "member" for c in at_town.values()) == 5
    end_flow(world.store, flow_id, "2026-03-01", "returned")
    assert checks(world, member_id) == {}  # no open flow: no checklist
    assert checks(world, world.member("李四")) == {}
    several = checklists(world.store, [member_id], TODAY)
    assert several == {member_id: []}


# -- M-2.2 the home organization ---------------------------------------------------------------

def test_m2_2a_home_knows_where_the_member_went(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-01-01")
    c = check(world, member_id, "M-2.2a")
    assert c.done and c.evidence_ids == (flow_id,)
    nowhere, _ = world.away("李四", "2026-01-01", host_org_id=None, host_contact=None)
    not_done(check(world, nowhere, "M-2.2a"), "去向")
    somewhere, _ = world.away("王五", "2026-01-01", host_org_id=None, host_contact=None,
                              destination_address="广东省深圳市南山区")
    assert check(world, somewhere, "M-2.2a").done


def test_m2_2b_home_contact_person_and_contact_every_90_days(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-01-01")
    contact = world.contact(member_id, "2026-03-17")  # 90 days before TODAY
    c = check(world, member_id, "M-2.2b")
    assert c.done and c.evidence_ids == (flow_id, contact)
    not_done(check(world, member_id, "M-2.2b", today=D(2026, 6, 16)), "90", "2026-03-17")
    world.store.put("flow", {"home_contact": None}, flow_id)
    not_done(check(world, member_id, "M-2.2b"), "流出地联系人")


def test_m2_2c_probation_converted_on_time(world: World) -> None:
    full, _ = world.away("张三", "2026-01-01")
    c = check(world, full, "M-2.2c")
    assert not c.done and not c.applies and "正式党员" in c.reason_zh
    member_id, _ = world.away("李四", "2026-01-01", member={
        "standing": "probationary", "joined_on": "2025-07-15", "probation_ends_on": "2026-07-15"})
    not_done(check(world, member_id, "M-2.2c"), "2026-07-15", "30 天")
    review = world.store.put("probation_review", {"member_id": member_id, "due_on": "2026-07-15"})
    not_done(check(world, member_id, "M-2.2c"))  # a review without a decision is not one
    world.store.put("probation_review", {"decision": "converted", "meeting_on": "2026-06-10",
                                         "approved_by_org_id": world.town,
                                         "approved_on": "2026-06-12"},
                    review)
    c = check(world, member_id, "M-2.2c")
    assert c.done and c.evidence_ids == (review,)


def test_m2_2d_online_study_within_the_year(world: World) -> None:
    member_id, _ = world.away("张三", "2025-01-01")
    world.store.put("study", {"member_id": member_id, "on": "2026-01-15", "kind": "campaign"})
    online = world.store.put("study", {"member_id": member_id, "on": "2025-06-15",
                                       "kind": "online", "topic": "学习党章"})
    c = check(world, member_id, "M-2.2d")  # 365 days before TODAY
    assert c.done and c.evidence_ids == (online,)
    not_done(check(world, member_id, "M-2.2d", today=D(2026, 6, 16)), "网上学习", "1 other")


def test_m2_2e_home_guides_the_member_to_play_a_role(world: World) -> None:
    member_id, _ = world.away("张三", "2025-01-01")
    not_done(check(world, member_id, "M-2.2e"), "示范岗")
    role = world.store.put("vanguard", {"member_id": member_id, "kind": "volunteer",
                                        "title": "社区志愿服务", "started_on": "2025-03-01",
                                        "ended_on": "2025-06-15"})
    c = check(world, member_id, "M-2.2e")
    assert c.done and c.evidence_ids == (role,)
    not_done(check(world, member_id, "M-2.2e", today=D(2026, 6, 16)))


def test_m2_2f_outstanding_outflow_member_commended(world: World) -> None:
    member_id, _ = world.away("张三", "2025-01-01")
    world.store.put("commendation", {"member_id": member_id, "on": "2024-12-31",
                                     "title": "优秀共产党员"})  # before leaving: not this
    appraisal = world.store.put("appraisal", {"member_id": member_id, "year": 2025,
                                              "by_org_id": world.b, "result": "excellent"})
    c = check(world, member_id, "M-2.2f")
    not_done(c, "表彰", "2025")
    assert c.evidence_ids == (appraisal,)
    honour = world.store.put("commendation", {"member_id": member_id, "on": "2025-01-01",
                                              "title": "优秀流动党员"})
    c = check(world, member_id, "M-2.2f")
    assert c.done and c.evidence_ids == (honour,)


def test_m2_2g_supervision_has_no_record_to_show(world: World) -> None:
    member_id, _ = world.away("张三", "2025-01-01")
    c = check(world, member_id, "M-2.2g")
    assert (c.done, c.reason_zh, c.reason_en, c.evidence_ids) == (False, *NO_RECORD, ())


# -- M-2.3 the host organization ---------------------------------------------------------------

def test_m2_3a_host_knows_who_arrived(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-06-01")
    not_done(check(world, member_id, "M-2.3a", world.b), "报到")
    report_in(world.store, flow_id, "2026-06-03")
    c = check(world, member_id, "M-2.3a", world.b)
    assert c.done and c.evidence_ids == (flow_id,)


def test_m2_3b_host_contact_person_stays_in_touch(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-01-01", reported_on="2026-01-02")
    contact = world.contact(member_id, "2026-03-17")
    c = check(world, member_id, "M-2.3b", world.b)
    assert c.done and c.evidence_ids == (flow_id, contact)
    not_done(check(world, member_id, "M-2.3b", world.b, D(2026, 6, 16)), "90")
    world.store.put("flow", {"host_contact": None}, flow_id)
    not_done(check(world, member_id, "M-2.3b", world.b), "流入地联系人")


def test_m2_3c_inflow_member_takes_part_in_organizational_life(world: World) -> None:
    member_id, _ = world.away("张三", "2025-10-01", reported_on="2025-10-02")
    meeting = world.meeting(world.b, "2025-12-15", [member_id])
    world.meeting(world.a, "2026-05-01", [member_id])  # the home's: not the host's duty
    c = check(world, member_id, "M-2.3c", world.b)  # six months ago to the day
    assert c.done and c.evidence_ids == (meeting,)
    world.meeting(world.b, "2026-02-01", [])
    not_done(check(world, member_id, "M-2.3c", world.b, D(2026, 6, 16)), "1 次", "6 个月")


def test_m2_3d_host_cares_for_the_member(world: World) -> None:
    member_id, _ = world.away("张三", "2025-01-01", reported_on="2025-01-02")
    not_done(check(world, member_id, "M-2.3d", world.b), "关怀帮扶")
    care = world.store.put("care", {"member_id": member_id, "on": "2025-06-15",
                                    "kind": "employment", "by_org_id": world.b})
    c = check(world, member_id, "M-2.3d", world.b)
    assert c.done and c.evidence_ids == (care,)
    not_done(check(world, member_id, "M-2.3d", world.b, D(2026, 6, 16)))


def test_m2_3e_host_holds_democratic_appraisal(world: World) -> None:
    member_id, _ = world.away("张三", "2025-12-31", reported_on="2026-01-02")
    not_done(check(world, member_id, "M-2.3e", world.b), "2025")
    appraisal = world.store.put("appraisal", {"member_id": member_id, "year": 2025,
                                              "by_org_id": world.b, "result": "qualified"})
    c = check(world, member_id, "M-2.3e", world.b)
    assert c.done and c.evidence_ids == (appraisal,)
    arrived, _ = world.away("李四", "2026-01-01", reported_on="2026-01-02")
    c = check(world, arrived, "M-2.3e", world.b)
    assert not c.done and not c.applies and "尚未到期" in c.reason_zh


def test_m2_3f_daily_supervision_has_no_record_to_show(world: World) -> None:
    member_id, _ = world.away("张三", "2025-01-01", reported_on="2025-01-02")
    c = check(world, member_id, "M-2.3f", world.b)
    assert (c.done, c.reason_zh, c.reason_en) == (False, *NO_RECORD)


# -- M-2.4 the member --------------------------------------------------------------------------

def test_m2_4a_member_reported_before_leaving(world: World) -> None:
    today = D.today()
    member_id, flow_id = world.away("张三", today.isoformat())  # registered the day of leaving
    c = check(world, member_id, "M-2.4a", today=today)
    assert c.done and c.evidence_ids == (flow_id,)
    late, _ = world.away("李四", (today - dt.timedelta(days=1)).isoformat())  # registered after
    not_done(check(world, late, "M-2.4a", today=today), "晚于")


def test_m2_4b_member_reported_to_the_host_on_arrival(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-06-01")
    not_done(check(world, member_id, "M-2.4b"), "14 天")
    report_in(world.store, flow_id, "2026-06-10")
    c = check(world, member_id, "M-2.4b")
    assert c.done and c.evidence_ids == (flow_id,)


def test_m2_4c_member_keeps_in_touch_with_home(world: World) -> None:
    member_id, _ = world.away("张三", "2026-01-01", reported_on="2026-01-02")
    contact = world.contact(member_id, "2026-03-17")
    c = check(world, member_id, "M-2.4c")
    assert c.done and c.evidence_ids == (contact,)
    not_done(check(world, member_id, "M-2.4c", today=D(2026, 6, 16)), "90")
    # the host does not hold the home's contacts: it cannot tell
    not_done(check(world, member_id, "M-2.4c", world.b), "不在本组织")


def test_m2_4d_reporting_changes_has_no_record_to_show(world: World) -> None:
    member_id, _ = world.away("张三", "2026-01-01")
    c = check(world, member_id, "M-2.4d")
    assert (c.done, c.reason_zh, c.reason_en) == (False, *NO_RECORD)


def test_m2_4e_member_plays_a_vanguard_role(world: World) -> None:
    member_id, _ = world.away("张三", "2025-01-01")
    not_done(check(world, member_id, "M-2.4e"), "先锋")
    role = world.store.put("vanguard", {"member_id": member_id, "kind": "pledge",
                                        "title": "承诺践诺", "started_on": "2026-01-01"})
    c = check(world, member_id, "M-2.4e")  # ongoing
    assert c.done and c.evidence_ids == (role,)
    assert not check(world, member_id, "M-2.4e", today=D(2025, 12, 31)).done  # not begun yet
