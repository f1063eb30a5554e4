"""Sections 3–5 of the interface (Pilot, headless) on real encrypted stores built through the
store API: flows filtered by status, a meeting recorded with attendance that includes an inflow
member hosted here (M-3.2), and the county's statistics and tasks (M-5.1, M-5.4)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from store import TEST_KDF, Store, register
from store.ids import Hlc, new_ulid
from tests.conftest import PASSPHRASE, create_store, make_id_number
from tests.tui.conftest import screen_text, wait_for
from tui.app import LiudongApp
from tui.county_stats import org_stats, task_views
from tui.widgets.chart import bar

TODAY = dt.date(2026, 12, 3)


def screen_name(app: LiudongApp) -> str:
    return app.screen.__class__.__name__


# -- a branch ------------------------------------------------------------------------------------

def build_branch(path: Path) -> dict[str, str]:
    """城关村党支部: 张三 away pending report, 李四 away and reported in, 王五 at home, 赵六
    back home (flow ended), and 陈七, a member of a branch outside the system hosted here."""
    store, _ = create_store(path)
    ids: dict[str, str] = {}
    with store:
        for n, name in enumerate(("张三", "李四", "王五", "赵六")):
            ids[name] = register.add_member(store, {
                "name": name, "id_number": make_id_number(seq=20 + n),
                "phone": f"1390013{n:04d}"})
        ids["flow 张三"] = register.flow_out(store, ids["张三"], {
            "left_on": "2026-09-01", "reason": "work", "external_host": "南山区科技园综合党委"})
        ids["flow 李四"] = register.flow_out(store, ids["李四"], {
            "left_on": "2026-03-01", "reason": "work", "external_host": "东莞市长安镇党委",
            "reported_on": "2026-03-20"})
        ids["flow 赵六"] = register.flow_out(store, ids["赵六"], {
            "left_on": "2025-05-01", "reason": "work", "external_host": "义乌市稠城街道党委"})
        register.end_flow(store, ids["flow 赵六"], "2026-02-01", "returned")
        ids["陈七"], ids["flow 陈七"] = register.flow_in(store, {
            "name": "陈七", "external_home_org": "河南省光山县十里村党支部",
            "id_number": make_id_number("411522", "19900101", 31)},
            {"left_on": "2026-04-01", "reason": "work", "reported_on": "2026-04-10"})
    return ids


async def test_flows_filter_by_status_and_search_by_initials(tmp_path: Path) -> None:
    ids = build_branch(tmp_path / "s")
    store = Store.open(tmp_path / "s", PASSPHRASE)
    app = LiudongApp(tmp_path / "s", store=store, today=TODAY)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: app.current_mode == "flows")
        records = app.screen.query_one("RecordList")
        await wait_for(pilot, lambda: len(records.ids) == 4)
        # open ones first: pending report, then reported (the longest away first), then ended
        assert records.ids == [ids["flow 张三"], ids["flow 李四"], ids["flow 陈七"],
                               ids["flow 赵六"]]
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "流入" in text and "河南省光山县十里村党支部" in text  # 陈七 as the host sees it
        assert "93" in text  # 张三: 93 days since 2026-09-01
        await pilot.press("p")
        await pilot.pause()
        assert records.ids == [ids["flow 张三"]]
        await pilot.press("r")
        await pilot.pause()
        assert records.ids == [ids["flow 李四"], ids["flow 陈七"]]
        await pilot.press("d")
        await pilot.pause()
        assert records.ids == [ids["flow 赵六"]]
        await pilot.press("a", "slash", "c", "q")
        await pilot.pause()
        assert records.ids == [ids["flow 陈七"]]
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: screen_name(app) == "MemberScreen")
        assert app.screen.member_id == ids["陈七"]


async def test_a_meeting_is_recorded_with_the_ticked_attendees_inflow_included(
        tmp_path: Path) -> None:
    ids = build_branch(tmp_path / "s")
    store = Store.open(tmp_path / "s", PASSPHRASE)
    app = LiudongApp(tmp_path / "s", store=store, today=TODAY)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: app.current_mode == "meetings")
        await pilot.press("n")
        await wait_for(pilot, lambda: screen_name(app) == "MeetingForm")
        form = app.screen
        assert form.query_one("#held_on").value == "2026-12-03"
        # every member of the branch and the inflow member hosted here, nobody ticked yet
        assert set(form.candidates) == {ids[n] for n in ("张三", "李四", "王五", "赵六", "陈七")}
        form.query_one("#topic").focus()
        await pilot.press(*"学习党的二十届四中全会精神")
        form.query_one("#filter").focus()
        await pilot.press("w", "w", "enter", "space")  # 王五 present
        form.query_one("#filter").value = ""
        form.query_one("#filter").focus()
        await pilot.press("c", "q", "enter", "space")  # 陈七 (inflow) present
        form.query_one("#filter").value = ""
        form.query_one("#filter").focus()
        await pilot.press("z", "s", "enter", "enter", *"外出务工", "enter")  # 张三's reason
        await pilot.pause()
        assert "出席 2 / 应到 5" in screen_text(app)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen_name(app) == "MeetingsScreen")
        meetings = list(store.live("meeting"))
        assert len(meetings) == 1
        m = meetings[0]
        assert set(m["attendee_ids"]) == {ids["王五"], ids["陈七"]}
        reasons = {a["member_id"]: a["reason"] for a in m["absences"]}
        assert reasons == {ids["张三"]: "外出务工", ids["李四"]: "未说明", ids["赵六"]: "未说明"}
        assert (m["held_on"], m["kind"], m["topic"]) == ("2026-12-03", "branch_congress",
                                                         "学习党的二十届四中全会精神")
        await pilot.pause(0.1)
        assert "2/5" in screen_text(app)

        # correcting it: 李四 came after all
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen_name(app) == "MeetingForm")
        form = app.screen
        assert form.present == {ids["王五"], ids["陈七"]}
        form.query_one("#filter").focus()
        await pilot.press("l", "s", "enter", "space", "ctrl+s")
        await wait_for(pilot, lambda: screen_name(app) == "MeetingsScreen")
        m = store.get(m["id"])
        assert set(m["attendee_ids"]) == {ids["王五"], ids["陈七"], ids["李四"]}
        assert ids["李四"] not in {a["member_id"] for a in m["absences"]}


async def test_the_meeting_form_refuses_a_bad_date_inline_and_asks_before_discarding(
        tmp_path: Path) -> None:
    build_branch(tmp_path / "s")
    store = Store.open(tmp_path / "s", PASSPHRASE)
    app = LiudongApp(tmp_path / "s", store=store, today=TODAY)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4", "n")
        await wait_for(pilot, lambda: screen_name(app) == "MeetingForm")
        form = app.screen
        form.query_one("#held_on").value = "2027-01-05"  # in the future
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen_name(app) == "MeetingForm"
        assert "日期" in str(form.query_one("#errors").render())
        assert not list(store.live("meeting"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen_name(app) == "ConfirmScreen")
        await pilot.press("n")
        await wait_for(pilot, lambda: screen_name(app) == "MeetingForm")
        await pilot.press("escape", "y")
        await wait_for(pilot, lambda: screen_name(app) == "MeetingsScreen")
        assert not list(store.live("meeting"))


# -- a county ------------------------------------------------------------------------------------

def sync_orgs(store: Store, orgs: list[tuple[str, dict[str, Any]]]) -> None:
    """The county's organizations as its server sends them to an enrolled device."""
    hlc = Hlc(store.meta["hlc"]).now()
    store.commit({"k": "sync", "acked": store.meta["dev_seq"], "applied": [], "aliases": {},
                  "changes": [{"id": i, "t": "org", "v": 1, "c": hlc, "u": hlc, "f": f}
                              for i, f in orgs],
                  "removes": [], "rejected": [], "cursor": 1, "epoch": "e1",
                  "synced_at": int(time.time())})


def build_county(path: Path) -> dict[str, str]:
    """光山县委 → 城关镇党委 → 城关村 (a), 东关村 (b); 十里镇党委 → 十里村 (c)."""
    store, _ = Store.create(path, PASSPHRASE, kdf=TEST_KDF,
                            org={"name": "光山县委", "kind": "county", "division_code": "411522"})
    ids = {"county": str(store.meta["own_org_id"])}
    for key in ("town", "a", "b", "town2", "c"):
        ids[key] = new_ulid()
    with store:
        sync_orgs(store, [
            (ids["town"], {"name": "城关镇党委", "kind": "committee", "parent_id": ids["county"]}),
            (ids["a"], {"name": "城关村党支部", "kind": "branch", "parent_id": ids["town"]}),
            (ids["b"], {"name": "东关村党支部", "kind": "branch", "parent_id": ids["town"]}),
            (ids["town2"], {"name": "十里镇党委", "kind": "committee",
                            "parent_id": ids["county"]}),
            (ids["c"], {"name": "十里村党支部", "kind": "branch", "parent_id": ids["town2"]}),
        ])
        seq = iter(range(40, 99))

        def member(name: str, org: str, **extra: Any) -> str:
            ids[name] = register.add_member(store, {
                "name": name, "home_org_id": ids[org],
                "id_number": make_id_number("411522", "19880808", next(seq)), **extra})
            return ids[name]

        # 城关村 (a): m1 away 44 days, not reported (overdue); m2 away since 2025, reported,
        # last reached 2026-08-01 (contact due), appraised for 2025; m3 at home
        register.flow_out(store, member("刘一", "a"), {
            "left_on": "2026-10-20", "reason": "work", "external_host": "苏州工业园区党工委"})
        register.flow_out(store, member("陈二", "a"), {
            "left_on": "2025-03-01", "reason": "work", "external_host": "东莞市长安镇党委",
            "reported_on": "2025-03-15"})
        register.log_contact(store, ids["陈二"], {"on": "2026-08-01", "channel": "phone",
                                                  "reached": True})
        store.put("appraisal", {"member_id": ids["陈二"], "year": 2025,
                                "by_org_id": ids["a"], "result": "qualified"})
        member("张三", "a")
        # 城关村 (a) held a meeting: 张三 there, 刘一 away (M-3.2: 1 of 2); its dues ledger has
        # 1,000 yuan for education, 250 spent (M-5.3)
        store.put("meeting", {"org_id": ids["a"], "kind": "theme_day", "held_on": "2026-11-15",
                              "attendee_ids": [ids["张三"]],
                              "absences": [{"member_id": ids["刘一"], "reason": "外出务工"}]})
        for kind, amount in (("allocation", "1000"), ("expense", "250")):
            store.put("fund", {"org_id": ids["a"], "on": "2026-11-01", "kind": kind,
                               "purpose": "education", "amount_yuan": amount})
        # 东关村 (b): m4 away since January, hosted by 十里村 (c), never reached (lost);
        # m5 at home, marked lost
        register.flow_out(store, member("李四", "b"), {
            "left_on": "2026-01-10", "reason": "work", "host_org_id": ids["c"],
            "reported_on": "2026-01-20"})
        member("王五", "b", lost_contact_since="2026-05-01")
        # 十里村 (c): m6 away 13 days, pending report
        register.flow_out(store, member("赵六", "c"), {
            "left_on": "2026-11-20", "reason": "study", "external_host": "郑州大学党委"})
        # a task sent to the three branches: 城关村 done, 东关村 open, 十里村 silent
        ids["task"] = store.put("task", {
            "issued_by_org_id": ids["county"], "target_org_ids": [ids["a"], ids["b"], ids["c"]],
            "title": "开展流动党员集中排查", "due_on": "2026-12-31"})
        store.put("task_reply", {"task_id": ids["task"], "org_id": ids["a"], "status": "done",
                                 "note": "已排查 3 人", "done_on": "2026-11-30"})
        store.put("task_reply", {"task_id": ids["task"], "org_id": ids["b"], "status": "open",
                                 "note": "排查中"})
    return ids


def test_county_statistics_per_org_counted_by_hand(tmp_path: Path) -> None:
    ids = build_county(tmp_path / "c")
    with Store.open(tmp_path / "c", PASSPHRASE) as store:
        rows = {r.org_id: r for r in org_stats(store, TODAY)}
        assert [r.name for r in org_stats(store, TODAY)] == [
            "光山县委", "城关镇党委", "城关村党支部", "东关村党支部", "十里镇党委", "十里村党支部"]

        def counts(key: str) -> tuple[int, ...]:
            r = rows[ids[key]]
            return (r.members, r.outflow, r.inflow, r.reported, r.pending, r.report_overdue,
                    r.contact_due, r.lost, r.appraisal_due, r.appraised)

        #                       mem out in rep pend late due lost appr-due appraised
        assert counts("a") == (3, 2, 0, 1, 1, 1, 1, 0, 1, 1)
        assert counts("b") == (2, 1, 0, 1, 0, 0, 0, 2, 0, 0)
        assert counts("c") == (1, 1, 1, 0, 1, 0, 0, 0, 0, 0)
        assert counts("town") == (5, 3, 0, 2, 1, 1, 1, 2, 1, 1)
        assert counts("town2") == (1, 1, 1, 0, 1, 0, 0, 0, 0, 0)
        assert counts("county") == (6, 4, 1, 2, 2, 1, 1, 2, 1, 1)
        assert rows[ids["county"]].reported_rate == 0.5
        assert rows[ids["b"]].reported_rate == 1.0
        assert rows[ids["county"]].appraisal_rate == 1.0
        assert rows[ids["c"]].appraisal_rate is None
        assert rows[ids["county"]].attendance_rate == 0.5  # M-3.2
        assert rows[ids["town"]].fund["education"] == 750  # M-5.3

        [task] = task_views(store)
        assert task.sent and task.title == "开展流动党员集中排查"
        assert [(r.org_id, r.status, r.note) for r in task.targets] == [
            (ids["a"], "done", "已排查 3 人"), (ids["b"], "open", "排查中"), (ids["c"], "none", "")]
        assert task.done == 1 and not task.complete and not task.overdue(TODAY)


async def test_county_view_shows_the_numbers_a_chart_and_the_replies(tmp_path: Path) -> None:
    build_county(tmp_path / "c")
    store = Store.open(tmp_path / "c", PASSPHRASE)
    app = LiudongApp(tmp_path / "c", store=store, today=TODAY)
    async with app.run_test(size=(120, 48)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: app.current_mode == "county")
        await pilot.pause()
        text = screen_text(app)
        lines: dict[str, list[str]] = {}  # the table's row of each org (the charts follow)
        for line in text.splitlines()[1:]:  # (the title line names the county too)
            words = line.split()
            if words and words[0] in ("光山县委", "城关村党支部", "东关村党支部", "十里村党支部"):
                lines.setdefault(words[0], words[1:])
        # members, out, in, pending, reported rate, contact due, lost, appraised
        assert lines["光山县委"][:7] == ["6", "4", "1", "2", "50%", "1", "2"]
        assert lines["城关村党支部"][:7] == ["3", "2", "0", "1", "50%", "1", "0"]
        assert lines["东关村党支部"][:7] == ["2", "1", "0", "0", "100%", "0", "2"]
        assert lines["十里村党支部"][:7] == ["1", "1", "1", "1", "0%", "0", "0"]
        # appraised, attended (M-3.2), the dues ledger's balance (M-5.3)
        assert lines["光山县委"][7:10] == ["100%", "50%", "750"]
        assert lines["十里村党支部"][7:10] == ["—", "—", "0"]
        assert "█" in text  # the bar charts
        assert "开展流动党员集中排查" in text and "1/3" in text
        assert "已排查 3 人" in text and "未回复" in text


async def test_m5_1_the_county_view_fits_eighty_columns(tmp_path: Path) -> None:
    """At 80×24 every heading shows, each row ends with its ledger balance, and the names of
    branches two levels down still show whole."""
    build_county(tmp_path / "c")
    store = Store.open(tmp_path / "c", PASSPHRASE)
    app = LiudongApp(tmp_path / "c", store=store, today=TODAY)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: app.current_mode == "county")
        await pilot.pause()
        text = screen_text(app)
    header = next(line for line in text.splitlines() if "报到率" in line)
    for heading in ("组织", "党员", "流出", "流入", "待报到", "报到率", "应联系", "失联", "评议率",
                    "参会率", "经费"):
        assert heading in header, heading
    county_row = next(line for line in text.splitlines() if line.split()[:1] == ["光山县委"])
    assert county_row.split()[-3:] == ["100%", "50%", "750"]
    assert any(line.split()[:2] == ["城关村党支部", "3"] for line in text.splitlines())
    assert "开展流动党员集中排查" in text  # the tasks still have room below


async def test_a_branch_sees_its_own_row_and_the_tasks_sent_to_it(tmp_path: Path) -> None:
    ids = build_branch(tmp_path / "s")
    store = Store.open(tmp_path / "s", PASSPHRASE)
    own = str(store.meta["own_org_id"])
    county = new_ulid()
    task = new_ulid()
    sync_orgs(store, [(county, {"name": "光山县委", "kind": "county"})])
    hlc = Hlc(store.meta["hlc"]).now()
    store.commit({"k": "sync", "acked": store.meta["dev_seq"], "applied": [], "aliases": {},
                  "changes": [{"id": task, "t": "task", "v": 2, "c": hlc, "u": hlc, "f": {
                      "issued_by_org_id": county, "target_org_ids": [own],
                      "title": "报送流动党员名册", "due_on": "2026-12-10"}}],
                  "removes": [], "rejected": [], "cursor": 2, "epoch": "e1",
                  "synced_at": int(time.time())})
    opened: list[tuple[str, dict[str, Any]]] = []
    app = LiudongApp(tmp_path / "s", store=store, today=TODAY)
    async with app.run_test(size=(100, 30)) as pilot:
        import tui.forms

        original = tui.forms.open_form
        tui.forms.open_form = lambda app, action, **ctx: opened.append((action, ctx))
        try:
            await pilot.press("5")
            await wait_for(pilot, lambda: app.current_mode == "county")
            await pilot.pause()
            text = screen_text(app)
            assert "报送流动党员名册" in text and "来自 光山县委" in text
            row = next(line.split() for line in text.splitlines()[1:]
                       if line.split() and line.split()[0] == "城关村党支部")
            assert row[1:6] == ["4", "2", "1", "1", "50%"]  # 陈七's home is elsewhere
            await pilot.press("enter")
            assert opened == [("new_record", {"type_name": "task_reply", "task_id": task,
                                              "org_id": own})]
            reply = store.put("task_reply", {"task_id": task, "org_id": own, "status": "done",
                                             "note": "已报送", "done_on": "2026-12-02"})
            app.screen.refresh_data()
            await pilot.pause()
            assert "已报送" in screen_text(app)
            await pilot.press("enter")
            assert opened[-1] == ("edit_record", {"rec_id": reply})
        finally:
            tui.forms.open_form = original
    assert ids


def test_bars_are_drawn_to_an_eighth_of_a_cell() -> None:
    assert bar(0, 10, 8) == ""
    assert bar(10, 10, 8) == "█" * 8
    assert bar(5, 10, 8) == "█" * 4
    assert bar(1, 16, 8) == "▌"
    assert bar(0.001, 10, 8) == "▏"  # never nothing for a positive value
