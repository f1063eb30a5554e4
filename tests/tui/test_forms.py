"""Forms (Pilot, headless, real encrypted stores): each journey types as a person would, key by
key, and asserts on what the store holds afterwards and on what the screen says."""

from __future__ import annotations

from typing import Any

from store import register
from store.schema import TYPES
from tests.conftest import make_id_number
from tests.tui.conftest import Branch, run_app, screen_text, wait_for
from tui.forms import ACTIONS, build, drafts, form_fields, open_draft, open_form
from tui.screens.confirm import ConfirmScreen
from tui.screens.form import FormScreen, TypePickScreen

TODAY_ISO = "2026-12-03"


def form(app: Any) -> FormScreen:
    assert isinstance(app.screen, FormScreen), type(app.screen).__name__
    return app.screen


async def form_ready(app: Any, pilot: Any) -> None:
    """Wait for a form to show with its first field focused (keys before that go nowhere)."""
    await wait_for(pilot, lambda: isinstance(app.screen, FormScreen)
                   and app.screen.focused is not None)
    await pilot.pause()


def error_under(app: Any, key: str) -> str:
    from textual.widgets import Static

    error = form(app).query_one("#err-" + key.replace(".", "-"), Static)
    return str(error.render()) if error.has_class("-shown") else ""


async def open_member_page(app: Any, pilot: Any, member_id: str) -> None:
    from tui.screens.member import MemberScreen

    await pilot.press("2")
    await wait_for(pilot, lambda: app.current_mode == "members")
    app.push_screen(MemberScreen(member_id))
    await wait_for(pilot, lambda: isinstance(app.screen, MemberScreen))


async def test_add_a_member_typed_key_by_key_a_bad_id_number_is_refused_under_the_field(
        branch: Branch, notifications: list[str]) -> None:
    good = make_id_number("330106", "19900101", 42)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    async with run_app(branch.open(), branch.path) as (app, pilot):
        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_mode == "members")
        await pilot.press("n")
        await form_ready(app, pilot)
        assert form(app).focused is form(app).field("name")
        await pilot.press(*"赵小红", "enter")
        assert form(app).field("name").get_raw() == "赵小红"
        assert form(app).focused is form(app).field("id_number")
        await pilot.press(*bad, "enter")
        assert "校验位不正确" in error_under(app, "id_number")
        assert "校验位不正确" in screen_text(app)
        # Saving anyway is refused, and nothing is written.
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, FormScreen)
        assert "校验位不正确" in error_under(app, "id_number")
        assert not [m for m in app.store.live("member") if m["name"] == "赵小红"]
        # Fix the check character: the message goes as soon as the number is right.
        form(app).field("id_number").focus()  # type: ignore[attr-defined]
        await pilot.press("end", "backspace", good[-1])
        assert error_under(app, "id_number") == ""
        await pilot.press("enter", *"13912345678", "ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        found = [m for m in app.store.live("member") if m["name"] == "赵小红"]
        assert len(found) == 1
        member = found[0]
        assert member["id_number"] == good and member["phone"] == "13912345678"
        assert member["birth_date"] == "1990-01-01"  # from the ID number
        assert member["home_org_id"] == app.store.meta["own_org_id"]
        assert "已保存：赵小红 新增党员" in notifications
        assert drafts(app.store) == []


async def test_outflow_report_in_and_contact_from_a_member_page(branch: Branch) -> None:
    lisi, zhangsan = branch.ids["李四"], branch.ids["张三"]
    async with run_app(branch.open(), branch.path) as (app, pilot):
        store = app.store
        # o: register 李四's outflow — the date is today already; 1 picks 务工经商.
        await open_member_page(app, pilot, lisi)
        await pilot.press("o")
        await form_ready(app, pilot)
        assert form(app).field("left_on").get_raw() == TODAY_ISO
        await pilot.press("enter", "1")  # reason: the digit picks and moves on
        assert form(app).field("reason").get_raw() == "work"
        await pilot.press("enter", *"宝安区新桥街道党委", "ctrl+s")  # past the host org
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        flow = register.open_flow(store, lisi)
        assert flow is not None
        assert (flow["left_on"], flow["reason"], flow["external_host"], flow["status"]) == (
            TODAY_ISO, "work", "宝安区新桥街道党委", "pending_report")

        # r: 张三 reported in to his host (outside the system, so the home side records it).
        app.pop_screen()
        await open_member_page(app, pilot, zhangsan)
        await pilot.press("r")
        await form_ready(app, pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        flow = store.get(branch.ids["flow 张三"])
        assert flow is not None and flow["status"] == "reported"
        assert flow["reported_on"] == TODAY_ISO

        # c: a contact by WeChat (2), reached (y), with a summary typed in Chinese (Pilot
        # cannot press full-width punctuation such as ，: it names keys by Unicode name).
        await pilot.press("c")
        await form_ready(app, pilot)
        await pilot.press("enter", "2", "y", *"工作稳定已参加组织生活", "ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        contacts = store.state.records_of(zhangsan, "contact")
        assert len(contacts) == 1
        contact = contacts[0]
        assert (contact["on"], contact["channel"], contact["reached"], contact["summary"],
                contact["flow_id"]) == (TODAY_ISO, "wechat", True, "工作稳定已参加组织生活",
                                        branch.ids["flow 张三"])
        # the member page shows it
        assert "工作稳定" in screen_text(app)


async def test_a_required_choice_left_empty_is_named_under_its_field(branch: Branch) -> None:
    async with run_app(branch.open(), branch.path) as (app, pilot):
        open_form(app, "log_contact", member_id=branch.ids["王五"])
        await form_ready(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "「方式」为必填项" in error_under(app, "channel")
        assert "「已联系上」为必填项" in error_under(app, "reached")
        assert "未保存" in screen_text(app)
        assert store_contacts(app, branch.ids["王五"]) == []
        # picking the channel clears its message
        form(app).field("channel").focus()  # type: ignore[attr-defined]
        await pilot.press("1")
        assert error_under(app, "channel") == ""


async def test_what_the_store_refuses_shows_under_the_field_or_at_the_top(
        branch: Branch) -> None:
    async with run_app(branch.open(), branch.path) as (app, pilot):
        taken = (app.store.get(branch.ids["李四"]) or {})["id_number"]
        open_form(app, "add_member")
        await form_ready(app, pilot)
        await pilot.press(*"李思", "enter", *taken, "ctrl+s")
        await pilot.pause()
        assert "已登记：党员 李四" in error_under(app, "id_number")  # the register's own rule
        assert len(list(app.store.live("member"))) == 3
        form(app).dismiss(None)
        await pilot.pause()
        # 张三 is away already: the action is refused as a whole, the reason at the top
        open_form(app, "flow_out", member_id=branch.ids["张三"])
        await form_ready(app, pilot)
        await pilot.press("enter", "1", "ctrl+s")
        await pilot.pause()
        assert "已有未结束的流动登记" in str(form(app).query_one("#form-summary").render())
        assert len(app.store.state.records_of(branch.ids["张三"], "flow")) == 1


async def test_a_form_opened_without_a_member_asks_for_one(branch: Branch) -> None:
    from tui.screens.form import MemberPickScreen

    async with run_app(branch.open(), branch.path) as (app, pilot):
        open_form(app, "log_contact")  # as the palette does, from the worklist
        await wait_for(pilot, lambda: isinstance(app.screen, MemberPickScreen))
        await pilot.pause()
        await pilot.press("w", "w")
        await pilot.pause()
        assert "王五" in screen_text(app)
        await pilot.press("enter")
        await form_ready(app, pilot)
        assert "记录联系 · 王五" in screen_text(app)


def store_contacts(app: Any, member_id: str) -> list[Any]:
    return list(app.store.state.records_of(member_id, "contact"))


async def test_esc_on_a_changed_form_asks_and_no_keeps_the_form(branch: Branch) -> None:
    async with run_app(branch.open(), branch.path) as (app, pilot):
        open_form(app, "add_member")
        await form_ready(app, pilot)
        await pilot.press(*"孙八")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "放弃修改？" in screen_text(app)
        await pilot.press("n")
        await form_ready(app, pilot)
        assert form(app).field("name").get_raw() == "孙八"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not isinstance(app.screen, (FormScreen, ConfirmScreen)))
        assert drafts(app.store) == []
        assert not [m for m in app.store.live("member") if m["name"] == "孙八"]
        # an unchanged form closes without asking
        open_form(app, "add_member")
        await form_ready(app, pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))


async def test_a_draft_survives_a_closed_window_and_is_restored(
        branch: Branch, notifications: list[str]) -> None:
    number = make_id_number("330106", "19881212", 57)
    async with run_app(branch.open(), branch.path) as (app, pilot):
        open_form(app, "add_member")
        await form_ready(app, pilot)
        await pilot.press(*"钱七", "enter", *number, "enter", *"13700001111")
        # the window closes before the draft's timer ran: leaving keeps it anyway
        await app.action_quit()
    store = branch.open()
    try:
        kept = drafts(store)
        assert [d["action"] for d in kept] == ["add_member"]
        assert "新增党员" in kept[0]["title"]
        async with run_app(store, branch.path) as (app, pilot):
            open_draft(app, kept[0]["key"])
            await form_ready(app, pilot)
            assert "已恢复未保存的草稿" in notifications
            fields = form(app)
            assert fields.field("name").get_raw() == "钱七"
            assert fields.field("id_number").get_raw() == number
            assert fields.field("phone").get_raw() == "13700001111"
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
            assert [m["id_number"] for m in store.live("member") if m["name"] == "钱七"] == [
                number]
            assert drafts(store) == []
    finally:
        store.close()


async def test_a_draft_is_written_a_moment_after_typing_stops(branch: Branch) -> None:
    async with run_app(branch.open(), branch.path) as (app, pilot):
        open_form(app, "log_contact", member_id=branch.ids["张三"])
        await form_ready(app, pilot)
        await pilot.press("tab", "tab", "tab", *"电话未接通")
        assert drafts(app.store) == []
        await wait_for(pilot, lambda: drafts(app.store), timeout=5)
        (draft,) = app.store.meta["drafts"].values()
        assert draft["values"] == {"summary": "电话未接通"}
        assert draft["ctx"] == {"member_id": branch.ids["张三"]}
        # the same form opened again (the same member) comes back with it
        form(app).dismiss(None)
        await pilot.pause()
        open_form(app, "log_contact", member_id=branch.ids["张三"])
        await form_ready(app, pilot)
        assert form(app).field("summary").get_raw() == "电话未接通"


async def test_an_inflow_of_a_newcomer_from_outside(branch: Branch) -> None:
    async with run_app(branch.open(), branch.path) as (app, pilot):
        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_mode == "members")
        await pilot.press("i")
        await form_ready(app, pilot)
        await pilot.press("enter", *"周九", "enter", "enter", "enter", *"四川省苍溪县某村党支部",
                          "enter", *"2026-11-20", "enter", "1", "ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        (member,) = [m for m in app.store.live("member") if m["name"] == "周九"]
        assert member["external_home_org"] == "四川省苍溪县某村党支部"
        flow = register.open_flow(app.store, member["id"])
        assert flow is not None
        assert (flow["left_on"], flow["reason"], flow["reported_on"], flow["status"],
                flow["host_org_id"]) == ("2026-11-20", "work", TODAY_ISO, "reported",
                                         app.store.meta["own_org_id"])


async def test_add_a_record_of_another_type_through_the_picker(branch: Branch) -> None:
    async with run_app(branch.open(), branch.path) as (app, pilot):
        await open_member_page(app, pilot, branch.ids["王五"])
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TypePickScreen))
        study = 1 + list(("contact", "flow", "study")).index("study")
        await pilot.press(str(study))
        await form_ready(app, pilot)
        assert "新增学习记录 · 王五" in screen_text(app)
        await pilot.press("enter", "2", *"党的二十届三中全会精神", "enter", *"2.5", "ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        (study_rec,) = app.store.state.records_of(branch.ids["王五"], "study")
        assert (study_rec["on"], study_rec["kind"], study_rec["topic"], study_rec["hours"]) == (
            TODAY_ISO, "online", "党的二十届三中全会精神", 2.5)


async def test_editing_sends_only_what_changed_and_never_shows_the_id_number(
        branch: Branch) -> None:
    async with run_app(branch.open(), branch.path) as (app, pilot):
        member_id = branch.ids["李四"]
        before = dict(app.store.get(member_id) or {})
        open_form(app, "edit_member", member_id=member_id)
        await form_ready(app, pilot)
        assert before["id_number"] not in screen_text(app)
        assert form(app).field("id_number").get_raw() is None
        form(app).field("phone").focus()  # type: ignore[attr-defined]
        await pilot.press(*"13911112222")  # select-on-focus: typing replaces
        assert form(app).store_values() == {"phone": "13911112222"}
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        after = app.store.get(member_id) or {}
        assert after["phone"] == "13911112222"
        assert after["id_number"] == before["id_number"]


async def test_every_record_type_has_a_form_that_fits_80_by_24(branch: Branch) -> None:
    async with run_app(branch.open(), branch.path, size=(80, 24)) as (app, pilot):
        for type_name in TYPES:
            if type_name in ("org", "conflict", "member", "flow", "contact"):
                continue
            ctx = {"type_name": type_name}
            if "member_id" in TYPES[type_name].by_name:
                ctx["member_id"] = branch.ids["王五"]
            open_form(app, "new_record", **ctx)
            await form_ready(app, pilot)
            text = screen_text(app)
            for f in form_fields(type_name, editing=False, set_by_action=("member_id",)):
                assert f.zh in text, (type_name, f.name)
            assert "保存" in text
            form(app).dismiss(None)
            await pilot.pause()


def test_the_palette_titles_and_the_forms_agree(branch: Branch) -> None:
    assert set(ACTIONS) >= {"add_member", "edit_member", "flow_out", "flow_in", "report_in",
                            "end_flow", "log_contact", "new_record", "pick_record"}

    class FakeApp:
        store = branch.open()

        @staticmethod
        def today_date() -> Any:
            from tests.tui.conftest import TODAY

            return TODAY

    try:
        spec = build(FakeApp, "flow_out", {"member_id": branch.ids["李四"]})
        assert [s.key for s in spec.slots][:2] == ["left_on", "reason"]
        assert not {"member_id", "status", "home_org_id"} & {s.key for s in spec.slots}
        spec = build(FakeApp, "edit_record", {"rec_id": branch.ids["flow 张三"]})
        assert not {"member_id", "home_org_id"} & {s.key for s in spec.slots}  # fixed
        assert spec.slots[0].required
    finally:
        FakeApp.store.close()
