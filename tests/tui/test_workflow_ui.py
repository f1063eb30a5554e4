"""The workflows in the interface (Pilot, headless, real encrypted stores): on a member's page
``t`` walks a transfer from its draft to the receipt and prints the letter (M-1.4), ``p`` takes a
probation decision (M-2.2c); the store refuses a step the state does not allow, under its field."""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader

from store.workflows import open_review
from tests.tui.conftest import Branch, run_app, screen_text, wait_for
from tests.tui.test_forms import TODAY_ISO, error_under, form, form_ready, open_member_page
from tui.screens.form import FormScreen, TypePickScreen


async def pick(app, pilot, label: str) -> None:  # type: ignore[no-untyped-def]
    """Choose ``label`` in the step chooser by its number, as a person would."""
    await wait_for(pilot, lambda: isinstance(app.screen, TypePickScreen))
    labels = [label_ for _, label_ in app.screen.choices]
    number = next(i for i, text in enumerate(labels, 1) if label in text)
    await pilot.press(str(number))


async def test_m1_4_issue_print_and_receive_a_transfer_from_the_member_page(
        branch: Branch, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    zhangsan = branch.ids["张三"]
    async with run_app(branch.open(), branch.path) as (app, pilot):
        store = app.store
        await open_member_page(app, pilot, zhangsan)
        await pilot.press("t")  # nothing under way: the draft's short form
        await form_ready(app, pilot)
        assert "起草组织关系转接 · 张三" in screen_text(app) and "回执日期" not in screen_text(app)
        form(app).field("to_org_text").focus()  # type: ignore[attr-defined]
        await pilot.press(*"深圳市南山区某党委", "ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        [draft] = store.state.records_of(zhangsan, "transfer")
        transfer = draft["id"]
        assert (draft["status"], draft["to_org_text"]) == ("draft", "深圳市南山区某党委")
        await pilot.press("t")
        await pick(app, pilot, "开具介绍信")
        await form_ready(app, pilot)
        await pilot.press("ctrl+s")  # the dues month is the person's to give
        await wait_for(pilot, lambda: bool(error_under(app, "dues_paid_until")))
        assert "必填" in error_under(app, "dues_paid_until")
        assert store.get(transfer)["status"] == "draft"
        form(app).field("dues_paid_until").focus()  # type: ignore[attr-defined]
        await pilot.press(*"202611", "ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        issued = store.get(transfer)
        assert (issued["status"], issued["dues_paid_until"], issued["issued_on"]) == (
            "issued", "2026-11", TODAY_ISO)

        await pilot.press("t")
        await pick(app, pilot, "打印介绍信")
        await form_ready(app, pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        [letter] = tmp_path.glob("介绍信-*.pdf")
        text = "".join(p.extract_text() for p in PdfReader(letter).pages).replace("\0", "")
        assert "张三" in text and issued["letter_no"] in text

        await pilot.press("t")
        await pick(app, pilot, "记录回执")
        await form_ready(app, pilot)
        assert "流动登记结束" in screen_text(app)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen))
        assert store.get(transfer)["status"] == "received"
        assert store.get(zhangsan)["archived"] == "transferred"
        assert store.get(branch.ids["flow 张三"])["end_reason"] == "transferred"


async def test_m2_2c_a_probation_decision_from_the_member_page(branch: Branch) -> None:
    lisi = branch.ids["李四"]
    with branch.open() as store:
        store.put("member", {"standing": "probationary", "joined_on": "2025-11-20",
                             "probation_ends_on": "2026-11-20"}, lisi)
        review = open_review(store, lisi)
    async with run_app(branch.open(), branch.path) as (app, pilot):
        await open_member_page(app, pilot, lisi)
        await pilot.press("p")
        await pick(app, pilot, "转正决定")
        await form_ready(app, pilot)
        await pilot.press("1", *"20261125", "ctrl+s")  # 按期转正, the meeting day; no approver
        await wait_for(pilot, lambda: bool(error_under(app, "approved_by_org_id")))
        assert app.store.get(lisi)["standing"] == "probationary"
        assert isinstance(app.screen, FormScreen)
        assert review and "必填" in error_under(app, "approved_on")
