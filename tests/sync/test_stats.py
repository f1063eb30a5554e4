"""One statistics code on both sides (M-5.1): two branches and a county device sync with a real
county server (SQLite and PostgreSQL); the county device's ``org_stats`` and the server's
``liudong admin stats`` agree on every shared column for every organization."""

from __future__ import annotations

import datetime as dt

from store import register
from store.stats import as_row, org_stats
from sync.server.admin import send_task, stats
from tests.conftest import make_id_number
from tests.sync.harness import County

TODAY = dt.date.today()


def ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


def test_m5_1_the_county_device_and_admin_stats_agree(county: County,
                                                      county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    b = county.device("b", county_tree["b"])
    seq = iter(range(60, 99))

    def member(device: object, name: str, **extra: object) -> str:
        return register.add_member(device.store, {  # type: ignore[attr-defined]
            "name": name, "id_number": make_id_number("411522", "19880808", next(seq)),
            **extra})

    # 城关村 (a): 张三 away to 东关村 (b) and reported in; 李四 away outside the system for a
    # year and a half, pending report, never reached; 王五 at home, marked lost
    zs = member(a, "张三")
    zs_flow = register.flow_out(a.store, zs, {"left_on": ago(120), "reason": "work",
                                              "host_org_id": county_tree["b"],
                                              "home_contact": "城关村书记"})
    register.log_contact(a.store, zs, {"on": ago(20), "channel": "phone", "reached": True})
    ls = member(a, "李四")
    register.flow_out(a.store, ls, {"left_on": ago(540), "reason": "work",
                                    "external_host": "东莞市长安镇党委"})
    ww = member(a, "王五", lost_contact_since=ago(200))
    a.store.put("meeting", {"org_id": county_tree["a"], "kind": "theme_day",
                            "held_on": ago(30), "topic": "主题党日", "attendee_ids": [ww],
                            "absences": [{"member_id": ls, "reason": "外出务工"}]})
    a.store.put("fund", {"org_id": county_tree["a"], "on": ago(60), "kind": "allocation",
                         "purpose": "activities", "amount_yuan": "300"})
    assert a.sync().rejected == []
    assert b.sync().rejected == []
    register.report_in(b.store, zs_flow, ago(110))  # the host records the report-in

    # 东关村 (b): 赵六 at home; a meeting with the hosted 张三 (M-3.2); its dues ledger
    zl = member(b, "赵六")
    b.store.put("meeting", {"org_id": county_tree["b"], "kind": "party_lesson",
                            "held_on": ago(10), "topic": "党课", "attendee_ids": [zs, zl]})
    b.store.put("meeting", {"org_id": county_tree["b"], "kind": "group",
                            "held_on": ago(400), "topic": "去年的党小组会", "attendee_ids": [zl]})
    for kind, purpose, amount in (("allocation", "education", "1000"),
                                  ("expense", "education", "200.50"),
                                  ("expense", "condolence", "50")):
        b.store.put("fund", {"org_id": county_tree["b"], "on": ago(40), "kind": kind,
                             "purpose": purpose, "amount_yuan": amount})
    assert b.sync().rejected == []

    # the county sends a task to both branches, past due; b has done it
    task = send_task(county.engine, {"issued_by_org_id": county_tree["county"],
                                     "target_org_ids": [county_tree["a"], county_tree["b"]],
                                     "title": "报送流动党员名册", "due_on": ago(2)})
    b.sync()
    b.store.put("task_reply", {"task_id": task, "org_id": county_tree["b"], "status": "done",
                               "done_on": ago(3)})
    assert b.sync().rejected == []

    top = county.device("county", county_tree["county"])
    device_rows = [as_row(s) for s in org_stats(top.store, TODAY)]
    server_rows = stats(county.engine, today=TODAY)
    assert [r["org_id"] for r in server_rows] == [r["org_id"] for r in device_rows]
    for mine, theirs in zip(device_rows, server_rows):
        assert {k: theirs[k] for k in mine} == mine, mine["name"]

    rows = {r["org_id"]: r for r in server_rows}
    county_row, town, row_a, row_b = (rows[county_tree[k]] for k in ("county", "town", "a", "b"))
    # the figures by hand, each named by its requirement
    assert (county_row["members"], county_row["outflow"], county_row["inflow"]) == (4, 2, 1)
    assert (row_a["reported"], row_a["pending"], row_a["report_overdue"]) == (1, 1, 1)  # M-1.2
    assert row_a["reported_rate"] == 0.5
    assert row_a["lost"] == 2 and row_a["contact_due"] == 0  # M-2.2b: 李四 and 王五
    assert (row_a["appraisal_due"], row_a["appraised"]) == (1, 0)  # M-2.3e: 李四
    # M-3.2: a's meeting 1 of 2; b's recent one 2 of 2 (its meeting of last year left out)
    assert (row_a["meetings"], row_a["attended"], row_a["expected"]) == (1, 1, 2)
    assert (row_b["meetings"], row_b["attended"], row_b["expected"]) == (1, 2, 2)
    assert (town["meetings"], town["attended"], town["expected"]) == (2, 3, 4)
    assert town["attendance_rate"] == 0.75
    # M-5.3: per purpose, the subtree's total above
    assert (row_b["fund_education"], row_b["fund_condolence"], row_b["fund_balance"]) == (
        "799.50", "-50.00", "749.50")
    assert (town["fund_activities"], town["fund_balance"]) == ("300.00", "1049.50")
    assert county_row["fund_balance"] == "1049.50"
    # M-5.4: a has not answered the task sent to it
    assert (row_a["tasks_overdue"], row_b["tasks_overdue"], county_row["tasks_overdue"]) == (
        1, 0, 1)
    # the server's own columns
    assert county_row["devices"] == 3 and row_a["devices"] == 1
    assert county_row["last_sync"] is not None
    # the earlier column names stay for scripts (DESIGN §5)
    assert (county_row["hosted"], county_row["pending_report"], county_row["lost_contact"]) == (
        1, 1, 2)


def test_m5_1_stats_of_one_organization_are_what_its_device_counts(
        county: County, county_tree: dict[str, str]) -> None:
    """``admin stats --org``: the organization and those below it, as its own device counts
    them (an inflow member whose home is elsewhere falls to its host)."""
    a = county.device("a", county_tree["a"])
    zs = register.add_member(a.store, {"name": "张三", "id_number": make_id_number(seq=70)})
    flow = register.flow_out(a.store, zs, {"left_on": ago(200), "reason": "work",
                                           "host_org_id": county_tree["b"]})
    a.sync()
    b = county.device("b", county_tree["b"])
    register.report_in(b.store, flow, ago(190))
    b.sync()
    device_rows = [as_row(s) for s in org_stats(b.store, TODAY)]
    server_rows = stats(county.engine, county_tree["b"], today=TODAY)
    assert [{k: r[k] for k in device_rows[0]} for r in server_rows] == device_rows
    assert device_rows[0]["inflow"] == 1 and device_rows[0]["lost"] == 1


def test_m5_1_each_county_on_one_server_is_counted_apart(
        county: County, county_tree: dict[str, str]) -> None:
    """A server holding two counties: each is counted as its own county device counts it,
    each with its own total row."""
    other = county.org("商城县委", "county")
    c = county.device("c", county.org("某村党支部", "branch", other))
    register.add_member(c.store, {"name": "张三", "id_number": make_id_number(seq=71)})
    assert c.sync().rejected == []
    rows = {r["name"]: r for r in stats(county.engine, today=TODAY)}
    assert (rows["商城县委"]["depth"], rows["商城县委"]["members"], rows["商城县委"]["devices"]) == (
        0, 1, 1)
    assert (rows["光山县委"]["depth"], rows["光山县委"]["members"]) == (0, 0)
    assert rows["某村党支部"]["depth"] == 1 and len(rows) == 8
