"""The sync line at the bottom of every screen: offline / syncing / in sync, pending ops, last
sync, conflicts and rejected writes (DESIGN §4)."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widgets import Static

from tui.output import t


def phase_label(status: Any) -> tuple[str, str]:
    """The sync state in a few characters and its colour. Offline is yellow, not red: a branch
    laptop is offline most of the time, and nothing is lost meanwhile."""
    if not status.enrolled:
        return t("● 仅本机（未登记到县级服务器）", "● this computer only (not enrolled)"), "dim"
    return {
        "offline": (t("● 离线", "● offline"), "yellow"),
        "syncing": (t("◌ 同步中…", "◌ syncing…"), "cyan"),
        "synced": (t("● 已同步", "● in sync"), "green"),
        "error": (t("● 同步出错", "● sync error"), "red"),
        "local": (t("● 等待同步", "● not synced yet"), "dim"),
    }.get(status.phase, (status.phase, ""))


def describe(status: Any, now: float | None = None) -> Text:
    now = time.time() if now is None else now
    text = Text(" ")
    label, style = phase_label(status)
    text.append(label, style=style)
    if status.enrolled:
        text.append(t(f"  待发送 {status.pending}", f"  pending {status.pending}"))
        if status.last_sync:
            text.append(t(f"  上次同步 {ago(now - status.last_sync)}",
                          f"  last sync {ago(now - status.last_sync)}"))
    if status.conflicts:
        text.append(t(f"  冲突 {status.conflicts}", f"  conflicts {status.conflicts}"),
                    style="bold red")
    if status.rejected:
        text.append(t(f"  被拒 {status.rejected}", f"  rejected {status.rejected}"),
                    style="bold red")
    if status.message:
        text.append("  " + status.message, style="dim")
    return text


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return t("刚刚", "just now")
    if seconds < 3600:
        return t(f"{seconds // 60} 分钟前", f"{seconds // 60} min ago")
    if seconds < 86400:
        return t(f"{seconds // 3600} 小时前", f"{seconds // 3600} h ago")
    return t(f"{seconds // 86400} 天前", f"{seconds // 86400} d ago")


class SyncLine(Static):
    """Always visible: what sync is doing and what waits for the user."""

    DEFAULT_CSS = """
    SyncLine { height: 1; background: $panel; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "sync_status", self._show, init=True)
        self.set_interval(30, lambda: self._show(self.app.sync_status))  # type: ignore[attr-defined]

    def _show(self, status: Any) -> None:
        self.update(describe(status))
