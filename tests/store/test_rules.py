"""The worklist (DESIGN §2.3): one test per rule, named by its MANDATE id, each with records that
just meet and just miss the threshold on a fixed day. Real stores, real records, no mocks."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import TEST_KDF, Store
from store.ids import Hlc, new_ulid
from store.register import flow_out, log_contact, report_in
from store.rules import KINDS, Item, Thresholds, add_months, counts, worklist
from tests.conftest import PASSPHRASE

D = dt.date


class World:
    """A county with a town and two of its branches: 城关村 (home, A) and 东关村 (host, B).
    Records are made before any organization is set as the store's own (nothing to judge by,
    so both sides' fields can be written); ``items`` then looks from one organization."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.county = store.put("org", {"name": "光山县委", "kind": "county"})
        self.town = store.put("org", {"name": "城关镇党委", "kind": "committee",
                                      "parent_id": self.county,
                                      "can_approve_probationary": True})
        self.a = store.put("org", {"name": "城关村党支部", "kind": "branch", "parent_id": self.town})
        self.b = store.put("org", {"name": "东关村党支部", "kind": "branch", "parent_id": self.town})

    def member(self, name: str, home: str | None = None, **values: Any) -> str:
        return self.store.put("member", {"name": name, "home_org_id": home or self.a,
                                         "standing": "full", "joined_on": "2010-07-01",
                                         **values})

    def away(self, name: str, left_on: str, member: dict[str, Any] | None = None,
             **values: Any) -> tuple[str, str]:
        """A member of A on an open flow to B (the host and both contact persons known)."""
        member_id = self.member(name, **(member or {}))
        values = {"reason": "work", "host_org_id": self.b, "home_contact": "李书记",
                  "host_contact": "王委员", **values}
        return member_id, flow_out(self.store, member_id, {"left_on": left_on, **values})

    def contact(self, member_id: str, on: str, reached: bool = True) -> str:
        return log_contact(self.store, member_id, {"on": on, "channel": "phone",
                                                   "reached": reached})

    def meeting(self, org: str, held_on: str, attendees: list[str]) -> str:
        return self.store.put("meeting", {"org_id": org, "kind": "theme_day", "held_on": held_on,
                                          "attendee_ids": attendees or None})

    def items(self, today: D, org: str | None = None, kind: str | None = None,
              settings: Thresholds | None = None) -> list[Item]:
        self.store.set_meta(own_org_id=org or self.a)
        try:
            found = worklist(self.store, today, settings)
        finally:
            self.store.set_meta(own_org_id=None)
        return [i for i in found if kind is None or i.kind == kind]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store, _ = Store.create(tmp_path / "county", PASSPHRASE, kdf=TEST_KDF)
    with store:
        yield World(store)


def sync_answer(store: Store, **parts: Any) -> None:
    """Commit a county server's answer as the sync client does (FORMAT.md, journal entries)."""
    entry = {"k": "sync", "acked": store.meta["dev_seq"], "applied": [], "aliases": {},
             "changes": [], "removes": [], "rejected": [], "cursor": 0, "epoch": "e1",
             "synced_at": int(time.time())}
    entry.update(parts)
    store.commit(entry)


# -- M-1.2 report overdue --------------------------------------------------------------------

def test_m1_2_report_overdue_after_30_days(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-05-15")
    assert world.items(D(2026, 6, 14), kind="report_overdue") == []  # 30 days: not yet
    [item] = world.items(D(2026, 6, 15), kind="report_overdue")  # 31 days
    assert (item.rec_id, item.member_id, item.mandate, item.side) == (
        flow_id, member_id, "M-1.2", "home")
    assert item.since == "2026-06-14"
    assert "张三" in item.zh and "31 天" in item.zh and "31 days" in item.en
    # the host sees it too, as the host
    [host] = world.items(D(2026, 6, 15), world.b, kind="report_overdue")
    assert host.side == "host"
    report_in(world.store, flow_id, "2026-06-01")
    assert world.items(D(2026, 6, 15), kind="report_overdue") == []


# -- M-2.2b contact due and lost contact -----------------------------------------------------

def test_m2_2b_contact_due_after_90_days_without_a_reached_contact(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-01-01", reported_on="2026-01-05")
    world.contact(member_id, "2026-03-01")
    world.contact(member_id, "2026-04-01", reached=False)  # tried, not reached: does not count
    assert world.items(D(2026, 5, 29), kind="contact_due") == []  # 89 days
    [item] = world.items(D(2026, 5, 30), kind="contact_due")  # 90 days
    assert (item.rec_id, item.mandate, item.since) == (flow_id, "M-2.2b", "2026-05-30")
    assert "张三" in item.zh and "2026-03-01" in item.zh
    [host] = world.items(D(2026, 5, 30), world.b, kind="contact_due")
    assert (host.side, host.mandate) == ("host", "M-2.3b")
    world.contact(member_id, "2026-05-20")
    assert world.items(D(2026, 5, 30), kind="contact_due") == []


def test_m2_2b_contact_due_after_180_days_for_study_abroad(world: World) -> None:
    member_id, flow_id = world.away("李四", "2025-10-01", reason="study_abroad",
                                    reported_on="2025-10-10")
    world.contact(member_id, "2025-12-01")
    assert world.items(D(2026, 5, 29), kind="contact_due") == []  # 179 days
    [item] = world.items(D(2026, 5, 30), kind="contact_due")  # 180 days
    assert item.rec_id == flow_id
    assert world.items(D(2026, 5, 30), kind="lost_contact") == []


def test_m2_2b_lost_contact_after_6_months_without_a_reached_contact(world: World) -> None:
    member_id, flow_id = world.away("王五", "2025-06-01", reported_on="2025-06-03")
    world.contact(member_id, "2025-12-15")
    assert world.items(D(2026, 6, 14), kind="lost_contact") == []
    assert [i.rec_id for i in world.items(D(2026, 6, 14), kind="contact_due")] == [flow_id]
    [item] = world.items(D(2026, 6, 15), kind="lost_contact")
    assert (item.rec_id, item.since, item.mandate) == (flow_id, "2026-06-15", "M-2.2b")
    assert world.items(D(2026, 6, 15), kind="contact_due") == []  # one or the other
    assert "王五" in item.zh and "失联" in item.zh


def test_m2_2b_lost_contact_recorded_on_the_member(world: World) -> None:
    stayed = world.member("赵六", lost_contact_since="2026-03-01")
    [item] = world.items(D(2026, 6, 15), kind="lost_contact")
    assert (item.rec_id, item.since) == (stayed, "2026-03-01")
    member_id, flow_id = world.away("钱七", "2026-05-01", reported_on="2026-05-02")
    world.contact(member_id, "2026-05-09")  # reached before it was lost: still lost
    world.store.put("member", {"lost_contact_since": "2026-05-10"}, member_id)
    assert {i.rec_id for i in world.items(D(2026, 6, 15), kind="lost_contact")} == {
        stayed, flow_id}
    world.contact(member_id, "2026-06-01")  # reached since (clears the field too)
    assert [i.rec_id for i in world.items(D(2026, 6, 15), kind="lost_contact")] == [stayed]


# -- M-1.1 probably mobile, not registered -----------------------------------------------------

def test_m1_1_probable_mobile_after_6_months_without_attending_the_home_branch(
        world: World) -> None:
    drifted = world.member("孙八")
    present = world.member("周九")
    newcomer = world.member("吴十", joined_on="2026-01-01")
    away, _ = world.away("郑十一", "2025-11-01", reported_on="2025-11-02")
    world.meeting(world.a, "2025-11-15", [drifted, present, newcomer])
    world.meeting(world.a, "2025-12-15", [drifted, present])
    for month in (1, 2, 3, 4, 5, 6):
        world.meeting(world.a, f"2026-{month:02d}-10", [present])
    # last attended 2025-12-15: on 2026-06-15 that is within six months
    assert world.items(D(2026, 6, 15), kind="probable_mobile") == []
    [item] = world.items(D(2026, 6, 16), kind="probable_mobile")
    assert (item.rec_id, item.member_id, item.mandate, item.since) == (
        drifted, drifted, "M-1.1", "2026-06-15")
    assert "孙八" in item.zh and "召开 6 次" in item.zh and "2025-12-15" in item.zh
    assert "2025-12-15" in item.en and "held 6" in item.en
    # not for a member on a flow, nor one who joined within the six months (吴十), nor seen
    # from an organization that is not the member's home
    assert away not in {i.member_id for i in world.items(D(2026, 6, 16), kind="probable_mobile")}
    assert world.items(D(2026, 6, 16), world.b, kind="probable_mobile") == []
    # attending elsewhere counts (M-3.2): a party lesson at the host branch
    world.meeting(world.b, "2026-05-20", [drifted])
    assert world.items(D(2026, 6, 16), kind="probable_mobile") == []


def test_m1_1_needs_meeting_records_covering_the_six_months(world: World) -> None:
    member_id = world.member("孙八")
    world.meeting(world.a, "2026-01-10", [])  # the branch began recording in January
    world.meeting(world.a, "2026-03-10", [])
    assert world.items(D(2026, 7, 9), kind="probable_mobile") == []  # records reach 2026-01-10
    [item] = world.items(D(2026, 7, 10), kind="probable_mobile")
    assert item.rec_id == member_id and "无记录" in item.zh
    assert world.items(D(2026, 9, 11), kind="probable_mobile") == []  # no meeting in six months


# -- M-2.2c probation conversion ---------------------------------------------------------------

def test_m2_2c_probation_conversion_due_within_30_days(world: World) -> None:
    member_id = world.member("冯十二", standing="probationary", joined_on="2025-07-15",
                             probation_ends_on="2026-07-15")
    assert world.items(D(2026, 6, 14), kind="probation_due") == []  # 31 days before
    [item] = world.items(D(2026, 6, 15), kind="probation_due")  # 30 days before
    assert (item.rec_id, item.mandate, item.since, item.side) == (
        member_id, "M-2.2c", "2026-06-15", "home")
    assert "2026-07-15" in item.zh and "30 天" in item.zh
    [late] = world.items(D(2026, 7, 20), kind="probation_due")
    assert "逾期 5 天" in late.zh and "5 days ago" in late.en
    review = world.store.put("probation_review", {"member_id": member_id,
                                                  "due_on": "2026-07-15"})
    assert len(world.items(D(2026, 7, 20), kind="probation_due")) == 1  # no decision yet
    world.store.put("probation_review", {"decision": "converted", "meeting_on": "2026-07-14",
                                         "approved_by_org_id": world.town,
                                         "approved_on": "2026-07-16"}, review)
    assert world.items(D(2026, 7, 20), kind="probation_due") == []


def test_m2_2c_an_extended_probation_is_due_again(world: World) -> None:
    member_id = world.member("冯十二", standing="probationary", joined_on="2024-07-15",
                             probation_ends_on="2025-07-15")
    world.store.put("probation_review", {"member_id": member_id, "due_on": "2025-07-15",
                                         "decision": "extended", "meeting_on": "2025-07-10",
                                         "approved_by_org_id": world.town,
                                         "approved_on": "2025-07-16",
                                         "extended_until": "2026-07-15"})
    world.store.put("member", {"probation_ends_on": "2026-07-15"}, member_id)
    [item] = world.items(D(2026, 6, 20), kind="probation_due")
    assert item.rec_id == member_id


def test_m2_2c_the_host_is_asked_for_its_conduct_report(world: World) -> None:
    member_id, _ = world.away("陈十三", "2026-01-01", reported_on="2026-01-02", member={
        "standing": "probationary", "joined_on": "2025-07-15", "probation_ends_on": "2026-07-15"})
    [item] = world.items(D(2026, 6, 20), world.b, kind="probation_due")
    assert item.member_id == member_id and item.side == "host" and "流入地现实表现" in item.zh
    assert world.items(D(2026, 6, 20), kind="probation_due")[0].side == "home"


# -- M-2.3e appraisal for last year --------------------------------------------------------------

def test_m2_3e_appraisal_missing_for_last_year(world: World) -> None:
    member_id, _ = world.away("褚十四", "2025-12-31", reported_on="2026-01-02")
    late, _ = world.away("卫十五", "2026-01-01", reported_on="2026-01-02")
    [item] = world.items(D(2026, 3, 1), kind="appraisal_missing")  # left 2025-12-31: mobile then
    assert (item.rec_id, item.mandate, item.since) == (member_id, "M-2.3e", "2026-01-01")
    assert "2025 年度" in item.zh
    [host] = world.items(D(2026, 3, 1), world.b, kind="appraisal_missing")
    assert host.member_id == member_id and host.side == "host"
    world.store.put("appraisal", {"member_id": member_id, "year": 2024, "by_org_id": world.b,
                                  "result": "qualified"})
    assert len(world.items(D(2026, 3, 1), kind="appraisal_missing")) == 1  # the wrong year
    world.store.put("appraisal", {"member_id": member_id, "year": 2025, "by_org_id": world.b,
                                  "result": "qualified"})
    assert world.items(D(2026, 3, 1), kind="appraisal_missing") == []
    assert late not in {i.member_id for i in world.items(D(2026, 3, 1))
                        if i.kind == "appraisal_missing"}


# -- M-1.4 transfers -------------------------------------------------------------------------------

def test_m1_4_transfer_receipt_overdue_after_one_month(world: World) -> None:
    member_id = world.member("蒋十六")
    transfer = world.store.put("transfer", {
        "member_id": member_id, "from_org_id": world.a, "to_org_text": "深圳市南山区某党委",
        "letter_no": "GS-2026-017", "issued_on": "2026-05-15", "status": "issued",
        "dues_paid_until": "2026-05", "valid_days": 30, "receipt_due_on": "2026-06-15"})
    assert world.items(D(2026, 6, 15), kind="transfer_receipt_overdue") == []  # due that day
    [item] = world.items(D(2026, 6, 16), kind="transfer_receipt_overdue")
    assert (item.rec_id, item.member_id, item.mandate, item.since) == (
        transfer, member_id, "M-1.4", "2026-06-15")
    assert "GS-2026-017" in item.zh and "1 天" in item.zh
    world.store.put("transfer", {"received_on": "2026-06-10", "status": "received"}, transfer)
    assert world.items(D(2026, 6, 16), kind="transfer_receipt_overdue") == []


def test_m1_4_transfer_suggested_for_flows_older_than_12_months_with_a_known_host(
        world: World) -> None:
    member_id, flow_id = world.away("沈十七", "2025-06-15", reported_on="2025-06-20")
    unknown, _ = world.away("韩十八", "2025-06-15", host_org_id=None, host_contact=None)
    assert world.items(D(2026, 6, 14), kind="transfer_suggested") == []
    [item] = world.items(D(2026, 6, 15), kind="transfer_suggested")
    assert (item.rec_id, item.member_id, item.mandate, item.since) == (
        flow_id, member_id, "M-1.4", "2026-06-15")
    assert "东关村党支部" in item.zh and "12 个月" in item.zh
    assert world.items(D(2026, 6, 15), world.b, kind="transfer_suggested") == []  # home's call
    world.store.put("transfer", {"member_id": member_id, "from_org_id": world.a,
                                 "to_org_id": world.b, "status": "draft"})
    assert world.items(D(2026, 6, 15), kind="transfer_suggested") == []
    assert unknown not in {i.member_id for i in world.items(D(2026, 6, 15))
                           if i.kind == "transfer_suggested"}


# -- M-2.2b / M-2.3b designated contact persons ----------------------------------------------------

def test_m2_2b_m2_3b_no_designated_contact_person_on_an_open_flow(world: World) -> None:
    _, flow_id = world.away("杨十九", "2026-06-01", home_contact=None, host_contact=None,
                            reported_on="2026-06-03")
    [home] = world.items(D(2026, 6, 15), kind="no_contact_person")
    assert (home.rec_id, home.side, home.mandate, home.since) == (
        flow_id, "home", "M-2.2b", "2026-06-01")
    assert "流出地联系人" in home.zh
    [host] = world.items(D(2026, 6, 15), world.b, kind="no_contact_person")
    assert (host.side, host.mandate, host.since) == ("host", "M-2.3b", "2026-06-03")
    assert "流入地联系人" in host.zh
    world.store.put("flow", {"home_contact": "李书记", "host_contact": "王委员"}, flow_id)
    assert world.items(D(2026, 6, 15), kind="no_contact_person") == []
    assert world.items(D(2026, 6, 15), world.b, kind="no_contact_person") == []


# -- M-5.4 county tasks ------------------------------------------------------------------------------

def test_m5_4_county_task_open_until_answered_done(world: World) -> None:
    task = world.store.put("task", {"issued_by_org_id": world.county, "target_org_ids": [world.a],
                                    "title": "流动党员信息核查", "due_on": "2026-06-30"})
    [item] = world.items(D(2026, 6, 15), kind="task_open")
    assert (item.rec_id, item.mandate, item.since) == (task, "M-5.4", "2026-06-30")
    assert "流动党员信息核查" in item.zh and "还有 15 天" in item.zh
    assert world.items(D(2026, 6, 15), world.b, kind="task_open") == []  # not sent to B
    reply = world.store.put("task_reply", {"task_id": task, "org_id": world.a, "status": "open"})
    assert len(world.items(D(2026, 6, 15), kind="task_open")) == 1
    world.store.put("task_reply", {"status": "done", "done_on": "2026-06-14"}, reply)
    assert world.items(D(2026, 6, 15), kind="task_open") == []


# -- sync conflicts and refused writes ---------------------------------------------------------------

def test_open_conflicts_and_rejected_writes_are_items(world: World) -> None:
    member_id = world.member("朱二十", phone="13800138000")
    conflict = new_ulid()
    hlc = Hlc().now()
    values = [{"value": "13800138000", "hlc": hlc}, {"value": "13900139000", "hlc": hlc}]
    rejected = {"dev_seq": 3, "rec_id": member_id, "type": "member", "reason": "ownership",
                "field": "home_org_id", "zh": "超出本组织的管理范围",
                "en": "outside this organization's scope", "set": {}, "title": "朱二十"}
    sync_answer(world.store, changes=[{
        "id": conflict, "t": "conflict", "c": hlc, "v": 1,
        "f": {"subject_id": member_id, "subject_type": "member", "field": "phone",
              "values": values, "status": "open"}}], rejected=[rejected])
    items = world.items(D.today())
    [c] = [i for i in items if i.kind == "conflict"]
    assert (c.rec_id, c.member_id, c.mandate) == (conflict, member_id, "")
    assert "朱二十" in c.zh and "手机号" in c.zh and "mobile phone" in c.en
    [r] = [i for i in items if i.kind == "rejected"]
    assert (r.rec_id, r.member_id) == (member_id, member_id)
    assert "超出本组织的管理范围" in r.zh and "outside this organization's scope" in r.en
    sync_answer(world.store, changes=[{
        "id": conflict, "t": "conflict", "c": hlc, "v": 2,
        "f": {"subject_id": member_id, "subject_type": "member", "field": "phone",
              "values": values, "status": "resolved"}}])
    assert [i.kind for i in world.items(D.today()) if i.kind == "conflict"] == []


# -- who sees what; order; counts -------------------------------------------------------------------

def test_items_fall_to_the_side_the_organization_stands_on(world: World) -> None:
    outflow, _ = world.away("张三", "2026-01-01", home_contact=None, host_contact=None)
    other_home = world.member("王芳", home=world.b)
    world.store.put("member", {"lost_contact_since": "2026-05-01"}, other_home)
    at_a = world.items(D(2026, 6, 15))
    at_b = world.items(D(2026, 6, 15), world.b)
    assert {i.side for i in at_a if i.member_id == outflow} == {"home"}
    assert {i.side for i in at_b if i.member_id == outflow} == {"host"}
    assert other_home not in {i.member_id for i in at_a}
    assert other_home in {i.member_id for i in at_b}
    # the town above both sees the home side once, and both contact persons
    at_town = world.items(D(2026, 6, 15), world.town)
    assert [i.side for i in at_town if i.kind == "report_overdue"] == ["home"]
    assert sorted(i.side for i in at_town if i.kind == "no_contact_person") == ["home", "host"]


def test_worklist_is_grouped_in_kind_order_oldest_first_and_counted(world: World) -> None:
    world.away("甲", "2026-03-01", home_contact=None)
    world.away("乙", "2026-02-01")
    world.member("丙", lost_contact_since="2026-01-01")
    items = world.items(D(2026, 6, 15))
    groups = [list(KINDS).index(i.kind) for i in items]
    assert groups == sorted(groups)
    overdue = [i for i in items if i.kind == "report_overdue"]
    assert [i.since for i in overdue] == sorted(i.since for i in overdue)
    assert "乙" in overdue[0].zh
    found = counts(items)
    assert found["report_overdue"] == 2 and found["lost_contact"] == 1
    assert list(found) == [k for k in KINDS if k in found]
    assert all(i.title_zh == KINDS[i.kind][0] and i.title_en == KINDS[i.kind][1] for i in items)
    assert items[0].to_json()["title_en"] == KINDS[items[0].kind][1]


def test_thresholds_can_be_set(world: World) -> None:
    world.away("张三", "2026-05-15")
    assert world.items(D(2026, 6, 1), kind="report_overdue",
                       settings=Thresholds(report_days=15)) != []
    assert world.items(D(2026, 6, 1), kind="report_overdue") == []


def test_archived_and_ended_do_not_appear(world: World) -> None:
    member_id, flow_id = world.away("张三", "2026-01-01")
    world.store.put("flow", {"status": "ended", "ended_on": "2026-03-01",
                             "end_reason": "returned"}, flow_id)
    assert member_id not in {i.member_id for i in world.items(D(2026, 6, 15))
                             if i.kind != "probable_mobile"}
    gone = world.member("李四", lost_contact_since="2026-01-01", archived="deceased")
    assert gone not in {i.member_id for i in world.items(D(2026, 6, 15))}


def test_add_months_keeps_the_day_or_takes_the_month_end() -> None:
    assert add_months(D(2026, 1, 31), 1) == D(2026, 2, 28)
    assert add_months(D(2026, 6, 15), -6) == D(2025, 12, 15)
    assert add_months(D(2024, 2, 29), 12) == D(2025, 2, 28)
