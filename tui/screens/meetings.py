"""Meetings (4): the organizational life of this organization, and the meeting form.

The list shows each meeting's date, kind, topic and who came (present / expected). `n` records
a meeting, enter opens one to correct it. The form is not the generic record form: after date,
kind and topic comes the attendance checklist of every member of this organization **and**
every inflow member hosted here (M-3.2: one affiliation, organizational life where the member
is; the attendance reaches the member's home through the meeting's scope, ``people`` in
store/schema.py). Space ticks a member present, `a` ticks everyone; an absent member gets a
reason in the line below the list (none typed: "not given"). Typing in the filter narrows a long
list by name, pinyin or initials. Ctrl+S saves through the store, which checks everything;
what it refuses is shown in the form. Esc asks before discarding changes.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, MaskedInput, Select, Static

from store.errors import Forbidden, LiudongError, ValidationError
from store.schema import CHOICES, TYPES
from store.search import filter_ids
from tui.output import t
from tui.screens.base import Page
from tui.view import label, org_name
from tui.widgets.record_list import Column, ListHeader, RecordList

LIST_COLUMNS = (
    Column("日期", "held on", 10),
    Column("类别", "kind", 12),
    Column("主题", "topic", 30),
    Column("出席/应到", "present", 9),
    Column("组织", "organization", 16),
)
ATTENDANCE_COLUMNS = (
    Column("出席", "here", 4),
    Column("姓名", "name", 10),
    Column("身份", "who", 8),
    Column("缺席原因", "reason absent", 30),
)
NO_REASON = ("未说明", "not given")


def meeting_ids(store: Any) -> list[str]:
    """The meetings of this organization (and those below it), the latest first."""
    subtree = store.state.own_subtree()
    found = [m for m in store.live("meeting") if m.get("org_id") in subtree]
    found.sort(key=lambda m: (str(m.get("held_on") or ""), m["id"]), reverse=True)
    return [m["id"] for m in found]


def meeting_row(store: Any, meeting_id: str) -> tuple[str, ...]:
    m = store.get(meeting_id, include_deleted=True)
    if m is None:
        return ("?",)
    present = len(m.get("attendee_ids") or ())
    expected = present + len(m.get("absences") or ())
    return (str(m.get("held_on") or ""), label("meeting", "kind", m.get("kind")),
            str(m.get("topic") or ""), f"{present}/{expected}",
            org_name(store, m.get("org_id")))


def attendance_candidates(store: Any, org_id: str) -> list[str]:
    """Who is expected at a meeting of ``org_id``: its members (archived ones left out) and
    the members whose open flow it hosts (M-3.2), in the members list's order."""
    wanted: set[str] = set()
    for m in store.live("member"):
        if m.get("home_org_id") == org_id and not m.get("archived"):
            wanted.add(m["id"])
    for f in store.live("flow"):
        if f.get("host_org_id") == org_id and f.get("status") != "ended":
            member = store.get(str(f.get("member_id") or ""))
            if member is not None and not member.get("archived"):
                wanted.add(member["id"])
    search = store.state.search
    return sorted(wanted, key=lambda i: (search.get(i, ""), i))


def who(store: Any, member_id: str, org_id: str) -> str:
    """How a member stands to the meeting's organization: its member (away on a flow, or
    here), or an inflow member it hosts."""
    m = store.get(member_id, include_deleted=True) or {}
    hosted = any(f.get("host_org_id") == org_id and f.get("status") != "ended"
                 for f in store.state.records_of(member_id, "flow"))
    if m.get("home_org_id") != org_id and hosted:
        return t("流入", "inflow")
    away = any(f.get("home_org_id") == org_id and f.get("status") != "ended"
               for f in store.state.records_of(member_id, "flow"))
    if m.get("home_org_id") == org_id:
        return t("流出", "outflow") if away else t("本支部", "member")
    return t("其他", "other")


# -- the list ------------------------------------------------------------------------------------

class MeetingsScreen(Page):
    SECTION = "meetings"
    BINDINGS = [
        Binding("n", "new", t("记录会议", "New meeting")),
    ]
    AUTO_FOCUS = "RecordList"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="count", classes="hint")
        yield ListHeader(LIST_COLUMNS)
        yield RecordList(LIST_COLUMNS, self._cells,
                         empty=t("还没有会议记录：按 n 记录一次会议",
                                 "no meeting recorded yet: press n to record one"))

    def on_mount(self) -> None:
        super().on_mount()
        self._cache: dict[str, tuple[str, ...]] = {}
        self.refresh_data()

    def _cells(self, meeting_id: str) -> tuple[str, ...]:
        row = self._cache.get(meeting_id)
        if row is None:
            row = self._cache[meeting_id] = meeting_row(self.store, meeting_id)
        return row

    def refresh_data(self, keep: str | None = None) -> None:
        self._cache.clear()
        ids = meeting_ids(self.store)
        records = self.query_one(RecordList)
        records.set_ids(ids, keep)
        records.redraw()
        year = str(self.lapp.today_date().year)
        this_year = sum(1 for i in ids if str((self.store.get(i) or {}).get("held_on") or "")
                        .startswith(year))
        self.query_one("#count", Static).update(
            t(f"共 {len(ids)} 次会议，今年 {this_year} 次 · n 记录会议 · 回车修改出席",
              f"{len(ids)} meetings, {this_year} this year · n new · enter edits attendance"))

    def _saved(self, rec_id: str | None) -> None:
        if rec_id and self.is_attached:
            self.refresh_data(keep=rec_id)

    def action_new(self) -> None:
        self.app.push_screen(MeetingForm(), self._saved)

    def on_record_list_opened(self, event: RecordList.Opened) -> None:
        self.app.push_screen(MeetingForm(event.rec_id), self._saved)


# -- the form ------------------------------------------------------------------------------------

class AttendanceList(RecordList):
    """The attendance checklist: space ticks the highlighted member, `a` ticks everyone shown."""

    BINDINGS = [
        Binding("space", "toggle", t("出席/缺席", "Present/absent")),
        Binding("a", "all_present", t("全部出席", "All present")),
        Binding("enter", "reason", t("填写缺席原因", "Reason"), show=False),
    ]

    class Toggle(Message):
        def __init__(self, member_id: str | None, everyone: bool = False) -> None:
            super().__init__()
            self.member_id = member_id
            self.everyone = everyone

    class Reason(Message):
        pass

    def action_toggle(self) -> None:
        self.post_message(self.Toggle(self.current_id))

    def action_all_present(self) -> None:
        self.post_message(self.Toggle(None, everyone=True))

    def action_reason(self) -> None:
        self.post_message(self.Reason())


class MeetingForm(Page):
    """Record a meeting (``rec_id`` None) or correct one: date, kind, topic, attendance."""

    SECTION = "meetings"
    BINDINGS = [
        Binding("ctrl+s", "save", t("保存", "Save"), priority=True),
        Binding("escape", "cancel", t("返回", "Back")),
        Binding("slash", "filter", t("筛选", "Filter"), show=False),
    ]
    DEFAULT_CSS = """
    MeetingForm #fields { height: auto; padding: 0 1; }
    MeetingForm #fields > Horizontal { height: auto; }
    MeetingForm #fields > Horizontal.first { margin-bottom: 1; }
    MeetingForm .field-label { width: 7; }
    MeetingForm .field-label.second { width: 8; padding-left: 2; }
    MeetingForm #held_on { width: 14; }
    MeetingForm #kind { width: 24; }
    MeetingForm #topic { width: 1fr; }
    MeetingForm #filter-row, MeetingForm #reason-row { height: auto; padding: 0 1; }
    MeetingForm #filter { width: 1fr; }
    MeetingForm #reason { width: 1fr; }
    MeetingForm AttendanceList { height: 1fr; min-height: 3; }
    MeetingForm #errors { color: $error; padding: 0 1; height: auto; display: none; }
    """
    AUTO_FOCUS = "#held_on"

    def __init__(self, rec_id: str | None = None) -> None:
        super().__init__()
        self.rec_id = rec_id

    # -- layout ----------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        kinds = [(zh if t("zh", "en") == "zh" else en, v) for v, zh, en in
                 CHOICES["meeting_kind"]]
        rtype = TYPES["meeting"]
        yield Static("", id="form-title", classes="section-title")
        with Vertical(id="fields"):
            with Horizontal(classes="first"):
                yield Label(t(rtype["held_on"].zh, "date"), classes="field-label")
                yield MaskedInput("9999-99-99", id="held_on", compact=True)
                yield Label(t(rtype["kind"].zh, "kind"), classes="field-label second")
                yield Select(kinds, allow_blank=False, id="kind", compact=True)
            with Horizontal():
                yield Label(t(rtype["topic"].zh, "topic"), classes="field-label")
                yield Input(id="topic", placeholder=t("会议主题", "what the meeting was about"),
                            compact=True)
        yield Static("", id="errors")
        with Horizontal(id="filter-row"):
            yield Label(t("筛选", "filter"), classes="field-label")
            yield Input(id="filter", placeholder=t("按姓名、拼音或首字母筛选出席名单（按 / ）",
                                                   "narrow the list by name, pinyin, initials (/)"),
                        compact=True)
        yield Static("", id="tally", classes="hint")
        yield ListHeader(ATTENDANCE_COLUMNS)
        yield AttendanceList(ATTENDANCE_COLUMNS, self._cells,
                             empty=t("没有符合的党员", "no member matches"))
        with Horizontal(id="reason-row"):
            yield Label(t("原因", "reason"), classes="field-label")
            yield Input(id="reason", placeholder=t("所选党员的缺席原因（回车填写；出席者无需填写）",
                                                   "why the highlighted member was absent (enter)"),
                        compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        store = self.store
        doc = store.get(self.rec_id) if self.rec_id else None
        self.org_id = str(doc["org_id"]) if doc else str(store.meta.get("own_org_id"))
        self.present: set[str] = set(doc.get("attendee_ids") or ()) if doc else set()
        self.reasons: dict[str, str] = {}
        if doc:
            for a in doc.get("absences") or ():
                self.reasons[str(a["member_id"])] = str(a.get("reason") or "")
        # the expected: everyone the meeting names, and those it would name if made today
        named = self.present | set(self.reasons)
        self.candidates = attendance_candidates(store, self.org_id)
        extra = [i for i in named if i not in set(self.candidates)]
        search = store.state.search
        self.candidates += sorted(extra, key=lambda i: (search.get(i, ""), i))
        self.expected = named if doc else set(self.candidates)
        self._who = {i: who(store, i, self.org_id) for i in self.candidates}
        held_on = str(doc.get("held_on") or "") if doc else self.lapp.today_date().isoformat()
        self.query_one("#held_on", MaskedInput).value = held_on
        if doc and doc.get("kind"):
            self.query_one("#kind", Select).value = doc["kind"]
        self.query_one("#topic", Input).value = str(doc.get("topic") or "") if doc else ""
        self.query_one("#form-title", Static).update(
            (t("修改会议记录", "Correct a meeting") if doc else t("记录会议", "Record a meeting"))
            + " · " + org_name(store, self.org_id))
        self.initial = self.snapshot()
        self.refilter()

    # -- state -----------------------------------------------------------------------------------
    def snapshot(self) -> tuple[Any, ...]:
        return (self.query_one("#held_on", MaskedInput).value,
                self.query_one("#kind", Select).value,
                self.query_one("#topic", Input).value.strip(),
                frozenset(self.present),
                frozenset((k, v.strip()) for k, v in self.reasons.items() if v.strip()))

    @property
    def changed(self) -> bool:
        return self.snapshot() != self.initial

    def values(self) -> dict[str, Any]:
        """The meeting as ``store.put`` takes it."""
        kind = self.query_one("#kind", Select).value
        absences = []
        for member_id in self.candidates:
            if member_id in self.present:
                continue
            reason = self.reasons.get(member_id, "").strip()
            if reason or member_id in self.expected:
                absences.append({"member_id": member_id, "reason": reason or t(*NO_REASON)})
        return {
            "org_id": self.org_id,
            "kind": kind if isinstance(kind, str) else None,
            "held_on": self.query_one("#held_on", MaskedInput).value.strip(),
            "topic": self.query_one("#topic", Input).value.strip() or None,
            "attendee_ids": [i for i in self.candidates if i in self.present],
            "absences": absences,
        }

    # -- the checklist ---------------------------------------------------------------------------
    def _cells(self, member_id: str) -> tuple[str, ...]:
        doc = self.store.get(member_id, include_deleted=True) or {}
        here = member_id in self.present
        reason = "" if here else self.reasons.get(member_id, "")
        return ("[x]" if here else "[ ]", str(doc.get("name") or "?"),
                self._who.get(member_id, ""), reason)

    def refilter(self) -> None:
        query = self.query_one("#filter", Input).value.strip()
        ids = self.candidates
        if query:
            ids = filter_ids(self.store.state.search, query, ids)
        self.query_one(AttendanceList).set_ids(list(ids))
        self.update_tally()
        self.sync_reason()

    def update_tally(self) -> None:
        total = len(self.candidates)
        here = sum(1 for i in self.candidates if i in self.present)
        given = sum(1 for i in self.candidates if i not in self.present
                    and self.reasons.get(i, "").strip())
        shown = len(self.query_one(AttendanceList).ids)
        text = Text(t(f" 出席 {here} / 应到 {total}，缺席 {total - here}（已填原因 {given}）",
                      f" present {here} of {total}, absent {total - here} ({given} with a "
                      "reason)"))
        if shown != total:
            text.append(t(f" · 显示 {shown} 人", f" · {shown} shown"), style="italic")
        self.query_one("#tally", Static).update(text)

    def sync_reason(self) -> None:
        """The reason line follows the highlighted member; a present member needs none."""
        member_id = self.query_one(AttendanceList).current_id
        box = self.query_one("#reason", Input)
        absent = member_id is not None and member_id not in self.present
        with box.prevent(Input.Changed):
            box.value = self.reasons.get(member_id, "") if absent and member_id else ""
        box.disabled = not absent

    def on_attendance_list_toggle(self, event: AttendanceList.Toggle) -> None:
        records = self.query_one(AttendanceList)
        if event.everyone:
            self.present.update(records.ids)
        elif event.member_id is not None:
            self.present.symmetric_difference_update({event.member_id})
            records.action_move(1)
        records.redraw()
        self.update_tally()
        self.sync_reason()

    def on_attendance_list_reason(self, _: AttendanceList.Reason) -> None:
        box = self.query_one("#reason", Input)
        if not box.disabled:
            box.focus()

    def on_record_list_highlighted(self, _: RecordList.Highlighted) -> None:
        self.sync_reason()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.refilter()
        elif event.input.id == "reason":
            member_id = self.query_one(AttendanceList).current_id
            if member_id is not None and member_id not in self.present:
                self.reasons[member_id] = event.value
                self.query_one(AttendanceList).redraw()
                self.update_tally()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        records = self.query_one(AttendanceList)
        if event.input.id == "reason":
            records.focus()
            records.action_move(1)
        elif event.input.id == "filter":
            records.focus()
        else:
            self.focus_next()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    # -- saving and leaving ------------------------------------------------------------------------
    def action_save(self) -> None:
        errors = self.query_one("#errors", Static)
        errors.display = True
        try:
            with self.store.batch(self.lapp.today_date()) as b:
                rec_id = b.put("meeting", self.values(), self.rec_id)
        except ValidationError as exc:
            errors.update("\n".join("✗ " + t(i.zh, i.en) for i in exc.issues))
            self.focus_field(exc.issues[0].field)
            return
        except (Forbidden, LiudongError) as exc:
            errors.update("✗ " + t(exc.zh, exc.en))
            return
        errors.update("")
        errors.display = False
        self.app.notify(t("会议已保存", "Meeting saved"))
        self.dismiss(rec_id)

    def focus_field(self, name: str) -> None:
        target = {"held_on": "#held_on", "kind": "#kind", "topic": "#topic"}.get(name)
        if target:
            self.query_one(target).focus()

    def action_cancel(self) -> None:
        if not self.changed:
            self.dismiss(None)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        from tui.screens.confirm import ConfirmScreen

        self.app.push_screen(ConfirmScreen(
            t("会议记录已修改，放弃这些修改吗？", "The meeting has changed. Discard the changes?"),
            yes=t("放弃 (y)", "Discard (y)"), no=t("继续编辑 (n)", "Keep editing (n)")),
            answered)
