"""Statistics and tasks (5): the county's work dispatch (M-5.1, M-5.4).

At a county or a committee: one row per organization of its subtree (outflow, inflow, the
share reported in, contacts due, lost contact, appraisal coverage for last year, attendance at
its meetings of the last year, the dues ledger's balance), computed on the spot by
store/stats.py (the code ``liudong admin stats`` runs on the county server), with bar charts
of outflow and of the reported-in rate; below, the tasks it sent down with each target's reply.
At a branch: its own row, and the tasks sent to it; enter answers a task (or corrects the
answer: mark it done with a note).
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from tui.county_stats import (
    COLUMNS,
    OrgStats,
    TaskView,
    is_upper,
    org_stats,
    percent,
    task_views,
    yuan,
)
from tui.output import t
from tui.screens.base import Page
from tui.view import label, org_name
from tui.widgets.chart import Bar, BarChart
from tui.widgets.record_list import Column, ListHeader, RecordList

TASK_COLUMNS = (
    Column("期限", "due", 11),
    Column("完成", "done", 5),
    Column("下发/接收", "from / to", 18),
    Column("任务", "task", 0),  # the last column takes the rest of the width
)
SCREEN_COLUMNS = tuple(c for c in COLUMNS if c[0] != "tasks_overdue")


def stats_table(rows: list[OrgStats]) -> Table:
    """The statistics as a rich table (CJK widths measured by rich): the columns of
    ``store.stats.COLUMNS`` but overdue tasks, which the task list below shows."""
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, padding=(0, 0),
                  show_edge=False)
    table.add_column(t("组织", "organization"), ratio=1, min_width=14, no_wrap=True,
                     overflow="ellipsis")
    for _, zh, en, _ in SCREEN_COLUMNS:
        table.add_column(t(zh, en), justify="right", no_wrap=True)
    for r in rows:
        name = " " * r.depth + r.name  # one column a level: the names need the room
        table.add_row(
            Text(name, style="bold" if r.depth == 0 else ""), str(r.members), str(r.outflow),
            str(r.inflow), Text(str(r.pending), style="yellow" if r.report_overdue else ""),
            percent(r.reported_rate), Text(str(r.contact_due), style="yellow" if r.contact_due
                                           else ""),
            Text(str(r.lost), style="bold red" if r.lost else ""),
            percent(r.appraisal_rate), percent(r.attendance_rate),
            Text(yuan(r.fund_balance), style="red" if r.fund_balance < 0 else ""))
    return table


def task_cells(store: Any, view: TaskView, today: Any) -> tuple[str, ...]:
    if view.sent:
        who = t(f"发往 {len(view.targets)} 个组织", f"to {len(view.targets)} orgs")
    else:
        who = t("来自 ", "from ") + org_name(store, view.issued_by_org_id)
    due = view.due_on or "—"
    if view.overdue(today):
        due += "!"
    return (due, f"{view.done}/{len(view.targets)}", who, view.title)


def replies_text(store: Any, view: TaskView | None, today: Any) -> Text:
    """Each target of the highlighted task and its answer."""
    if view is None:
        return Text(t("没有工作调度任务。", "No tasks."), style="dim")
    out = Text()
    out.append(view.title, style="bold")
    if view.due_on:
        out.append(t(f"  期限 {view.due_on}", f"  due {view.due_on}"),
                   style="red" if view.overdue(today) else "")
    for r in view.targets:
        out.append("\n  ")
        if r.status == "done":
            out.append("✓ ", style="green")
            status = label("task_reply", "status", "done")
        elif r.status == "open":
            out.append("… ", style="yellow")
            status = label("task_reply", "status", "open")
        else:
            out.append("· ", style="dim")
            status = t("未回复", "no reply")
        out.append(org_name(store, r.org_id) + "  ")
        out.append(status, style="green" if r.status == "done" else "yellow")
        if r.done_on:
            out.append(f"  {r.done_on}")
        if r.note:
            out.append("  " + r.note.replace("\n", " "), style="italic")
    return out


class CountyScreen(Page):
    SECTION = "county"
    BINDINGS = [
        Binding("n", "new_task", t("下发任务", "New task")),
    ]
    DEFAULT_CSS = """
    CountyScreen #stats-area { height: auto; max-height: 60%; }
    CountyScreen.branch #stats-area { height: auto; max-height: 9; }
    CountyScreen #stats-row { height: auto; }
    CountyScreen #stats { padding: 0 1; height: auto; width: 1fr; max-width: 100; }
    CountyScreen #charts { height: auto; width: 1fr; }
    CountyScreen BarChart { margin-bottom: 1; }
    CountyScreen.narrow #stats-row { layout: vertical; }
    CountyScreen.narrow #stats { width: 100%; margin-bottom: 1; }
    CountyScreen.narrow #charts { width: 100%; }
    CountyScreen #tasks { height: 1fr; min-height: 2; }
    CountyScreen #replies { height: auto; max-height: 8; padding: 0 1; background: $boost; }
    """
    AUTO_FOCUS = "#tasks"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="stats-area"), Horizontal(id="stats-row"):
            yield Static("", id="stats")
            with Vertical(id="charts"):
                yield BarChart(id="chart-outflow", style="cyan", bar_width=40)
                yield BarChart(id="chart-reported", maximum=1.0, style="green", bar_width=40)
        yield Static("", id="tasks-title", classes="section-title")
        yield ListHeader(TASK_COLUMNS)
        yield RecordList(TASK_COLUMNS, self._cells, id="tasks",
                         empty=t("没有工作调度任务", "no task"))
        yield Static("", id="replies")

    def on_mount(self) -> None:
        super().on_mount()
        self.upper = is_upper(self.store)
        self.set_class(not self.upper, "branch")
        self.views: dict[str, TaskView] = {}
        self.stats: list[OrgStats] = []
        if not self.upper:
            self.query_one("#chart-outflow").display = False
            self.query_one("#chart-reported").display = False
        self.refresh_data()

    def on_resize(self, event: events.Resize) -> None:
        # the charts go beside the table when there is room, below it otherwise
        self.set_class(event.size.width < 140, "narrow")

    # -- data ----------------------------------------------------------------------------------
    def refresh_data(self) -> None:
        store, today = self.store, self.lapp.today_date()
        self.stats = org_stats(store, today)
        self.query_one("#stats", Static).update(stats_table(self.stats))
        if self.upper:
            below = [r for r in self.stats if r.depth > 0] or self.stats
            self.query_one("#chart-outflow", BarChart).set_bars(
                [Bar("  " * max(0, r.depth - 1) + r.name, r.outflow, str(r.outflow))
                 for r in below], t("流出党员（人）", "Outflow members"))
            self.query_one("#chart-reported", BarChart).set_bars(
                [Bar("  " * max(0, r.depth - 1) + r.name, r.reported_rate or 0,
                     percent(r.reported_rate)) for r in below if r.outflow],
                t("已报到率", "Reported in"))
        views = task_views(store)
        self.views = {v.task_id: v for v in views}
        sent = sum(1 for v in views if v.sent)
        open_ = sum(1 for v in views if not v.complete)
        self.query_one("#tasks-title", Static).update(
            t(f"工作调度 · {len(views)} 项（下发 {sent}，未完成 {open_}）· 回车"
              + ("打开" if self.upper else "回复"),
              f"Tasks · {len(views)} ({sent} sent, {open_} not done) · enter "
              + ("opens" if self.upper else "answers")))
        records = self.query_one("#tasks", RecordList)
        records.set_ids([v.task_id for v in views])
        records.redraw()
        self.show_replies()

    def _cells(self, task_id: str) -> tuple[str, ...]:
        view = self.views.get(task_id)
        return task_cells(self.store, view, self.lapp.today_date()) if view else ("?",)

    def show_replies(self) -> None:
        current = self.query_one("#tasks", RecordList).current_id
        self.query_one("#replies", Static).update(
            replies_text(self.store, self.views.get(current or ""), self.lapp.today_date()))

    # -- events --------------------------------------------------------------------------------
    def on_record_list_highlighted(self, _: RecordList.Highlighted) -> None:
        self.show_replies()

    def on_record_list_opened(self, event: RecordList.Opened) -> None:
        from tui.forms import open_form

        view = self.views.get(event.rec_id)
        if view is None:
            return
        if view.sent and not any(r.org_id == self.store.meta.get("own_org_id")
                                 for r in view.targets):
            open_form(self.app, "edit_record", rec_id=view.task_id)
            return
        own = self.store.state.own_subtree()
        mine = [r for r in view.targets if r.org_id in own]
        if not mine:
            return
        target = next((r for r in mine if r.org_id == self.store.meta.get("own_org_id")),
                      mine[0])
        if target.reply_id:
            open_form(self.app, "edit_record", rec_id=target.reply_id)
        else:
            open_form(self.app, "new_record", type_name="task_reply", task_id=view.task_id,
                      org_id=target.org_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "new_task":
            return bool(getattr(self, "upper", False))  # tasks are sent down from above
        return True

    def action_new_task(self) -> None:
        from tui.forms import open_form

        open_form(self.app, "new_record", type_name="task",
                  issued_by_org_id=self.store.meta.get("own_org_id"))
