"""Placeholder for the flows section (being written)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import Page


class FlowsScreen(Page):
    SECTION = "flows"

    def compose_body(self) -> ComposeResult:
        yield Static("流动", classes="body")
