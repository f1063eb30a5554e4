"""Placeholder for the sync section (being written)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.screens.base import Page


class SyncScreen(Page):
    SECTION = "sync"

    def compose_body(self) -> ComposeResult:
        yield Static("同步", classes="body")
