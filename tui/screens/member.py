"""A member's page: profile, flow, contacts, meetings attended (at home and at the host), study,
vanguard, care, appraisals, transfers and the responsibility checklists (MANDATE M-2), each
section read from the store's per-member indexes."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from store.register import member_mobility, open_flow
from store.schema import TYPES
from tui.output import mask_id, show_value, t
from tui.screens.base import Page
from tui.view import org_name

# Records about a member shown on the page: type → (fields shown as columns, sort field)
SECTIONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("contact", ("on", "channel", "reached", "by", "summary"), "on"),
    ("study", ("on", "kind", "topic", "hours"), "on"),
    ("vanguard", ("kind", "title", "started_on", "ended_on", "outcome"), "started_on"),
    ("care", ("on", "kind", "description", "amount_yuan"), "on"),
    ("appraisal", ("year", "result", "by_org_id", "notified_home_on"), "year"),
    ("commendation", ("on", "title", "by_org_id"), "on"),
    ("probation_review", ("due_on", "meeting_on", "decision", "approved_on"), "due_on"),
    ("transfer", ("issued_on", "to_org_id", "to_org_text", "letter_no", "status",
                  "received_on"), "issued_on"),
)


def _fields(type_name: str, names: tuple[str, ...]) -> tuple[str, ...]:
    known = TYPES[type_name].by_name
    return tuple(n for n in names if n in known)


class MemberScreen(Page):
    SECTION = "members"
    BINDINGS = [
        Binding("escape", "back", t("返回", "Back")),
        Binding("e", "edit", t("编辑", "Edit")),
        Binding("o", "outflow", t("流出", "Outflow")),
        Binding("r", "report", t("报到", "Report-in")),
        Binding("c", "contact", t("联系", "Contact")),
        Binding("x", "end_flow", t("结束", "End flow")),
        Binding("a", "add", t("添加", "Add record")),
        Binding("t", "transfer", t("转接", "Transfer")),
        Binding("p", "probation", t("转正", "Probation")),
    ]

    DEFAULT_CSS = """
    MemberScreen VerticalScroll { height: 1fr; }
    MemberScreen .card { padding: 0 1; margin-bottom: 1; height: auto; }
    """

    def __init__(self, member_id: str) -> None:
        super().__init__()
        self.member_id = member_id

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="page"):
            yield Static(id="profile", classes="card")
            yield Static(id="flow", classes="card")
            yield Static(id="sec-contact", classes="card")
            yield Static(id="meetings", classes="card")
            for type_name, _, _ in SECTIONS[1:]:
                yield Static(id=f"sec-{type_name}", classes="card")
            yield Static(id="none", classes="card hint")
            yield Static(id="checklists", classes="card")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#page").focus()
        self.refresh_data()

    # -- drawing -------------------------------------------------------------------------------
    def refresh_data(self) -> None:
        store = self.store
        m = store.get(self.member_id)
        if m is None:
            self.query_one("#profile", Static).update(
                t("该党员已不在本机（已删除或移出本组织范围）。",
                  "This member is no longer on this computer (deleted or out of scope)."))
            return
        self.sub_title = str(m.get("name", ""))
        self.query_one("#profile", Static).update(self._profile(m))
        self.query_one("#flow", Static).update(self._flows())
        checks = self._checklists()
        self.query_one("#checklists", Static).display = checks is not None
        if checks is not None:
            self.query_one("#checklists", Static).update(checks)
        self.query_one("#meetings", Static).update(self._meetings())
        empty = []
        for type_name, names, order in SECTIONS:
            box = self.query_one(f"#sec-{type_name}", Static)
            shown = self._section(type_name, _fields(type_name, names), order)
            box.display = shown is not None
            if shown is None:
                empty.append(t(TYPES[type_name].zh, TYPES[type_name].en))
            else:
                box.update(shown)
        none = self.query_one("#none", Static)
        none.display = bool(empty)
        none.update(t("尚无记录：", "nothing recorded yet: ") + t("、", ", ").join(empty)
                    + t("（按 a 添加）", " (a adds one)"))

    def _profile(self, m: dict[str, Any]) -> Any:
        store = self.store
        mobility = member_mobility(store, m)
        title = Text(str(m.get("name", "")), style="bold")
        tags = []
        if mobility != "none":
            tags.append(show_value("member", "mobility", mobility))
        if m.get("standing") == "probationary":
            tags.append(t("预备党员", "probationary"))
        if m.get("lost_contact_since"):
            tags.append(t(f"失联（自 {m['lost_contact_since']}）",
                          f"lost contact since {m['lost_contact_since']}"))
        if m.get("archived"):
            tags.append(show_value("member", "archived", m["archived"]))
        if tags:
            title.append("  " + " · ".join(tags), style="bold yellow")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        cells: list[tuple[str, str]] = []
        for f in TYPES["member"].fields:
            value = m.get(f.name)
            if value is None or f.name in ("name",):
                continue
            if f.name == "home_org_id":
                shown = org_name(store, value)
            elif f.sensitive:
                shown = mask_id(str(value))
            else:
                shown = show_value("member", f.name, value, store.get)
            cells.append((t(f.zh, f.en), shown))
        for i in range(0, len(cells), 2):
            left = cells[i]
            right = cells[i + 1] if i + 1 < len(cells) else ("", "")
            grid.add_row(left[0], left[1], right[0], right[1])
        from rich.console import Group

        return Group(title, grid)

    def _flows(self) -> Any:
        """One paragraph per flow, newest first: it wraps at 80 columns instead of squeezing
        eight columns into them."""
        store = self.store
        flows = sorted(store.state.records_of(self.member_id, "flow"),
                       key=lambda f: f.get("left_on") or "", reverse=True)
        out = Text(t("【流动登记】", "[Flows]"), style="bold")
        if not flows:
            out.append(t("  无（按 o 登记流出）", "  none (o registers an outflow)"), style="dim")
            return out
        for fl in flows:
            host = org_name(store, fl.get("host_org_id"), str(fl.get("external_host") or ""))
            status = show_value("flow", "status", fl.get("status"))
            out.append(f"\n {fl.get('left_on', '')} ", style="bold")
            out.append(t("外出", "left") + " · " + show_value("flow", "reason", fl.get("reason")))
            out.append(" → " + (host or t("去向待定", "host unknown")))
            out.append(f"  {status}", style="bold green" if fl.get("status") == "reported"
                       else "bold yellow" if fl.get("status") == "pending_report" else "dim")
            details = []
            for name in ("reported_on", "ended_on", "end_reason", "destination_address",
                         "employer", "certificate_no", "home_contact", "host_contact",
                         "expected_until"):
                f = TYPES["flow"].by_name.get(name)
                if f is not None and fl.get(name):
                    details.append(f"{t(f.zh, f.en)} {show_value('flow', name, fl[name])}")
            if details:
                out.append("\n   " + t("；", "; ").join(details), style="dim")
        return out

    def _checklists(self) -> Any | None:
        try:
            from store.checklists import checklist
        except ImportError:
            return None
        checks = checklist(self.store, self.member_id, self.lapp.today_date())
        if not checks:
            return None
        out = Text(t("【责任清单】", "[Responsibility checklists]"), style="bold")
        side_names = {"home": t("流出地党组织", "home organization"),
                      "host": t("流入地党组织", "host organization"),
                      "member": t("流动党员本人", "the member")}
        side = None
        for c in checks:
            if c.side != side:
                side = c.side
                out.append("\n " + side_names.get(side, side), style="underline")
            mark, style = (("✔", "green") if c.done else ("✘", "red")
                           if getattr(c, "applies", True) else ("·", "dim"))
            out.append(f"\n  {mark} ", style=style)
            out.append(f"{c.mandate} {t(c.zh, c.en)}")
            if not c.done and (c.reason_zh or c.reason_en) and getattr(c, "applies", True):
                out.append(f"\n      {t(c.reason_zh, c.reason_en)}", style="dim")
        return out

    def _meetings(self) -> Any:
        store = self.store
        meetings_of = getattr(store.state, "meetings_of", None)
        if meetings_of is not None:
            meetings = list(meetings_of(self.member_id))
        else:
            meetings = [d for d in store.live("meeting")
                        if self.member_id in (d.get("attendee_ids") or [])
                        or any(isinstance(a, dict) and a.get("member_id") == self.member_id
                               for a in d.get("absent_ids") or [])]
        head = Text(t("【组织生活】", "[Meetings]"), style="bold")
        if not meetings:
            head.append(t("  无记录", "  none recorded"), style="dim")
            return head
        meetings.sort(key=lambda d: d.get("held_on") or "", reverse=True)
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
        for zh, en in (("日期", "date"), ("组织", "organization"), ("类别", "kind"),
                       ("主题", "topic"), ("出席", "attended")):
            table.add_column(t(zh, en), no_wrap=True)
        for d in meetings[:20]:
            here = self.member_id in (d.get("attendee_ids") or [])
            table.add_row(str(d.get("held_on", "")), org_name(store, d.get("org_id")),
                          show_value("meeting", "kind", d.get("kind")), str(d.get("topic") or ""),
                          t("出席", "present") if here else t("缺席", "absent"))
        from rich.console import Group

        return Group(head, table)

    def _section(self, type_name: str, names: tuple[str, ...], order: str) -> Any | None:
        store = self.store
        rtype = TYPES[type_name]
        docs = sorted(store.state.records_of(self.member_id, type_name),
                      key=lambda d: str(d.get(order) or ""), reverse=True)
        if not docs:
            return None
        head = Text(f"【{t(rtype.zh, rtype.en)}】" if t("zh", "en") == "zh"
                    else f"[{rtype.en}]", style="bold")
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
        for name in names:
            f = rtype.by_name[name]
            table.add_column(t(f.zh, f.en), no_wrap=name not in ("summary", "description"))
        for d in docs[:20]:
            table.add_row(*[org_name(store, d.get(n)) if rtype.by_name[n].ref == "org"
                            else show_value(type_name, n, d.get(n), store.get) for n in names])
        from rich.console import Group

        return Group(head, table)

    # -- actions -------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def _form(self, action: str, **ctx: Any) -> None:
        from tui.forms import open_form

        open_form(self.app, action, member_id=self.member_id, **ctx)

    def action_edit(self) -> None:
        self._form("edit_member")

    def action_outflow(self) -> None:
        self._form("flow_out")

    def action_report(self) -> None:
        flow = open_flow(self.store, self.member_id)
        if flow is None:
            self.notify(t("没有未结束的流动登记。", "No open flow."), severity="warning")
            return
        self._form("report_in", flow_id=flow["id"])

    def action_end_flow(self) -> None:
        flow = open_flow(self.store, self.member_id)
        if flow is None:
            self.notify(t("没有未结束的流动登记。", "No open flow."), severity="warning")
            return
        self._form("end_flow", flow_id=flow["id"])

    def action_contact(self) -> None:
        self._form("log_contact")

    def action_add(self) -> None:
        self._form("pick_record")

    def action_transfer(self) -> None:
        from tui.workflow_forms import transfer_menu

        transfer_menu(self.app, self.member_id)

    def action_probation(self) -> None:
        from tui.workflow_forms import probation_menu

        probation_menu(self.app, self.member_id)
