"""Sync (6): the state of sync in full, the conflicts to resolve and the writes the county refused.

A conflict is one field two devices changed at once (DESIGN §3.2); the county keeps both values
and a person keeps one. Here each conflict is a row — the record, the field, the values side by
side — and one key keeps a value (``1``/``2``, or ←/→ then enter): ``register.resolve_conflict``
sets the field and closes the conflict in one commit, which syncs like any edit.

A refused write (``meta["rejected"]``, DESIGN §3.3) is told as ``liudong sync`` tells it: what
it was about, what it changed, and the county's reason; ``d`` dismisses one once read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static

from store.errors import LiudongError
from store.schema import TYPES
from tui.output import show_value, t
from tui.screens.base import Page
from tui.view import field_label, record_title
from tui.widgets.record_list import Column, ListHeader, RecordList
from tui.widgets.status import ago, phase_label

CONFLICT_COLUMNS = (
    Column("记录", "record", 16),
    Column("字段", "field", 12),
    Column("取值 1", "value 1", 26),
    Column("取值 2", "value 2", 26),
)
REJECTED_COLUMNS = (
    Column("记录", "record", 16),
    Column("修改内容", "change", 28),
    Column("原因", "reason", 30),
)


# -- what rows say (reads the store only) ------------------------------------------------------
# (type_label, field_label and record_title live in tui/view.py: the command line uses them too)

def shown(store: Any, type_name: str, name: str, value: Any) -> str:
    """A value as the screen shows it: labels for choices, ID numbers masked."""
    if value is None or value == "":
        return t("（空）", "(empty)")
    try:
        return show_value(type_name, name, value, store.get if store is not None else None)
    except KeyError:  # a type or field this version does not know
        return str(value)


def conflict_values(store: Any, conflict: Any) -> list[str]:
    """Each value of a conflict as shown, the ones written on this laptop marked."""
    out = []
    for entry in conflict.get("values") or ():
        if not isinstance(entry, dict):
            continue
        text = shown(store, conflict["subject_type"], conflict["field"], entry.get("value"))
        if entry.get("device_id") == store.device_id:
            text += t("（本机）", " (this laptop)")
        out.append(text)
    return out


def rejected_change(store: Any, r: dict[str, Any]) -> str:
    """What a refused write changed: «field → value», the refused field first, sensitive values
    masked."""
    changes = r.get("set") if isinstance(r.get("set"), dict) else {}
    type_name = str(r.get("type"))
    names = sorted(changes, key=lambda n: n != r.get("field"))
    parts = [f"{field_label(type_name, n)} → {shown(store, type_name, n, changes[n])}"
             for n in names]
    if not parts and r.get("field"):
        parts.append(field_label(type_name, r["field"]))
    return t("；", "; ").join(parts)


def rejected_what(r: dict[str, Any]) -> str:
    """The record a refusal is about, as ``liudong sync`` names it."""
    rtype = TYPES.get(str(r.get("type")))
    return str(r.get("title") or (t(rtype.zh, rtype.en) if rtype else r.get("rec_id") or "?"))


def dismiss_rejected(store: Any, entry: dict[str, Any]) -> bool:
    """Remove one refusal from ``meta["rejected"]`` (one meta commit); False if it is gone.
    Read and written under the store's lock, so a sync committing more refusals meanwhile
    loses none of them."""
    locked = getattr(store, "locked", None)
    with locked() if locked is not None else contextlib.nullcontext():
        rejected = list(store.meta.get("rejected") or ())
        for i, r in enumerate(rejected):
            if r == entry:
                del rejected[i]
                store.set_meta(rejected=rejected or None)
                return True
    return False


# -- the lists -------------------------------------------------------------------------------------

class ConflictList(RecordList):
    """Open conflicts; ``1``/``2`` keep a value, ←/→ choose one and enter keeps it. With no
    conflict the keys fall through to the app (``1`` and ``2`` switch sections)."""

    BINDINGS = [
        Binding("1", "pick(0)", t("保留取值1", "Keep 1")),
        Binding("2", "pick(1)", t("保留取值2", "Keep 2")),
        Binding("left", "choose(-1)", t("选择", "Choose"), show=False),
        Binding("right", "choose(1)", t("选择", "Choose"), show=False),
        Binding("enter", "open", t("保留所选", "Keep chosen")),
    ]

    class Pick(Message):
        def __init__(self, conflict_id: str, index: int) -> None:
            super().__init__()
            self.conflict_id = conflict_id
            self.index = index

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chosen: dict[str, int] = {}
        self.sizes: dict[str, int] = {}  # conflict id → how many values it holds

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pick", "choose", "open"):
            current = self.current_id
            if current is None:
                return False
            if action == "pick":
                return int(parameters[0]) < self.sizes.get(current, 0)  # type: ignore[call-overload]
        return True

    def action_pick(self, index: int) -> None:
        if self.current_id is not None:
            self.post_message(self.Pick(self.current_id, index))

    def action_choose(self, delta: int) -> None:
        current = self.current_id
        if current is None:
            return
        size = max(1, self.sizes.get(current, 1))
        self.chosen[current] = (self.chosen.get(current, 0) + delta) % size
        self.redraw()
        self.post_message(self.Highlighted(self, current))

    def action_open(self) -> None:
        if self.current_id is not None:
            self.post_message(self.Pick(self.current_id, self.chosen.get(self.current_id, 0)))


class RejectedList(RecordList):
    """Refused writes; ``d`` dismisses one, enter opens the member it is about."""

    BINDINGS = [
        Binding("d", "dismiss", t("忽略", "Dismiss")),
        Binding("delete", "dismiss", t("忽略", "Dismiss"), show=False),
        Binding("enter", "open", t("打开", "Open")),
    ]

    class Dismiss(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("dismiss", "open"):
            return self.current_id is not None
        return True

    def action_dismiss(self) -> None:
        if self.current_id is not None:
            self.post_message(self.Dismiss(self.current_id))


# -- the screen ----------------------------------------------------------------------------------

class SyncScreen(Page):
    SECTION = "sync"
    AUTO_FOCUS = "#conflicts"
    DEFAULT_CSS = """
    SyncScreen #sync-info { height: auto; padding: 0 1; }
    SyncScreen #conflicts, SyncScreen #rejected { height: 1fr; min-height: 3; }
    SyncScreen #detail { height: auto; max-height: 3; }
    """

    def compose_body(self) -> ComposeResult:
        yield Static("", id="sync-info")
        yield Static("", id="conflicts-title", classes="section-title")
        yield ListHeader(CONFLICT_COLUMNS)
        yield ConflictList(CONFLICT_COLUMNS, self._conflict_cells, id="conflicts",
                           empty=t("没有待处理的冲突", "No conflicts to resolve"))
        yield Static("", id="rejected-title", classes="section-title")
        yield ListHeader(REJECTED_COLUMNS)
        yield RejectedList(REJECTED_COLUMNS, self._rejected_cells, id="rejected",
                           empty=t("县里没有拒绝本机的修改", "The county refused none of this "
                                   "laptop's changes"))
        yield Static("", id="detail", classes="hint")

    def on_mount(self) -> None:
        super().on_mount()
        self.conflicts: dict[str, Any] = {}
        self.rejected: dict[str, dict[str, Any]] = {}
        self.watch(self.app, "sync_status", self._status_changed, init=False)
        self.set_interval(30, self.show_info)  # «3 minutes ago» moves on
        self.refresh_data()
        if not self.conflicts and self.rejected:
            self.query_one(RejectedList).focus()

    def _status_changed(self, _status: Any = None) -> None:
        # a sync ends: its conflicts and refusals are shown (once per burst, as after commits)
        self._revision_changed()

    def _do_refresh(self) -> None:
        # out of sight (another section is shown), the screen is read again when it comes back
        if not self.is_current:
            self._refresh_pending = False
            self._stale = True
            return
        super()._do_refresh()

    def on_screen_resume(self) -> None:
        if getattr(self, "_stale", False) and self.app.store is not None:  # type: ignore[attr-defined]
            self._stale = False
            self.refresh_data()

    # -- reading ---------------------------------------------------------------------------------
    def refresh_data(self) -> None:
        store = self.store
        from tui.sync_worker import open_conflicts

        conflicts = open_conflicts(store)
        conflicts.sort(key=lambda c: (str(c.get("created_at") or ""), c["id"]))
        self.conflicts = {c["id"]: c for c in conflicts}
        clist = self.query_one(ConflictList)
        clist.sizes = {c["id"]: len(c.get("values") or ()) for c in conflicts}
        clist.chosen = {k: v for k, v in clist.chosen.items() if k in self.conflicts}
        clist.set_ids(list(self.conflicts))
        clist.redraw()
        self.rejected = {f"r{i}": r for i, r in enumerate(store.meta.get("rejected") or ())
                         if isinstance(r, dict)}
        rlist = self.query_one(RejectedList)
        rlist.set_ids(list(self.rejected))
        rlist.redraw()
        self.query_one("#conflicts-title", Static).update(
            t(f"冲突 {len(self.conflicts)} 项 · 两处同时修改了同一字段：按 1 或 2 保留其一（或 ←/→ 选择后回车）",
              f"Conflicts: {len(self.conflicts)} · changed in two places at once: 1 or 2 keeps "
              "one (or ←/→ and enter)"))
        self.query_one("#rejected-title", Static).update(
            t(f"县里未接受的修改 {len(self.rejected)} 项 · 按 d 忽略（已读）",
              f"Changes the county refused: {len(self.rejected)} · d dismisses one"))
        self.show_info()
        self.show_detail()
        self.refresh_bindings()

    def show_info(self) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        if store is None:
            return
        status = self.lapp.sync_status
        meta = store.meta
        label, style = phase_label(status)
        rows: list[tuple[str, Text | str]] = []
        if status.enrolled:
            rows.append((t("服务器", "server"), str(meta.get("server_url") or "")))
        state = Text(label, style=style)
        if status.message:
            state.append("  " + status.message, style="dim")
        rows.append((t("状态", "state"), state))
        synced = meta.get("synced_at")
        if isinstance(synced, (int, float)):
            when = dt.datetime.fromtimestamp(synced).strftime("%Y-%m-%d %H:%M")
            rows.append((t("上次同步", "last sync"), f"{when}（{ago(time.time() - synced)}）"
                         if t("zh", "en") == "zh" else f"{when} ({ago(time.time() - synced)})"))
        elif status.enrolled:
            rows.append((t("上次同步", "last sync"), t("尚未同步", "never")))
        rows.append((t("待发送", "pending"), t(f"{status.pending} 个操作",
                                              f"{status.pending} op(s)")))
        worker = getattr(self.app, "sync_worker", None)
        next_at = getattr(worker, "next_at", None)
        if next_at and status.phase != "syncing":
            wait = max(0, int(next_at - time.time()))
            rows.append((t("下次同步", "next sync"),
                         t(f"约 {wait} 秒后（f5 立即同步）", f"in about {wait} s (f5: now)")))
        rows.append((t("本设备", "this device"), "…" + store.device_id[-8:]))
        text = Text()
        for i, (name, value) in enumerate(rows):
            if i:
                text.append("\n")
            text.append(f"{name}：" if t("zh", "en") == "zh" else f"{name}: ", style="bold")
            text.append(value)
        self.query_one("#sync-info", Static).update(text)

    def show_detail(self) -> None:
        """The highlighted row in full: cells cut long reasons short."""
        focused = self.focused
        text = ""
        if isinstance(focused, RejectedList) and focused.current_id in self.rejected:
            r = self.rejected[focused.current_id]
            text = rejected_what(r) + t("：", ": ") + t(str(r.get("zh", "")), str(r.get("en", "")))
        elif isinstance(focused, ConflictList) and focused.current_id in self.conflicts:
            c = self.conflicts[focused.current_id]
            values = conflict_values(self.store, c)
            what = record_title(self.store, c["subject_id"], c["subject_type"])
            name = field_label(c["subject_type"], c["field"])
            listed = t("；", "; ").join(f"{i} {v}" for i, v in enumerate(values, 1))
            text = t(f"{what} 的「{name}」在两处被同时修改：{listed}",
                     f"{what}: {name} was changed in two places at once: {listed}")
        self.query_one("#detail", Static).update(text)

    def _conflict_cells(self, conflict_id: str) -> tuple[str, ...]:
        c = self.conflicts.get(conflict_id)
        if c is None:
            return ("",)
        values = conflict_values(self.store, c)
        chosen = self.query_one(ConflictList).chosen.get(conflict_id, 0)
        marked = [("▸" if i == chosen else " ") + f"{i + 1} {v}" for i, v in enumerate(values)]
        return (record_title(self.store, c["subject_id"], c["subject_type"]),
                field_label(c["subject_type"], c["field"]),
                marked[0] if marked else "", "  ".join(marked[1:]))

    def _rejected_cells(self, key: str) -> tuple[str, ...]:
        r = self.rejected.get(key)
        if r is None:
            return ("",)
        return (rejected_what(r), rejected_change(self.store, r), t(str(r.get("zh", "")), str(r.get("en", ""))))

    # -- acting ----------------------------------------------------------------------------------
    def on_conflict_list_pick(self, event: ConflictList.Pick) -> None:
        from store.register import resolve_conflict

        conflict = self.conflicts.get(event.conflict_id)
        values = [v for v in (conflict or {}).get("values") or () if isinstance(v, dict)]
        if conflict is None or not 0 <= event.index < len(values):
            return
        try:
            resolve_conflict(self.store, conflict["id"], values[event.index].get("value"))
        except LiudongError as exc:
            self.notify(exc.message(), severity="error", markup=False)
            return
        self.notify(t("冲突已处理，下次同步时生效", "Resolved; it reaches the county with the next sync"),
                    timeout=4)
        self.refresh_data()

    def on_rejected_list_dismiss(self, event: RejectedList.Dismiss) -> None:
        entry = self.rejected.get(event.key)
        if entry is None:
            return
        try:
            dismiss_rejected(self.store, entry)
        except LiudongError as exc:
            self.notify(exc.message(), severity="error", markup=False)
            return
        self.refresh_data()

    def on_record_list_opened(self, event: RecordList.Opened) -> None:
        if event.record_list.id != "rejected":
            return
        r = self.rejected.get(event.rec_id)
        doc = self.store.get(str((r or {}).get("rec_id") or ""))
        if doc is None:
            self.notify(t("这条记录已不在本机", "That record is no longer on this laptop"),
                        severity="warning")
            return
        member_id = doc["id"] if doc["type"] == "member" else doc.get("member_id")
        if member_id and self.store.get(member_id) is not None:
            from tui.screens.member import MemberScreen

            self.app.push_screen(MemberScreen(member_id))

    def on_record_list_highlighted(self, _event: RecordList.Highlighted) -> None:
        self.show_detail()
        self.refresh_bindings()

    def on_descendant_focus(self, _event: Any) -> None:
        self.show_detail()
        self.refresh_bindings()
