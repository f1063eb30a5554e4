"""Placeholder for the meetings section (being written)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import Page


class MeetingsScreen(Page):
    SECTION = "meetings"

    def compose_body(self) -> ComposeResult:
        yield Static("会议", classes="body")
