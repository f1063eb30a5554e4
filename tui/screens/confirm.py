"""A yes/no question over the current screen (``ModalScreen[bool]``): ``y``/Enter on 是,
``n``/Esc answers no. Any screen may ask one::

    self.app.push_screen(ConfirmScreen(t("放弃修改？", "Discard changes?")), callback)
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.output import t


class ConfirmScreen(ModalScreen[bool]):
    """Ask a question; dismissed with True (yes) or False (no)."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: auto; max-width: 70; min-width: 30; height: auto;
                               border: thick $warning; background: $surface; padding: 1 2; }
    ConfirmScreen #question { text-style: bold; width: auto; }
    ConfirmScreen #detail { color: $text-muted; width: auto; margin-top: 1; }
    ConfirmScreen Horizontal { height: auto; width: auto; margin-top: 1; }
    ConfirmScreen Button { margin-right: 2; min-width: 10; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", t("是", "Yes")),
        Binding("n,escape", "answer(False)", t("否", "No")),
        Binding("left,right", "switch", show=False),
    ]

    def __init__(self, question: str, detail: str = "", *, yes: str | None = None,
                 no: str | None = None, default: bool = False) -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.yes_label = yes or t("是 (y)", "Yes (y)")
        self.no_label = no or t("否 (n)", "No (n)")
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="question")
            if self.detail:
                yield Static(self.detail, id="detail")
            with Horizontal():
                yield Button(self.yes_label, id="yes", variant="warning", compact=True)
                yield Button(self.no_label, id="no", variant="default", compact=True)

    def on_mount(self) -> None:
        self.query_one("#yes" if self.default else "#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    def action_switch(self) -> None:
        yes = self.query_one("#yes", Button)
        (self.query_one("#no", Button) if yes.has_focus else yes).focus()
