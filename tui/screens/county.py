"""Placeholder for the county section (being written)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import Page


class CountyScreen(Page):
    SECTION = "county"

    def compose_body(self) -> ComposeResult:
        yield Static("统计与任务", classes="body")
