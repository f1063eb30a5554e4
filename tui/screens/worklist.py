"""Worklist (1), the home screen: what is due today, grouped by kind and counted, each row one
key away from its record (DESIGN §2.3; the rules are in store/rules.py)."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.widgets import Static
from textual.worker import get_current_worker

from tui.output import t
from tui.screens.base import Page
from tui.widgets.record_list import Column, ListHeader, RecordList

COLUMNS = (
    Column("起始", "since", 10),
    Column("依据", "policy", 6),
    Column("事项", "item", 0),  # the last column takes the rest of the width
)
GROUP = "§"


def compute(store: Any, today: Any) -> list[Any]:
    from store.rules import worklist

    return worklist(store, today)


class WorklistScreen(Page):
    SECTION = "worklist"
    AUTO_FOCUS = "RecordList"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", classes="hint")
        yield ListHeader(COLUMNS)
        yield RecordList(COLUMNS, self._cells,
                         empty=t("今天没有待办事项。", "Nothing is due today."))

    def on_mount(self) -> None:
        super().on_mount()
        self.items: dict[str, Any] = {}
        self.groups: dict[str, tuple[str, int, str]] = {}
        self.drafts: dict[str, dict[str, Any]] = {}
        self.computed = 0  # how many times the worklist was computed (tests wait on it)
        self.refresh_data()

    def refresh_data(self) -> None:
        self._compute(self.lapp.today_date())

    @work(thread=True, exclusive=True, group="worklist", exit_on_error=False)
    def _compute(self, today: Any) -> None:
        # The rules read the whole register (tens of ms at 20,000 members): off the UI thread,
        # on the store's immutable records; the newest request wins (exclusive).
        store = self.app.store  # type: ignore[attr-defined]
        if store is None:
            return
        items = compute(store, today)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, items)

    def _show(self, items: list[Any]) -> None:
        from store.rules import KINDS

        by_kind: dict[str, list[Any]] = {}
        for item in items:
            by_kind.setdefault(item.kind, []).append(item)
        ids: list[str] = []
        self.items = {}
        self.groups = {}
        self.drafts = {}
        from tui.forms import drafts

        found = drafts(self.store)
        if found:
            # forms left unsaved (a crash, a closed window): first, they hold typed work
            self.groups[GROUP + "draft"] = (t("未保存的草稿", "Unsaved drafts"), len(found), "")
            ids.append(GROUP + "draft")
            for d in found:
                key = "draft:" + d["key"]
                self.drafts[key] = d
                ids.append(key)
        for kind, group in by_kind.items():
            zh, en, mandate = KINDS.get(kind, (kind, kind, ""))
            self.groups[GROUP + kind] = (t(zh, en), len(group), mandate)
            ids.append(GROUP + kind)
            for n, item in enumerate(group):
                key = f"{kind}:{n}:{item.rec_id}"
                self.items[key] = item
                ids.append(key)
        total = len(items)
        self.query_one("#summary", Static).update(
            t(f"待办 {total} 项，{len(by_kind)} 类 · 回车打开记录",
              f"{total} items due, {len(by_kind)} kinds · enter opens the record")
            if total else t("今天没有待办事项。", "Nothing is due today."))
        self.query_one(RecordList).set_ids(ids)
        self.computed += 1

    def _cells(self, key: str) -> tuple[str, ...]:
        if key.startswith(GROUP):
            title, count, mandate = self.groups[key]
            heading = f"▸ {title}（{count}）" if t("zh", "en") == "zh" else f"▸ {title} ({count})"
            return (heading + (f"  {mandate}" if mandate else ""),)
        draft = self.drafts.get(key)
        if draft is not None:
            return (str(draft["saved_at"])[:10], "",
                    "  " + t("草稿：", "draft: ") + draft["title"])
        item = self.items[key]
        return (str(item.since or ""), str(item.mandate or ""), "  " + t(item.zh, item.en))

    def on_record_list_opened(self, event: RecordList.Opened) -> None:
        key = event.rec_id
        if key.startswith(GROUP):
            return
        if key in self.drafts:
            from tui.forms import open_draft

            open_draft(self.app, self.drafts[key]["key"])
            return
        open_item(self.app, self.items[key])


def open_item(app: Any, item: Any) -> None:
    """Open what a worklist item is about."""
    if item.kind in ("conflict", "rejected"):
        app.switch_mode("sync")
        return
    if item.kind.startswith("task"):
        app.switch_mode("county")
        return
    from tui.screens.member import MemberScreen

    member_id = item.member_id
    if member_id is None:
        doc = app.store.get(item.rec_id)
        member_id = doc.get("member_id") if doc else None
    if member_id:
        app.push_screen(MemberScreen(member_id))
