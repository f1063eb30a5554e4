"""The worklist screen follows the register: an edit that clears an item takes it off the list
(MANDATE M-1.2: a member away more than 30 days without reporting in)."""

from __future__ import annotations

from tests.tui.conftest import Branch, run_app, screen_text, wait_for


async def test_recording_the_report_in_clears_the_overdue_item(branch: Branch) -> None:
    store = branch.open()
    async with run_app(store, branch.path) as (app, pilot):
        worklist = app.screen
        await wait_for(pilot, lambda: worklist.computed >= 1)
        assert "逾期未报到（1）" in screen_text(app)
        before = len(worklist.items)
        overdue = [k for k, item in worklist.items.items() if item.kind == "report_overdue"]
        assert len(overdue) == 1 and worklist.items[overdue[0]].member_id == branch.ids["张三"]

        records = worklist.query_one("RecordList")
        records.cursor = records.ids.index(overdue[0])
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MemberScreen")
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "FormScreen")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MemberScreen")
        flow = store.get(branch.ids["flow 张三"])
        assert flow["status"] == "reported" and flow["reported_on"] == "2026-12-03"

        await pilot.press("1")
        await wait_for(pilot, lambda: app.current_mode == "worklist")
        await wait_for(pilot, lambda: not any(i.kind == "report_overdue"
                                              for i in worklist.items.values()))
        assert len(worklist.items) == before - 1
        assert "逾期未报到" not in screen_text(app)
