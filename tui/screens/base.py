"""What every section screen has: a title line with the organization and the section tabs, the
sync status line, and the footer with the keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

from tui.output import t
from tui.widgets.record_list import Column, ListHeader, RecordList
from tui.widgets.status import SyncLine

if TYPE_CHECKING:
    from store import Store
    from tui.app import LiudongApp

TABS = (
    ("worklist", "1", "待办", "Worklist"),
    ("members", "2", "党员", "Members"),
    ("flows", "3", "流动", "Flows"),
    ("meetings", "4", "会议", "Meetings"),
    ("county", "5", "统计任务", "County"),
    ("sync", "6", "同步", "Sync"),
)


class TitleLine(Static):
    """The organization's name and the section tabs, the current one highlighted."""

    DEFAULT_CSS = """
    TitleLine { height: 1; background: $panel; color: $text; }
    """

    def __init__(self, section: str) -> None:
        super().__init__()
        self.section = section

    def on_mount(self) -> None:
        self.update(self.render_title())

    def render_title(self) -> Text:
        app: LiudongApp = self.app  # type: ignore[assignment]
        text = Text(" " + app.org_name() + "  ", style="bold")
        for name, key, zh, en in TABS:
            label = f" {key} {t(zh, en)} "
            text.append(label, style="reverse bold" if name == self.section else "dim")
        return text


class KeyLine(Static):
    """The keys of the focused widget chain on one line, drawn as one text (Textual's Footer
    recomposes a widget per key whenever the bindings change: a third of `2`)."""

    DEFAULT_CSS = """
    KeyLine { height: 1; background: $panel; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _: self.refresh())

    def render(self) -> Text:
        keys = [(self.app.get_key_display(a.binding), a.binding.description)
                for a in self.screen.active_bindings.values() if a.binding.show and a.enabled]
        if self.app.ENABLE_COMMAND_PALETTE:
            keys.append(("ctrl+p", t("命令", "commands")))
        text = self._line(keys, " ")
        if text.cell_len > self.size.width:  # a narrow terminal: every key still shows
            text = self._line(keys, "")
        return text

    @staticmethod
    def _line(keys: list[tuple[str, str]], pad: str) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, description in keys:
            text.append(f"{pad}{key}{pad}", style="bold reverse")
            text.append(f"{pad}{description} ")
        return text


class Page(Screen[None]):
    """A section's screen: title line, body (``compose_body``), sync line, footer."""

    SECTION = ""
    """Which tab this screen belongs to."""

    def compose(self) -> ComposeResult:
        yield TitleLine(self.SECTION)
        yield from self.compose_body()
        yield SyncLine()
        yield KeyLine()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def store(self) -> Store:
        store = self.app.store  # type: ignore[attr-defined]
        assert store is not None
        return store

    @property
    def lapp(self) -> LiudongApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.watch(self.app, "revision", self._revision_changed, init=False)
        self._refresh_pending = False
        self._stale = False
        self._changes: list[Any] = []

    def take_changes(self) -> list[Any] | None:
        """The store's changes since this screen last refreshed (``Change`` objects), or None
        when there were too many to be worth telling apart: refresh everything then."""
        changes, self._changes = self._changes, []
        return changes if len(changes) <= 20 else None

    def _revision_changed(self, _: Any = None) -> None:
        # A screen out of sight only notes that it is stale and reads the store when it shows
        # again; one in sight refreshes once per burst of commits (a sync applies many). Each
        # change of the burst is kept, not only the last.
        self._changes.append(self.lapp.last_change)
        if not self.is_current:
            self._stale = True
        elif not self._refresh_pending:
            self._refresh_pending = True
            self.set_timer(0.05, self._do_refresh)

    def on_screen_resume(self) -> None:
        if getattr(self, "_stale", False):
            self._stale = False
            self._do_refresh()

    def _do_refresh(self) -> None:
        self._refresh_pending = False
        if self.app.store is not None:  # type: ignore[attr-defined]
            self.refresh_data()

    def refresh_data(self) -> None:
        """Re-read what the screen shows from the store (after a commit)."""


class ListPage(Page):
    """A section that is a searchable list: a one-line search box (`/`), a hint line, column
    headings and a RecordList whose rows are drawn from a cache the screen fills on demand.
    Subclasses give ``COLUMNS``, ``SEARCH_HINT``, ``EMPTY``, ``HINT_ID``, ``row(id)``,
    ``order()`` and ``refilter()``."""

    BINDINGS = [
        Binding("slash", "search", t("搜索", "Search")),
        Binding("escape", "clear", t("清除", "Clear"), show=False),
    ]
    AUTO_FOCUS = "RecordList"
    COLUMNS: tuple[Column, ...] = ()
    SEARCH_HINT = ("", "")
    EMPTY = ("", "")
    HINT_ID = "hint"

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder=t(*self.SEARCH_HINT), id="search")
        yield Static("", id=self.HINT_ID, classes="hint")
        yield ListHeader(self.COLUMNS)
        yield RecordList(self.COLUMNS, self._cells, empty=t(*self.EMPTY))

    def on_mount(self) -> None:
        super().on_mount()
        self._cache: dict[str, tuple[str, ...]] = {}
        self._order: list[str] | None = None
        self.refilter()

    def _cells(self, rec_id: str) -> tuple[str, ...]:
        row = self._cache.get(rec_id)
        if row is None:
            row = self._cache[rec_id] = self.row(rec_id)
        return row

    def row(self, rec_id: str) -> tuple[str, ...]:
        raise NotImplementedError

    def refilter(self, keep: str | None = None) -> None:
        raise NotImplementedError

    @property
    def search_text(self) -> str:
        return self.query_one("#search", Input).value.strip()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self.refilter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            self.set_focus(self.query_one(RecordList))

    def action_search(self) -> None:
        # at once, not after a refresh: the keys typed right after `/` go into the box
        self.set_focus(self.query_one("#search", Input))

    def action_clear(self) -> None:
        box = self.query_one("#search", Input)
        if box.value:
            box.value = ""
        self.set_focus(self.query_one(RecordList))
