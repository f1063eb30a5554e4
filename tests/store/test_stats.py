"""The statistics shared by the county screen and ``liudong admin stats`` (store/stats.py), on
registers counted by hand: attendance (M-3.2), the dues ledger per purpose with its subtree
totals (M-5.3), county tasks overdue (M-5.4). The register is a ``RecordView``, as the county
server builds one: records in the wire form a device receives."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from store.ids import new_ulid
from store.stats import as_row, fund_balances, is_upper, org_stats, task_views
from store.view import RecordView

TODAY = dt.date(2026, 12, 3)
HLC = "0190000000000000"


class Register:
    """Records in wire form, for a view of one organization."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.ids: dict[str, str] = {}

    def put(self, type_name: str, key: str | None = None, **fields: Any) -> str:
        rec_id = new_ulid()
        self.records.append({"id": rec_id, "t": type_name, "f": fields, "v": 1, "c": HLC})
        if key:
            self.ids[key] = rec_id
        return rec_id

    def view(self, own: str) -> RecordView:
        return RecordView.of_records(self.ids[own], self.records)


def county() -> Register:
    """光山县委 → 城关镇党委 → 城关村 (a), 东关村 (b); 光山县委 → 十里村 (c)."""
    r = Register()
    r.put("org", "county", name="光山县委", kind="county")
    r.put("org", "town", name="城关镇党委", kind="committee", parent_id=r.ids["county"])
    r.put("org", "a", name="城关村党支部", kind="branch", parent_id=r.ids["town"])
    r.put("org", "b", name="东关村党支部", kind="branch", parent_id=r.ids["town"])
    r.put("org", "c", name="十里村党支部", kind="branch", parent_id=r.ids["county"])
    for n, org in enumerate("aaabbc"):
        r.put("member", f"m{n}", name=f"党员{n}", home_org_id=r.ids[org], standing="full")
    return r


def test_m3_2_attendance_over_the_meetings_of_the_last_twelve_months() -> None:
    """M-3.2: per organization, meetings held in the last 12 months and attended / expected,
    where expected is everyone the meeting recorded as attending or absent."""
    r = county()
    m = r.ids
    # a: two meetings inside the year — 2 of 3 (m0, m1 there; m2 absent), then 3 of 3
    r.put("meeting", org_id=m["a"], kind="theme_day", held_on="2026-11-01",
          attendee_ids=[m["m0"], m["m1"]], absences=[{"member_id": m["m2"], "reason": "病假"}])
    r.put("meeting", org_id=m["a"], kind="group", held_on="2026-06-15",
          attendee_ids=[m["m0"], m["m1"], m["m2"]])
    # a: one of 2025-12-03, exactly a year ago: outside the window; one in the future: too
    r.put("meeting", org_id=m["a"], kind="group", held_on="2025-12-03", attendee_ids=[m["m0"]],
          absences=[{"member_id": m["m1"]}, {"member_id": m["m2"]}])
    r.put("meeting", org_id=m["a"], kind="group", held_on="2026-12-10", attendee_ids=[m["m0"]])
    # b: one meeting 1 of 3 — m3 there; m4 and the hosted m5 (of c) absent
    r.put("meeting", org_id=m["b"], kind="party_lesson", held_on="2026-02-01",
          attendee_ids=[m["m3"]], absences=[{"member_id": m["m4"], "reason": "外出"},
                                            {"member_id": m["m5"], "reason": "外出"}])
    # c: one meeting without anyone recorded: held, no rate
    r.put("meeting", org_id=m["c"], kind="committee", held_on="2026-10-01")
    # a deleted meeting counts for nothing
    r.records.append({"id": new_ulid(), "t": "meeting", "v": 1, "c": HLC, "d": 1,
                      "f": {"org_id": m["c"], "kind": "group", "held_on": "2026-10-02",
                            "attendee_ids": [m["m5"]]}})
    rows = {s.org_id: s for s in org_stats(r.view("county"), TODAY)}

    def attendance(key: str) -> tuple[int, int, int, float | None]:
        s = rows[m[key]]
        return (s.meetings, s.attended, s.expected, s.attendance_rate)

    assert attendance("a") == (2, 5, 6, 5 / 6)
    assert attendance("b") == (1, 1, 3, 1 / 3)
    assert attendance("c") == (1, 0, 0, None)
    assert attendance("town") == (3, 6, 9, 6 / 9)  # its subtree: a and b
    assert attendance("county") == (4, 6, 9, 6 / 9)
    assert as_row(rows[m["town"]])["attendance_rate"] == 0.6667


def test_m5_3_the_dues_ledger_per_purpose_with_subtree_totals() -> None:
    """M-5.3: allocations less expenses, per purpose (education, activities, condolence), each
    organization's figure its whole subtree."""
    r = county()
    m = r.ids
    for org, kind, purpose, amount in (
            ("county", "allocation", "education", "5000"),
            ("county", "expense", "education", "1200.40"),
            ("town", "allocation", "activities", "800"),
            ("a", "allocation", "education", "300"),
            ("a", "expense", "education", "120.25"),
            ("a", "expense", "condolence", "200"),  # spent before any allocation: negative
            ("b", "allocation", "condolence", "500"),
            ("b", "expense", "condolence", "500"),
            ("c", "allocation", "activities", "99.99")):
        r.put("fund", org_id=m[org], on="2026-10-01", kind=kind, purpose=purpose,
              amount_yuan=amount)
    view = r.view("county")
    ledgers = fund_balances(view)
    assert list(ledgers) == [m[k] for k in ("county", "town", "a", "b", "c")]

    def balances(key: str) -> tuple[str, ...]:
        ledger = ledgers[m[key]]
        return tuple(f"{ledger.balance(p):.2f}" for p in (
            "education", "activities", "condolence", None))

    #                              education  activities condolence  all
    assert balances("a") == ("179.75", "0.00", "-200.00", "-20.25")
    assert balances("b") == ("0.00", "0.00", "0.00", "0.00")
    assert balances("c") == ("0.00", "99.99", "0.00", "99.99")
    assert balances("town") == ("179.75", "800.00", "-200.00", "779.75")
    assert balances("county") == ("3979.35", "899.99", "-200.00", "4679.34")
    assert ledgers[m["town"]].allocated == {"activities": Decimal("800"),
                                            "education": Decimal("300"),
                                            "condolence": Decimal("500")}
    assert ledgers[m["b"]].spent == {"condolence": Decimal("500")}
    # the statistics rows carry the same balances
    rows = {s.org_id: as_row(s) for s in org_stats(view, TODAY)}
    assert (rows[m["town"]]["fund_balance"], rows[m["town"]]["fund_activities"]) == (
        "779.75", "800.00")
    assert rows[m["county"]]["fund_education"] == "3979.35"


def test_m5_4_a_branch_view_counts_its_own_row_and_its_tasks() -> None:
    """A view at a branch: one row, its own; tasks sent to it, overdue when past their due
    date without a done answer (M-5.4); the county's own ledger is not the branch's."""
    r = county()
    m = r.ids
    r.put("fund", org_id=m["county"], on="2026-10-01", kind="allocation", purpose="education",
          amount_yuan="5000")
    r.put("fund", org_id=m["a"], on="2026-10-01", kind="allocation", purpose="education",
          amount_yuan="10")
    late = r.put("task", issued_by_org_id=m["county"], target_org_ids=[m["a"], m["b"]],
                 title="报送名册", due_on="2026-11-30")
    r.put("task", issued_by_org_id=m["county"], target_org_ids=[m["a"]], title="排查",
          due_on="2026-12-31")
    done = r.put("task", issued_by_org_id=m["county"], target_org_ids=[m["a"]], title="已完成",
                 due_on="2026-11-01")
    r.put("task_reply", task_id=done, org_id=m["a"], status="done", done_on="2026-10-30")
    r.put("task_reply", task_id=late, org_id=m["a"], status="open", note="进行中")
    view = r.view("a")
    assert not is_upper(view)
    [row] = org_stats(view, TODAY)
    assert (row.name, row.members, row.tasks_open, row.tasks_overdue) == ("城关村党支部", 3, 2, 1)
    assert row.fund_balance == Decimal("10")
    views = task_views(view)
    assert [(v.title, v.overdue(TODAY)) for v in views] == [
        ("报送名册", True), ("排查", False), ("已完成", False)]
    # from the county: each target counted where it is, the total above
    rows = {s.org_id: s for s in org_stats(r.view("county"), TODAY)}
    assert [rows[m[k]].tasks_overdue for k in ("county", "town", "a", "b", "c")] == [2, 2, 1, 1, 0]
    assert is_upper(r.view("county"))
