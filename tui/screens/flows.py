"""Flows (3): every flow this organization sees, the open ones first (the longest away at the
top), filtered by status (`a` all, `p` pending report, `r` reported, `d` ended) and by the
member's name, pinyin or initials (`/`). The direction is the flow as this organization sees it
(DESIGN §2.2): outflow where it left from, inflow where it is hosted. Enter opens the member."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from store.search import filter_ids
from tui.output import t
from tui.screens.base import ListPage
from tui.view import label, org_name
from tui.widgets.record_list import Column, RecordList

COLUMNS = (
    Column("姓名", "name", 10),
    Column("方向", "dir.", 4),
    Column("外出日期", "left on", 10),
    Column("状态", "status", 8),
    Column("报到日期", "reported", 10),
    Column("外出天数", "days", 8),
    Column("流入/流出地", "host / home", 22),  # the last column takes what is left
)

# filter key → (status shown, or None for all; Chinese label, English label)
FILTERS: dict[str, tuple[str | None, str, str]] = {
    "all": (None, "全部", "all"),
    "pending_report": ("pending_report", "待报到", "pending report"),
    "reported": ("reported", "已报到", "reported"),
    "ended": ("ended", "已结束", "ended"),
}
FILTER_KEYS = {"all": "a", "pending_report": "p", "reported": "r", "ended": "d"}
STATUS_ORDER = {"pending_report": 0, "reported": 1, "ended": 2}


def direction(flow: dict[str, Any], subtree: set[str]) -> str:
    """``outflow`` when the flow left from this organization's subtree, ``inflow`` when it is
    hosted in it (a county above both sees the outflow first, as ``member_mobility`` does)."""
    if flow.get("home_org_id") in subtree:
        return "outflow"
    if flow.get("host_org_id") in subtree:
        return "inflow"
    return ""


def flow_order(store: Any) -> list[str]:
    """Live flow ids: open ones first (pending report, then reported), each by date left, the
    oldest first; then the ended ones, the latest ended first."""
    flows = list(store.live("flow"))
    open_ = [f for f in flows if f.get("status") != "ended"]
    ended = [f for f in flows if f.get("status") == "ended"]
    open_.sort(key=lambda f: (STATUS_ORDER.get(str(f.get("status")), 0),
                              str(f.get("left_on") or ""), f["id"]))
    ended.sort(key=lambda f: (str(f.get("ended_on") or f.get("left_on") or ""), f["id"]),
               reverse=True)
    return [f["id"] for f in open_ + ended]


def flow_row(store: Any, flow_id: str, subtree: set[str], today: dt.date) -> tuple[str, ...]:
    f = store.get(flow_id, include_deleted=True)
    if f is None:
        return ("?",)
    member = store.get(str(f.get("member_id") or ""), include_deleted=True) or {}
    way = direction(f, subtree)
    if way == "inflow":
        other = org_name(store, member.get("home_org_id") or f.get("home_org_id"),
                         str(member.get("external_home_org") or ""))
    else:
        other = org_name(store, f.get("host_org_id"), str(f.get("external_host") or ""))
        other = other or str(f.get("destination_address") or "") or t("去向待定", "host unknown")
    days = ""
    if f.get("status") != "ended" and f.get("left_on"):
        days = str((today - dt.date.fromisoformat(str(f["left_on"]))).days)
    return (str(member.get("name") or "?"),
            {"outflow": t("流出", "out"), "inflow": t("流入", "in")}.get(way, ""),
            str(f.get("left_on") or ""), label("flow", "status", f.get("status")),
            str(f.get("reported_on") or ""), days, other)


class FlowsScreen(ListPage):
    SECTION = "flows"
    BINDINGS = [
        Binding("a", "show('all')", t("全部", "All")),
        Binding("p", "show('pending_report')", t("待报到", "Pending")),
        Binding("r", "show('reported')", t("已报到", "Reported")),
        Binding("d", "show('ended')", t("已结束", "Ended")),
    ]
    COLUMNS = COLUMNS
    SEARCH_HINT = ("搜索党员：姓名、拼音、首字母（按 / ）",
                   "search members: name, pinyin, initials (press /)")
    EMPTY = ("没有符合的流动登记", "no flow matches")
    HINT_ID = "filters"

    def on_mount(self) -> None:
        self.status_filter = "all"
        super().on_mount()

    def row(self, flow_id: str) -> tuple[str, ...]:
        return flow_row(self.store, flow_id, self.store.state.own_subtree(),
                        self.lapp.today_date())

    def order(self) -> list[str]:
        if self._order is None:
            self._order = flow_order(self.store)
        return self._order

    def visible_ids(self) -> list[str]:
        """The flows shown: by status filter, then by the members the search finds."""
        store = self.store
        status = FILTERS[self.status_filter][0]
        ids = self.order()
        if status is not None:
            # the store's query layer (TinyDB): toggling between filters hits its cache
            from tinydb import Query

            matched = {d["id"] for d in store.query("flow", Query().status == status)}
            ids = [i for i in ids if i in matched]
        query = self.search_text
        if query:
            members = set(filter_ids(store.state.search, query))
            ids = [i for i in ids if (store.get(i) or {}).get("member_id") in members]
        return ids

    def refilter(self, keep: str | None = None) -> None:
        ids = self.visible_ids()
        self.query_one(RecordList).set_ids(ids, keep)
        counts = {key: 0 for key in FILTERS}
        for flow_id in self.order():
            counts["all"] += 1
            status = str((self.store.get(flow_id) or {}).get("status"))
            if status in counts:
                counts[status] += 1
        line = Text(" ")
        for key, (_status, zh, en) in FILTERS.items():
            text = f" {FILTER_KEYS[key]} {t(zh, en)} {counts[key]} "
            line.append(text, style="reverse bold" if key == self.status_filter else "")
            line.append(" ")
        if self.search_text:
            line.append(t(f"  搜索到 {len(ids)} 条", f"  {len(ids)} found"), style="italic")
        self.query_one("#filters", Static).update(line)

    def refresh_data(self) -> None:
        self._cache.clear()
        self._order = None
        self.refilter()
        self.query_one(RecordList).redraw()

    # -- events --------------------------------------------------------------------------------
    def on_record_list_opened(self, event: RecordList.Opened) -> None:
        from tui.screens.member import MemberScreen

        flow = self.store.get(event.rec_id)
        if flow is not None and flow.get("member_id"):
            self.app.push_screen(MemberScreen(str(flow["member_id"])))

    def action_show(self, status: str) -> None:
        self.status_filter = status
        self.refilter()

