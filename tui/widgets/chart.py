"""Horizontal bar charts drawn with Unicode eighth blocks (▏▎▍▌▋▊▉█) through rich: a label
column (CJK counted two cells), the bar, the value as text. No dependency beyond Textual."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.widget import Widget

EIGHTHS = " ▏▎▍▌▋▊▉"
FULL = "█"


def bar(value: float, maximum: float, width: int) -> str:
    """A bar of ``value`` on a scale where ``maximum`` fills ``width`` cells, to an eighth of a
    cell; a positive value never draws as nothing (at least ▏)."""
    if width <= 0 or maximum <= 0 or value <= 0:
        return ""
    eighths = max(1, round(min(value, maximum) / maximum * width * 8))
    full, part = divmod(eighths, 8)
    return FULL * full + (EIGHTHS[part] if part else "")


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as text, after the bar


class BarChart(Widget):
    """A titled horizontal bar chart; ``set_bars`` replaces what it shows. Its height follows
    the number of bars."""

    DEFAULT_CSS = """
    BarChart { height: auto; padding: 0 1; }
    """

    def __init__(self, title: str = "", *, maximum: float | None = None, style: str = "cyan",
                 label_width: int = 16, bar_width: int = 50, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.chart_title = title
        self.maximum = maximum
        self.bar_style = style
        self.label_width = label_width
        self.bar_width = bar_width
        self.bars: list[Bar] = []

    def set_bars(self, bars: Sequence[Bar], title: str | None = None) -> None:
        self.bars = list(bars)
        if title is not None:
            self.chart_title = title
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return len(self.bars) + (1 if self.chart_title else 0) or 1

    def render(self) -> Text:
        return render_bars(self.bars, self.content_size.width or self.size.width, self.chart_title,
                           self.maximum, self.bar_style, self.label_width, self.bar_width)


def render_bars(bars: Sequence[Bar], width: int, title: str = "", maximum: float | None = None,
                style: str = "cyan", label_width: int = 16, bar_width: int = 50) -> Text:
    """The chart as text ``width`` cells wide at most: labels, bars (``bar_width`` cells at
    most, the largest value filling them), values."""
    out = Text()
    if title:
        out.append(title, style="bold")
    if not bars:
        return out
    labels = min(label_width, max(cell_len(b.label) for b in bars))
    values = max(cell_len(b.shown) for b in bars)
    room = max(1, min(bar_width, width - labels - values - 3))
    top = maximum if maximum is not None else max((b.value for b in bars), default=0)
    for i, b in enumerate(bars):
        if out.plain or i:
            out.append("\n")
        label = b.label
        if cell_len(label) > labels:
            label = set_cell_size(label, labels - 1) + "…"
        out.append(set_cell_size(label, labels) + " ")
        drawn = bar(b.value, top, room)
        out.append(drawn, style=style)
        out.append(" " * (room - cell_len(drawn)) + " ")
        out.append(b.shown.rjust(values), style="bold")
    return out
