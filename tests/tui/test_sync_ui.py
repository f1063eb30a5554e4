"""Sync in the interface (DESIGN §4): in the background against a real county server on
loopback, the status always visible, conflicts resolved in one key, refused writes shown.

Each test opens the app on a real encrypted store enrolled with the county by a one-time code;
the app's own worker thread syncs it over TCP (tests/tui/sync_fixtures.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import Store, register
from tests.conftest import PASSPHRASE, make_id_number
from tests.tui.conftest import screen_text, wait_for
from tests.tui.sync_fixtures import (
    LoopbackCounty,
    loopback_county,
    spy_notifications,
    status_line,
)
from tui.app import LiudongApp
from tui.output import mask_id, t
from tui.screens.sync import ConflictList, RejectedList
from tui.view import field_label

SIZE = (100, 30)
BUDGET = 0.5  # seconds within which a key's effect must show, however slow the county


@pytest.fixture
def county(tmp_path: Path) -> Iterator[LoopbackCounty]:
    with loopback_county(tmp_path) as c:
        yield c


def in_sync(app: LiudongApp) -> bool:
    return app.sync_status.phase == "synced" and not (app.sync_worker and app.sync_worker.running)


async def walk(pilot, app: LiudongApp) -> dict[str, float]:
    """Switch sections and type a search: seconds until each key's effect shows on screen."""
    latencies: dict[str, float] = {}

    async def key(name: str, effect, what: str) -> None:
        pressed = time.monotonic()
        await pilot.press(name)
        await wait_for(pilot, effect, timeout=3.0, what=what)
        latencies[what] = time.monotonic() - pressed

    assert app.store is not None
    total = sum(1 for _ in app.store.live("member"))
    found = len(app.store.search_members("zs"))
    await key("2", lambda: app.current_mode == "members" and "张珊珊" in screen_text(app),
              "2 members")
    await key("slash", lambda: getattr(app.screen.focused, "id", None) == "search", "/ search")
    await key("z", lambda: "z" in screen_text(app), "z")
    await key("s", lambda: t(f"{found} / {total} 名党员", f"{found} of {total} members")
              in screen_text(app) and "李四" not in screen_text(app), "s")
    await key("escape", lambda: getattr(app.screen.focused, "id", None) != "search"
              and "李四" in screen_text(app), "escape")
    await key("6", lambda: app.current_mode == "sync"
              and t("本设备", "this device") in screen_text(app), "6 sync")
    await key("1", lambda: app.current_mode == "worklist", "1 worklist")
    return latencies


def ms(latencies: dict[str, float]) -> str:
    return ", ".join(f"{k} {v * 1000:.0f}" for k, v in latencies.items())


async def test_the_interface_answers_keys_while_a_slow_sync_runs(
        county: LoopbackCounty) -> None:
    store = county.enrolled_store("laptop")
    for n, name in enumerate(("张三", "李四", "王五", "张珊珊", "赵六")):
        register.add_member(store, {"name": name, "phone": f"1380013{n:04d}"})
    app = LiudongApp(store.path, store=store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: in_sync(app), what="the first sync")
        assert app.store is not None and app.store.state.pending_count() == 0
        await walk(pilot, app)  # each section's screen made once (not what this test measures)
        idle = await walk(pilot, app)
        # the county now answers 3 s late; an edit waits to be sent
        county.asgi.delay = 3.0
        register.add_member(app.store, {"name": "钱七", "phone": "13800139999"})
        await pilot.pause(0.3)  # the screens have read the edit (their cost is not the sync's)
        started = time.monotonic()
        await pilot.press("f5")
        await wait_for(pilot, lambda: t("同步中", "syncing") in status_line(app),
                       timeout=2.0, what="the status line says syncing")
        busy = await walk(pilot, app)
        assert app.sync_worker.running and app.sync_status.phase == "syncing", \
            "every key above should have been pressed while the sync ran"
        print(f"\nms per key, idle: {ms(idle)}\nms per key, during a 3 s sync: {ms(busy)}")
        assert max(busy.values()) < BUDGET, ms(busy)
        await wait_for(pilot, lambda: in_sync(app), timeout=20, what="the slow sync ends")
        assert time.monotonic() - started >= 3.0
        assert app.sync_status.pending == 0
        await wait_for(pilot, lambda: t("● 已同步", "● in sync") in status_line(app), timeout=1)
    assert "钱七" in [county.record(m)["name"] for m in _member_ids(county)]


def _member_ids(county: LoopbackCounty) -> list[str]:
    from sqlalchemy import select

    from sync.server import db

    with db.read(county.engine) as conn:
        return [r.rec_id for r in conn.execute(
            select(db.records.c.rec_id).where(db.records.c.type == "member"))]


async def test_a_conflict_is_resolved_in_one_key_and_the_county_agrees(
        county: LoopbackCounty) -> None:
    a = county.enrolled_store("a")
    b = county.enrolled_store("b")
    member_id = register.add_member(a, {"name": "张三", "phone": "13800000001",
                                        "id_number": make_id_number(seq=11)})
    county.sync(a)
    county.sync(b)
    # both laptops change the phone and the ID number before either hears of the other
    register.edit_member(a, member_id, {"phone": "13800000002",
                                        "id_number": make_id_number(seq=21)})
    register.edit_member(b, member_id, {"phone": "13800000003",
                                        "id_number": make_id_number(seq=31)})
    county.sync(a)
    assert county.sync(b).conflicts == 2
    path = b.path
    app = LiudongApp(path, store=b)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: in_sync(app), what="the first sync")
        assert app.sync_status.conflicts == 2
        assert t("冲突 2", "conflicts 2") in status_line(app)
        await pilot.press("6")
        await wait_for(pilot, lambda: app.current_mode == "sync")
        await pilot.pause()
        shown = screen_text(app)
        assert "张三" in shown and t("手机号", "phone") in shown
        assert "13800000002" in shown
        assert t("13800000003（本机）", "13800000003 (this laptop)") in shown
        # ID numbers are masked on screen, both of them
        for seq in (21, 31):
            number = make_id_number(seq=seq)
            assert number not in shown and mask_id(number) in shown
        conflicts = app.screen.query_one(ConflictList)
        assert app.screen.focused is conflicts
        # the cursor to the phone's conflict; one key keeps the other laptop's value
        phone = next(cid for cid, c in app.screen.conflicts.items() if c["field"] == "phone")
        while conflicts.current_id != phone:
            await pilot.press("down")
        await pilot.press("1")
        await wait_for(pilot, lambda: phone not in conflicts.ids, timeout=2.0,
                       what="the row goes")
        assert app.store is not None
        assert app.store.get(phone)["status"] == "resolved"
        assert app.store.get(member_id)["phone"] == "13800000002"
        assert "13800000003" not in screen_text(app)
        # the ID number: → chooses this laptop's value, enter keeps it
        assert len(conflicts.ids) == 1
        await pilot.press("right", "enter")
        await wait_for(pilot, lambda: not conflicts.ids, timeout=2.0)
        assert app.store.get(member_id)["id_number"] == make_id_number(seq=31)
        assert app.sync_status.conflicts == 0 or await wait_for(
            pilot, lambda: app.sync_status.conflicts == 0, timeout=2) >= 0
        # with no conflict left, 1 is the worklist again
        await pilot.press("f5")
        await wait_for(pilot, lambda: in_sync(app) and app.sync_status.pending == 0,
                       what="the resolution is sent")
        await pilot.press("1")
        await wait_for(pilot, lambda: app.current_mode == "worklist", timeout=2.0)
    # the county agrees, and so does the other laptop after its next sync
    held = county.record(member_id)
    assert held["phone"] == "13800000002" and held["id_number"] == make_id_number(seq=31)
    county.sync(a)
    assert a.get(member_id)["phone"] == "13800000002"
    assert [c["status"] for c in a.live("conflict")] == ["resolved", "resolved"]
    reopened = Store.open(path, PASSPHRASE)
    try:
        assert [c["status"] for c in reopened.live("conflict")] == ["resolved", "resolved"]
        assert reopened.state.pending_count() == 0
    finally:
        reopened.close()


async def test_the_status_line_says_offline_then_in_sync(
        county: LoopbackCounty) -> None:
    store = county.enrolled_store("laptop")
    register.add_member(store, {"name": "张三"})
    county.stop()
    app = LiudongApp(store.path, store=store)
    async with app.run_test(size=SIZE) as pilot:
        told = spy_notifications(app)
        await wait_for(pilot, lambda: app.sync_status.phase == "offline", what="offline")
        assert t("● 离线", "● offline") in status_line(app)
        assert t("待发送 1", "pending 1") in status_line(app)
        assert t("● 离线", "● offline") in screen_text(app)
        assert not [m for severity, m in told if severity == "error"], told  # offline is normal
        # the next try waits (15 s after the first failure): f5 tries at once
        assert app.sync_worker.next_at is not None
        county.start()
        await pilot.press("f5")
        await wait_for(pilot, lambda: in_sync(app), what="in sync once the county is back")
        line = status_line(app)
        assert t("● 已同步", "● in sync") in line and t("待发送 0", "pending 0") in line
        assert t("发送 1 个操作", "sent 1 op(s)") in line
        assert not told, told


async def test_a_refused_write_is_shown_and_can_be_dismissed(
        county: LoopbackCounty) -> None:
    a1 = county.enrolled_store("a1")
    a2 = county.enrolled_store("a2")
    member_id = register.add_member(a1, {"name": "张三"})
    county.sync(a1)
    county.sync(a2)
    # both laptops of the branch register an outflow for the same member: the second to reach
    # the county is refused
    register.flow_out(a1, member_id, {"left_on": "2026-10-01", "reason": "work"})
    register.flow_out(a2, member_id, {"left_on": "2026-10-02", "reason": "study"})
    county.sync(a1)
    path = a2.path
    app = LiudongApp(path, store=a2)
    async with app.run_test(size=SIZE) as pilot:
        told = spy_notifications(app)
        await wait_for(pilot, lambda: in_sync(app), what="the sync that brings the refusal")
        assert app.sync_status.rejected == 1
        assert t("被拒 1", "rejected 1") in status_line(app)
        assert [s for s, _ in told] == ["warning"], told
        await pilot.press("6")
        await wait_for(pilot, lambda: app.current_mode == "sync")
        await pilot.pause()
        assert app.store is not None
        refusal = app.store.meta["rejected"][0]
        shown = screen_text(app)
        assert "张三" in shown and field_label("flow", "left_on") in shown
        assert t(refusal["zh"], refusal["en"])[:12] in shown
        rejected = app.screen.query_one(RejectedList)
        assert app.screen.focused is rejected  # no conflict: the refusals have the focus
        await pilot.press("d")
        await wait_for(pilot, lambda: not rejected.ids, timeout=2.0, what="dismissed")
        assert not app.store.meta.get("rejected")
        await wait_for(pilot, lambda: app.sync_status.rejected == 0, timeout=2)
        assert t("县里没有拒绝本机的修改", "refused none") in screen_text(app)
    reopened = Store.open(path, PASSPHRASE)
    try:
        assert not reopened.meta.get("rejected")
    finally:
        reopened.close()


async def test_an_edit_reaches_the_county_a_few_seconds_later(
        county: LoopbackCounty, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.sync_worker

    monkeypatch.setattr(tui.sync_worker, "DEBOUNCE", 1.0)
    store = county.enrolled_store("laptop")
    app = LiudongApp(store.path, store=store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: in_sync(app), what="the first sync")
        requests = county.asgi.requests
        assert app.store is not None
        member_id = register.add_member(app.store, {"name": "孙八"})
        await wait_for(pilot, lambda: app.sync_status.pending == 1, timeout=2,
                       what="the status line counts the edit")
        await wait_for(pilot, lambda: in_sync(app) and app.sync_status.pending == 0,
                       timeout=10, what="the edit is sent without f5")
        assert county.asgi.requests == requests + 1  # one sync, not one per poll
        assert county.record(member_id)["name"] == "孙八"


async def test_closing_the_app_mid_sync_stops_it_cleanly(
        county: LoopbackCounty, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app closes its store after the sync thread is done with it: a sync waiting on a
    county that answers very late is cut off after a few seconds, and nothing is lost."""
    import tui.sync_worker

    monkeypatch.setattr(tui.sync_worker, "STOP_WAIT", 1.0)
    store = county.enrolled_store("laptop")
    path = store.path
    app = LiudongApp(path, store=store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: in_sync(app), what="the first sync")
        county.asgi.delay = 60.0
        assert app.store is not None
        member_id = register.add_member(app.store, {"name": "周九"})
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.sync_worker.running, timeout=2.0)
        await pilot.pause(0.3)
        closing = time.monotonic()
    assert time.monotonic() - closing < 5.0
    assert app.store is None
    reopened = Store.open(path, PASSPHRASE)
    try:  # the edit is kept, still to be sent
        assert reopened.get(member_id)["name"] == "周九"
        assert reopened.state.pending_count() == 1
        county.asgi.delay = 0.0
        assert county.sync(reopened).sent == 1
    finally:
        reopened.close()


async def test_a_revoked_device_is_told_once_and_stops_syncing(
        county: LoopbackCounty) -> None:
    from sync.server.admin import revoke_device

    store = county.enrolled_store("laptop")
    app = LiudongApp(store.path, store=store)
    async with app.run_test(size=SIZE) as pilot:
        told = spy_notifications(app)
        await wait_for(pilot, lambda: in_sync(app), what="the first sync")
        revoke_device(county.engine, store.device_id)
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.sync_status.phase == "error", what="refused")
        assert t("● 同步出错", "● sync error") in status_line(app)
        errors = [m for severity, m in told if severity == "error"]
        assert len(errors) == 1 and t("已被县级管理员注销", "revoked") in errors[0]
        requests = county.asgi.requests
        await pilot.press("f5")
        await pilot.pause(0.5)
        assert county.asgi.requests == requests and not app.sync_worker.running
        assert len([m for severity, m in told if severity == "error"]) == 1
