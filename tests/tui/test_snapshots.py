"""Snapshots of the main screens at 80×24, in Chinese (pytest-textual-snapshot). A change to
what a screen shows fails here until a person has looked at it: update with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and read the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store import Store, register
from tests.conftest import PASSPHRASE, create_store, make_id_number
from tests.tui.conftest import TODAY

pytestmark = pytest.mark.usefixtures("chinese")


@pytest.fixture
def chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIUDONG_LANG", "zh")


def build(path: Path) -> dict[str, str]:
    """A small branch with something in every section, all dated before TODAY."""
    store, _ = create_store(path)
    ids: dict[str, str] = {}
    with store:
        own = store.meta["own_org_id"]
        people = (("张三", "male"), ("李四", "male"), ("王芳", "female"), ("赵丽", "female"),
                  ("刘洋", "male"), ("陈静", "female"))
        for n, (name, _) in enumerate(people):
            ids[name] = register.add_member(store, {
                "name": name, "id_number": make_id_number(seq=41 + n, birth=f"19{80 + n}0315"),
                "phone": f"1390013{n:04d}", "joined_on": "2010-07-01"})
        ids["flow 张三"] = register.flow_out(store, ids["张三"], {
            "left_on": "2026-09-01", "reason": "work", "external_host": "南山区科技园综合党委"})
        ids["flow 李四"] = register.flow_out(store, ids["李四"], {
            "left_on": "2026-05-10", "reason": "work", "external_host": "杭州市西湖区某商会党委",
            "reported_on": "2026-05-20", "home_contact": "周书记"})
        register.log_contact(store, ids["李四"], {"on": "2026-11-20", "channel": "wechat",
                                                  "reached": True, "summary": "工作稳定"})
        ids["arrived"], _ = register.flow_in(store, {
            "name": "孙明", "external_home_org": "某县某村党支部"},
            {"left_on": "2026-10-01", "reason": "work", "reported_on": "2026-10-08"})
        store.put("meeting", {"org_id": own, "kind": "theme_day", "held_on": "2026-11-15",
                              "topic": "学习党章", "attendee_ids": [
                                  ids["王芳"], ids["赵丽"], ids["刘洋"], ids["arrived"]]})
    return ids


def make_app(tmp_path: Path) -> tuple[Any, dict[str, str]]:
    from tui.app import LiudongApp

    ids = build(tmp_path / "store")
    store = Store.open(tmp_path / "store", PASSPHRASE)
    return LiudongApp(tmp_path / "store", store=store, today=TODAY), ids


def settle(condition: Callable[[Any], bool]) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        import time

        end = time.monotonic() + 10
        while not condition(pilot.app) and time.monotonic() < end:
            await pilot.pause(0.02)
        await pilot.pause()
    return run_before


def worklist_ready(app: Any) -> bool:
    return app.current_mode == "worklist" and getattr(app.screen, "computed", 0) >= 1


def test_worklist(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle(worklist_ready))


def test_members_list_filtered_by_initials(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)

    async def run_before(pilot: Any) -> None:
        await settle(worklist_ready)(pilot)
        await pilot.press("2")
        await settle(lambda a: a.current_mode == "members")(pilot)
        await pilot.press("slash", "z")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_member_page(snap_compare: Any, tmp_path: Path) -> None:
    app, ids = make_app(tmp_path)

    async def run_before(pilot: Any) -> None:
        from tui.screens.member import MemberScreen

        await settle(worklist_ready)(pilot)
        await pilot.press("2")
        await settle(lambda a: a.current_mode == "members")(pilot)
        pilot.app.push_screen(MemberScreen(ids["李四"]))
        await settle(lambda a: isinstance(a.screen, MemberScreen))(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_flows(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)

    async def run_before(pilot: Any) -> None:
        await settle(worklist_ready)(pilot)
        await pilot.press("3")
        await settle(lambda a: a.current_mode == "flows")(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_meetings(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)

    async def run_before(pilot: Any) -> None:
        await settle(worklist_ready)(pilot)
        await pilot.press("4")
        await settle(lambda a: a.current_mode == "meetings")(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_add_member_form_refusing_a_bad_id_number(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)

    async def run_before(pilot: Any) -> None:
        await settle(worklist_ready)(pilot)
        await pilot.press("2")
        await settle(lambda a: a.current_mode == "members")(pilot)
        await pilot.press("n")
        await settle(lambda a: a.screen.__class__.__name__ == "FormScreen")(pilot)
        await pilot.press(*"王小明", "tab", *"110101199003071234", "tab")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)

    async def run_before(pilot: Any) -> None:
        await settle(worklist_ready)(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_unlock(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.app import LiudongApp

    build(tmp_path / "store")
    monkeypatch.chdir(tmp_path)  # the screen shows the store's path: the same in every run
    app = LiudongApp(Path("store"), today=TODAY)

    async def run_before(pilot: Any) -> None:
        await pilot.press(*"wrong passphrase", "enter")
        await settle(lambda a: "口令不对" in "\n".join(
            s.text for s in a.screen._compositor.render_strips()))(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


