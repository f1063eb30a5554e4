"""A list of records drawn line by line (Textual's Line API, as Toolong draws logs): painting
costs the rows on screen, not the rows in the list, so 20,000 members scroll and filter as fast
as 20. Cells are computed for visible rows only, through a cache the owner clears on change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from tui.output import t


@dataclass(frozen=True)
class Column:
    zh: str
    en: str
    width: int  # cells; the last column takes what is left

    @property
    def label(self) -> str:
        return t(self.zh, self.en)


def layout(columns: Sequence[Column], values: Sequence[str], total: int) -> str:
    """One line: each value cut or padded to its column's cells (CJK counts two). A row of
    one value (a group's heading) takes the whole line."""
    if len(values) == 1 and len(columns) > 1:
        return layout((Column("", "", total),), values, total)
    parts = []
    used = 0
    for i, (col, value) in enumerate(zip(columns, values)):
        width = col.width if i < len(columns) - 1 else max(0, total - used - 1)
        width = min(width, max(0, total - used - 1))
        if width <= 0:
            break
        text = value.replace("\n", " ")
        if cell_len(text) > width:
            text = set_cell_size(text, width - 1) + "…"
        parts.append(set_cell_size(text, width))
        used += width + 1
    return " " + " ".join(parts)


class ListHeader(Static):
    """The column headings above a RecordList."""

    DEFAULT_CSS = """
    ListHeader { height: 1; background: $boost; text-style: bold; }
    """

    def __init__(self, columns: Sequence[Column], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.columns = columns

    def render(self) -> str:
        return layout(self.columns, [c.label for c in self.columns], self.size.width)


class RecordList(ScrollView, can_focus=True):
    """Rows of record ids; ``cells(id)`` gives a row's values when it is drawn."""

    DEFAULT_CSS = """
    RecordList { height: 1fr; }
    RecordList > .record-list--cursor { background: $accent; color: $text; text-style: bold; }
    RecordList:blur > .record-list--cursor { background: $boost; text-style: none; }
    """
    COMPONENT_CLASSES = {"record-list--cursor"}
    BINDINGS = [
        Binding("up", "move(-1)", show=False),
        Binding("down", "move(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
        Binding("enter", "open", t("打开", "Open")),
    ]

    cursor: reactive[int] = reactive(0, init=False, always_update=True)

    class Opened(Message):
        """Enter (or a click) on a row."""

        def __init__(self, record_list: RecordList, rec_id: str) -> None:
            super().__init__()
            self.record_list = record_list
            self.rec_id = rec_id

        @property
        def control(self) -> RecordList:
            return self.record_list

    class Highlighted(Message):
        def __init__(self, record_list: RecordList, rec_id: str | None) -> None:
            super().__init__()
            self.record_list = record_list
            self.rec_id = rec_id

        @property
        def control(self) -> RecordList:
            return self.record_list

    def __init__(self, columns: Sequence[Column], cells: Callable[[str], Sequence[str]],
                 *, empty: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.columns = columns
        self.cells = cells
        self.empty = empty
        self.ids: list[str] = []
        self._lines: dict[int, Strip] = {}

    # -- content -------------------------------------------------------------------------------
    def set_ids(self, ids: list[str], keep: str | None = None) -> None:
        """Show these rows; the cursor stays on ``keep`` (or the current row's id) if present."""
        current = keep if keep is not None else self.current_id
        height = self.size.height
        before = self.virtual_size.height
        self.ids = ids
        self._lines.clear()
        virtual = Size(self.size.width, len(ids))
        if height and virtual.width == self.virtual_size.width and (
                (len(ids) > height) == (before > height)):
            # the scrollbar stays (or stays away): no layout of the screen, only the scrollbar
            self.set_reactive(RecordList.virtual_size, virtual)
            self._scroll_update(virtual)
        else:
            self.virtual_size = virtual
        index = 0
        if current is not None:
            try:
                index = ids.index(current)
            except ValueError:
                index = 0
        self.cursor = min(index, max(0, len(ids) - 1))
        self.refresh()

    def redraw(self) -> None:
        """The rows' values changed (a commit): draw them again."""
        self._lines.clear()
        self.refresh()

    @property
    def current_id(self) -> str | None:
        return self.ids[self.cursor] if 0 <= self.cursor < len(self.ids) else None

    # -- drawing -------------------------------------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        # styles resolved once per paint, not once per line (rich_style walks the DOM)
        self._base_style = self.rich_style
        self._cursor_style = self.get_component_rich_style("record-list--cursor")
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = self.scroll_offset.y + y
        base = getattr(self, "_base_style", None) or self.rich_style
        if not self.ids and y == 0 and self.empty:
            return Strip([Segment(" " + self.empty, Style(dim=True))]).adjust_cell_length(width)
        if index >= len(self.ids):
            return Strip.blank(width, base)
        strip = self._lines.get(index)
        if strip is None or strip.cell_length != width:
            values = self.cells(self.ids[index])
            strip = Strip([Segment(layout(self.columns, values, width))]).adjust_cell_length(width)
            self._lines[index] = strip
            if len(self._lines) > 400:
                self._lines.pop(next(iter(self._lines)))
        if index == self.cursor:
            strip = strip.apply_style(getattr(self, "_cursor_style", None)
                                      or self.get_component_rich_style("record-list--cursor"))
        return strip.apply_style(base)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.ids))
        self._lines.clear()

    # -- moving --------------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        top = self.scroll_offset.y
        height = max(1, self.size.height)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + height:
            self.scroll_to(y=new - height + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self, self.current_id))

    def action_move(self, delta: int) -> None:
        if self.ids:
            self.cursor = max(0, min(len(self.ids) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height - 1))

    def action_jump(self, where: int) -> None:
        if self.ids:
            self.cursor = 0 if where == 0 else len(self.ids) - 1

    def action_open(self) -> None:
        if self.current_id is not None:
            self.post_message(self.Opened(self, self.current_id))

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", None)
        if y is None:
            return
        index = self.scroll_offset.y + int(y)
        if 0 <= index < len(self.ids):
            if index == self.cursor and getattr(event, "chain", 1) > 1:
                self.action_open()
            self.cursor = index
