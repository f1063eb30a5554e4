"""Journeys through the interface (Pilot, headless), on real encrypted stores: unlock, first
start, finding a member by initials, opening a member's page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from store import TEST_KDF, Store, register
from tests.conftest import PASSPHRASE, create_store, make_id_number
from tests.tui.conftest import screen_text, wait_for
from tui.app import LiudongApp

TODAY = dt.date(2026, 12, 3)


def build(path: Path) -> dict[str, str]:
    store, _ = create_store(path)
    ids = {}
    with store:
        for n, (name, seq) in enumerate((("张三", 11), ("李四", 12), ("王五", 13),
                                        ("张珊珊", 14), ("赵六", 15))):
            ids[name] = register.add_member(store, {
                "name": name, "id_number": make_id_number(seq=seq),
                "phone": f"1380013{n:04d}"})
        register.flow_out(store, ids["张三"], {
            "left_on": "2026-09-01", "reason": "work", "external_host": "南山区科技园综合党委"})
    return ids


async def test_unlock_with_the_right_passphrase_shows_the_worklist(tmp_path: Path) -> None:
    build(tmp_path / "s")
    app = LiudongApp(tmp_path / "s", today=TODAY)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*PASSPHRASE, "enter")
        await wait_for(pilot, lambda: app.current_mode == "worklist")
        await pilot.pause()
        assert "城关村党支部" in screen_text(app)
        assert app.store is not None and app.store.meta.get("own_org_id")


async def test_a_wrong_passphrase_is_refused_and_may_be_typed_again(tmp_path: Path) -> None:
    build(tmp_path / "s")
    app = LiudongApp(tmp_path / "s", today=TODAY)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"not the passphrase", "enter")
        await wait_for(pilot, lambda: "口令不对" in screen_text(app))
        assert app.store is None
        await pilot.press(*PASSPHRASE, "enter")
        await wait_for(pilot, lambda: app.store is not None)


async def test_a_damaged_store_says_so_not_wrong_passphrase(tmp_path: Path) -> None:
    build(tmp_path / "s")
    snapshot = sorted((tmp_path / "s").glob("snapshot-*"))[-1]
    raw = bytearray(snapshot.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    snapshot.write_bytes(bytes(raw))
    app = LiudongApp(tmp_path / "s", today=TODAY)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press(*PASSPHRASE, "enter")
        await wait_for(pilot, lambda: "损坏" in screen_text(app))
        assert "口令不对" not in screen_text(app)
        assert app.store is None


async def test_the_recovery_key_opens_the_store(tmp_path: Path) -> None:
    store, recovery = Store.create(tmp_path / "s", PASSPHRASE, kdf=TEST_KDF,
                                   org={"name": "城关村党支部", "kind": "branch"})
    store.close()
    app = LiudongApp(tmp_path / "s", today=TODAY)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r", *recovery, "enter")
        await wait_for(pilot, lambda: app.store is not None)


async def test_first_start_creates_the_store_and_shows_the_recovery_key_once(
        tmp_path: Path) -> None:
    path = tmp_path / "new"
    app = LiudongApp(path, today=TODAY, kdf=TEST_KDF)
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "FirstStartScreen")
        await pilot.press(*"城关村党支部")
        app.screen.query_one("#pass1").focus()
        await pilot.press(*"short", "tab", *"short", "enter")
        await wait_for(pilot, lambda: "8" in screen_text(app) and "口令" in screen_text(app))
        assert not (path / "keyslots").exists()
        app.screen.query_one("#pass1").value = ""
        app.screen.query_one("#pass1").focus()
        await pilot.press(*PASSPHRASE, "tab", *PASSPHRASE, "enter")
        await wait_for(pilot, lambda: "恢复密钥只显示这一次" in screen_text(app))
        key = str(app.screen.query_one("#key").render())
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "worklist")
    assert app.store is None  # closed with the app
    with Store.open(path, recovery_key=key) as store:
        assert store.get(store.meta["own_org_id"])["name"] == "城关村党支部"


async def test_find_a_member_by_pinyin_initials_and_open_the_page(tmp_path: Path) -> None:
    ids = build(tmp_path / "s")
    store = Store.open(tmp_path / "s", PASSPHRASE)
    app = LiudongApp(tmp_path / "s", store=store, today=TODAY)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_mode == "members")
        records = app.screen.query_one("RecordList")
        await wait_for(pilot, lambda: len(records.ids) == 5)
        await pilot.press("slash", "z", "s")
        await pilot.pause()
        # initials match as a prefix: 张三 (zs) and 张珊珊 (zss), not 赵六 (zl) nor 王五
        assert set(records.ids) == {ids["张三"], ids["张珊珊"]}
        await pilot.press("s")
        await pilot.pause()
        assert records.ids == [ids["张珊珊"]]
        await pilot.press(*["backspace"] * 3, "z", "h", "a", "n", "g", "s", "a",
                          "n", "enter", "enter")
        assert records.ids[:1] == [ids["张三"]]
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MemberScreen")
        text = screen_text(app)
        assert "张三" in text and "南山区科技园综合党委" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MembersScreen")


@pytest.mark.parametrize("key, mode", [("1", "worklist"), ("3", "flows"), ("4", "meetings"),
                                       ("5", "county"), ("6", "sync"), ("2", "members")])
async def test_number_keys_switch_sections_but_type_into_a_search(tmp_path: Path, key: str,
                                                                  mode: str) -> None:
    build(tmp_path / "s")
    store = Store.open(tmp_path / "s", PASSPHRASE)
    app = LiudongApp(tmp_path / "s", store=store, today=TODAY)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2", "slash")
        await pilot.press(key)
        await pilot.pause()
        assert app.current_mode == "members"
        assert app.screen.query_one("#search").value == key
        await pilot.press("escape", key)
        await wait_for(pilot, lambda: app.current_mode == mode)


async def test_the_members_list_shows_every_edit_of_a_burst(tmp_path: Path) -> None:
    ids = build(tmp_path / "s")
    store = Store.open(tmp_path / "s", PASSPHRASE)
    app = LiudongApp(tmp_path / "s", store=store, today=TODAY)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_mode == "members")
        await wait_for(pilot, lambda: "13800130001" in screen_text(app))
        # two commits from another thread within one refresh (as a sync worker makes them)
        import threading

        def edit() -> None:
            store.put("member", {"phone": "13911112222"}, ids["李四"])
            store.put("member", {"phone": "13933334444"}, ids["王五"])

        worker = threading.Thread(target=edit)
        worker.start()
        worker.join()
        await wait_for(pilot, lambda: "13933334444" in screen_text(app))
        assert "13911112222" in screen_text(app)  # the first of the burst too
