"""The register across the county (DESIGN §2.2, §3.3), against the real app and database:
one person, one record in a county; an arrival registered by its host is linked to the member
the county holds; each side receives what it needs and no more."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store.register import add_member, end_flow, flow_in, flow_out, log_contact, member_mobility
from sync.server import db
from tests.conftest import make_id_number
from tests.sync.harness import County

ID = make_id_number("411522", "19880512", 123)


def members_on_server(county: County) -> list[dict]:
    with db.read(county.engine) as conn:
        rows = conn.execute(select(db.records).where(db.records.c.type == "member",
                                                     db.records.c.deleted.is_(False))).all()
    import json

    return [json.loads(r.data) for r in rows]


def test_one_person_one_record_in_the_county(county: County,
                                             county_tree: dict[str, str]) -> None:
    """A second branch registering a member the county holds is refused, and told only which
    organization holds the member — nothing personal crosses to it."""
    a = county.device("a", county_tree["a"])
    b = county.device("b", county_tree["b"])
    add_member(a.store, {"name": "张三", "id_number": ID, "phone": "13800000001"})
    a.sync()
    mine = add_member(b.store, {"name": "张叁", "id_number": ID})  # b cannot know: offline
    report = b.sync()
    assert [(r["reason"], r["field"]) for r in report.rejected] == [("duplicate", "id_number")]
    message = report.rejected[0]["zh"] + report.rejected[0]["en"]
    assert "城关村党支部" in message
    assert "张三" not in message and "13800000001" not in message
    assert b.store.get(mine) is None  # not kept at b: the refusal lists what was typed
    assert b.store.meta["rejected"][0]["set"]["name"] == "张叁"
    assert [m["name"] for m in members_on_server(county)] == ["张三"]
    # in another county the same number is another county's business
    other = county.org("商城县委", "county")
    c = county.device("c", county.org("某村党支部", "branch", other))
    add_member(c.store, {"name": "张三", "id_number": ID})
    assert c.sync().rejected == []


def test_an_arrival_the_home_registered_is_linked_to_its_flow(
        county: County, county_tree: dict[str, str]) -> None:
    """The home registered the outflow to b; b's worker, before syncing, registers the arrival
    with the ID number and the report-in. One member and one flow result, reported in."""
    a = county.device("a", county_tree["a"])
    b = county.device("b", county_tree["b"])
    member_id = add_member(a.store, {"name": "张三", "id_number": ID})
    flow_id = flow_out(a.store, member_id, {"left_on": "2026-10-01", "reason": "work",
                                            "host_org_id": county_tree["b"]})
    a.sync()
    flow_in(b.store, {"name": "张三", "id_number": ID, "external_home_org": "城关村"},
            {"left_on": "2026-10-01", "reason": "work", "reported_on": "2026-10-03",
             "host_contact": "东关村书记"})
    report = b.sync()
    assert report.rejected == [] and report.linked == 2
    assert [m["id"] for m in b.store.live("member")] == [member_id]
    assert [f["id"] for f in b.store.live("flow")] == [flow_id]
    assert member_mobility(b.store, b.store.get(member_id)) == "inflow"
    a.sync()
    flow = a.store.get(flow_id)
    assert (flow["status"], flow["reported_on"], flow["host_contact"]) == (
        "reported", "2026-10-03", "东关村书记")
    assert len(members_on_server(county)) == 1
    # b's later writes about the member land on the one record
    log_contact(b.store, member_id, {"on": "2026-11-01", "channel": "visit", "reached": True})
    assert b.sync().rejected == []


def test_an_arrival_the_home_knew_only_as_outside_gets_its_host(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    c = county.device("c", county_tree["c"])
    member_id = add_member(a.store, {"name": "张三", "id_number": ID})
    flow_id = flow_out(a.store, member_id, {"left_on": "2026-10-01", "reason": "work",
                                            "external_host": "去向不明"})
    a.sync()
    flow_in(c.store, {"name": "张三", "id_number": ID, "external_home_org": "城关村"},
            {"left_on": "2026-10-05", "reason": "work"})
    assert c.sync().rejected == []
    assert [f["id"] for f in c.store.live("flow")] == [flow_id]
    a.sync()
    assert a.store.get(flow_id)["host_org_id"] == county_tree["c"]  # the home learns where


def test_an_arrival_with_no_flow_at_home_opens_one_the_home_sees(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    c = county.device("c", county_tree["c"])
    member_id = add_member(a.store, {"name": "张三", "id_number": ID})
    a.sync()
    flow_in(c.store, {"name": "张三", "id_number": ID, "external_home_org": "城关村"},
            {"left_on": "2026-10-05", "reason": "work"})
    assert c.sync().rejected == []
    assert [m["id"] for m in c.store.live("member")] == [member_id]
    a.sync()
    flows = list(a.store.live("flow"))
    assert [(f["host_org_id"], f["home_org_id"]) for f in flows] == [
        (county_tree["c"], county_tree["a"])]
    assert member_mobility(a.store, a.store.get(member_id)) == "outflow"


def test_an_arrival_of_a_member_hosted_elsewhere_is_refused_and_listed(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    c = county.device("c", county_tree["c"])
    member_id = add_member(a.store, {"name": "张三", "id_number": ID})
    flow_out(a.store, member_id, {"left_on": "2026-10-01", "reason": "work",
                                  "host_org_id": county_tree["b"]})
    a.sync()
    local, _ = flow_in(c.store, {"name": "张三", "id_number": ID, "external_home_org": "城关村"},
                       {"left_on": "2026-10-05", "reason": "work"})
    report = c.sync()
    assert sorted(r["reason"] for r in report.rejected) == ["duplicate", "invalid"]
    assert list(c.store.live("member")) == [] and c.store.get(local) is None
    assert len(members_on_server(county)) == 1


def test_a_laptop_links_an_arrival_it_already_holds(county: County,
                                                   county_tree: dict[str, str]) -> None:
    """The home's registration reached b first: typing the arrival records the report-in on
    that flow instead of a second member."""
    a = county.device("a", county_tree["a"])
    b = county.device("b", county_tree["b"])
    member_id = add_member(a.store, {"name": "张三", "id_number": ID})
    flow_id = flow_out(a.store, member_id, {"left_on": "2026-10-01", "reason": "work",
                                            "host_org_id": county_tree["b"]})
    a.sync()
    b.sync()
    linked = flow_in(b.store, {"name": "张三", "id_number": ID, "external_home_org": "x"},
                     {"left_on": "2026-10-01", "reason": "work", "reported_on": "2026-10-02"})
    assert linked == (member_id, flow_id)
    assert len(list(b.store.live("member"))) == 1
    assert b.store.get(flow_id)["reported_on"] == "2026-10-02"


def test_the_host_receives_what_it_needs_and_no_more(county: County,
                                                     county_tree: dict[str, str]) -> None:
    """Hosted at c: the member's profile, the open flow and what c records under it — not the
    member's earlier flow to b, nor the home branch's contact log."""
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "张三"})
    earlier = flow_out(a.store, member_id, {"left_on": "2025-01-01", "reason": "work",
                                            "host_org_id": county_tree["b"]})
    end_flow(a.store, earlier, "2025-12-31", "returned")
    home_contact = log_contact(a.store, member_id, {"on": "2026-01-05", "channel": "phone",
                                                    "reached": True, "summary": "家中有事"})
    current = flow_out(a.store, member_id, {"left_on": "2026-02-01", "reason": "work",
                                            "host_org_id": county_tree["c"]})
    during = log_contact(a.store, member_id, {"on": "2026-03-05", "channel": "phone",
                                              "reached": True})
    a.sync()
    c = county.device("c", county_tree["c"])
    assert c.store.get(member_id) is not None and c.store.get(current) is not None
    assert c.store.get(earlier) is None
    assert c.store.get(home_contact) is None and c.store.get(during) is None
    hosts_contact = log_contact(c.store, member_id, {"on": "2026-03-10", "channel": "visit",
                                                     "reached": True})
    c.sync()
    a.sync()
    assert a.store.get(hosts_contact) is not None  # the home sees what the host records
    assert member_mobility(c.store, c.store.get(member_id)) == "inflow"
    assert member_mobility(a.store, a.store.get(member_id)) == "outflow"
    town2 = county.device("town2", county_tree["town2"])  # above the host: the host's view
    assert town2.store.get(hosts_contact) is not None and town2.store.get(during) is None
    whole = county.device("county", county_tree["county"])  # above both: everything
    assert None not in [whole.store.get(r) for r in (earlier, home_contact, during, current)]


def test_two_laptops_of_one_branch_cannot_open_two_flows(county: County,
                                                         county_tree: dict[str, str]) -> None:
    a1 = county.device("a1", county_tree["a"])
    a2 = county.device("a2", county_tree["a"])
    member_id = add_member(a1.store, {"name": "张三"})
    a1.sync()
    a2.sync()
    flow_out(a1.store, member_id, {"left_on": "2026-10-01", "reason": "work"})
    flow_out(a2.store, member_id, {"left_on": "2026-10-02", "reason": "study"})
    assert a1.sync().rejected == []
    report = a2.sync()
    assert [(r["reason"], r["field"]) for r in report.rejected] == [("invalid", "left_on")]
    assert len(list(a2.store.live("flow"))) == 1


@pytest.mark.parametrize("county", ["sqlite"], indirect=True)
def test_meetings_carry_attendees_only_as_far_as_each_device_sees(
        county: County, county_tree: dict[str, str]) -> None:
    """A meeting at c attended by a's member hosted there and by c's own: a sees its member's
    attendance (M-3.2) but not c's member; an edit from c keeps what a was not shown."""
    a = county.device("a", county_tree["a"])
    c = county.device("c", county_tree["c"])
    ours = add_member(a.store, {"name": "张三"})
    flow_out(a.store, ours, {"left_on": "2026-10-01", "reason": "work",
                             "host_org_id": county_tree["c"]})
    a.sync()
    c.sync()
    theirs = add_member(c.store, {"name": "孙八"})
    meeting = c.store.put("meeting", {"org_id": county_tree["c"], "kind": "party_lesson",
                                      "held_on": "2026-11-16", "topic": "党课",
                                      "attendee_ids": [theirs, ours]})
    c.sync()
    a.sync()
    assert a.store.get(meeting)["attendee_ids"] == [ours]
    c.store.put("meeting", {"topic": "党课（补记）"}, meeting)
    c.sync()
    a.sync()
    assert a.store.get(meeting)["attendee_ids"] == [ours]
    assert c.store.get(meeting)["attendee_ids"] == [theirs, ours]
