"""The terminal interface (DESIGN §4): one Textual app over one open store.

The app owns the store and the sync state; screens read the store and refresh when it announces
a commit (``revision`` goes up after every commit, whatever thread made it). Each section
(worklist, members, flows, meetings, county, sync) is a Textual mode with its own screen stack,
so `2` returns to the members list where it was left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive

from store import Store
from tui.output import t

SECTIONS = ("worklist", "members", "flows", "meetings", "county", "sync")


@dataclass(frozen=True)
class SyncStatus:
    """What the status line shows about sync (DESIGN §4)."""

    enrolled: bool = False
    phase: str = "local"  # local | offline | syncing | synced | error
    pending: int = 0
    last_sync: int | None = None  # unix time of the last completed sync
    conflicts: int = 0
    rejected: int = 0
    message: str = ""


class StoreChanged(Message):
    """The store committed something (posted from the committing thread)."""

    def __init__(self, change: Any) -> None:
        super().__init__()
        self.change = change


class LiudongApp(App[int]):
    """流动党员管理 — the branch worker's register."""

    TITLE = "流动"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", t("退出", "Quit"), priority=True, id="quit"),
        Binding("f1", "help", t("帮助", "Help"), id="help"),
        Binding("f5", "sync_now", t("同步", "Sync"), id="sync"),
        Binding("1", "section('worklist')", t("待办", "Worklist"), show=False),
        Binding("2", "section('members')", t("党员", "Members"), show=False),
        Binding("3", "section('flows')", t("流动", "Flows"), show=False),
        Binding("4", "section('meetings')", t("会议", "Meetings"), show=False),
        Binding("5", "section('county')", t("统计任务", "County"), show=False),
        Binding("6", "section('sync')", t("同步", "Sync"), show=False),
    ]

    revision: reactive[int] = reactive(0, init=False)
    """Goes up after every commit to the store, from any thread: screens watch it."""
    sync_status: reactive[SyncStatus] = reactive(SyncStatus, init=False)
    """The sync state the status line shows; the sync worker replaces it."""

    def __init__(self, store_dir: Path, *, store: Store | None = None,
                 passphrase: str | None = None, today: Any = None,
                 recovery: bool = False, kdf: Any = None) -> None:
        from tui.screens import modes

        self.MODES = modes()
        super().__init__()
        self.store_dir = Path(store_dir)
        self.store: Store | None = store
        self._passphrase = passphrase
        self._recovery = recovery
        self.kdf = kdf  # key derivation for a store made at first start (tests: light)
        self._unsubscribe: Any = None
        self.today = today  # fixed date for tests and snapshots; None: the real date
        self.sync_worker: Any = None
        self.last_change: Any = None

    # -- start and stop ------------------------------------------------------------------------
    def on_mount(self) -> None:
        from tui.screens.unlock import UnlockScreen

        if self.store is not None:
            self.unlocked(self.store)
            return
        self.push_screen(UnlockScreen(self.store_dir, self._passphrase, self._recovery))

    def unlocked(self, store: Store) -> None:
        """The store is open: subscribe to its commits and show the worklist."""
        self.store = store
        self._unsubscribe = store.subscribe(self._store_changed)
        self.title = str(self.org_name())
        self.switch_mode("worklist")
        # the members list's order is built on first use (tens of ms at 20,000 members):
        # build it now, beside the first screen, so that `2` finds it ready
        self.run_worker(store.member_order, thread=True, group="warm", exit_on_error=False)
        from tui.sync_worker import start_sync

        start_sync(self)

    def _store_changed(self, change: Any) -> None:
        """Called by the store after each commit, on the committing thread (post_message is
        thread-safe and does not wait)."""
        self.post_message(StoreChanged(change))

    def on_store_changed(self, message: StoreChanged) -> None:
        self.last_change = message.change
        self.revision += 1

    async def on_unmount(self) -> None:
        self.close_store()

    def close_store(self) -> None:
        if self.sync_worker is not None:
            self.sync_worker.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- what screens ask ------------------------------------------------------------------------
    def org_name(self) -> str:
        store = self.store
        if store is None:
            return "流动"
        org = store.get(store.meta.get("own_org_id") or "")
        return str(org["name"]) if org else "流动"

    def today_date(self) -> Any:
        import datetime as dt

        return self.today or dt.date.today()

    # -- actions -------------------------------------------------------------------------------
    def action_section(self, name: str) -> None:
        if self.store is None:
            return
        if self.current_mode == name:
            # back to the section's first screen, unless that would throw away typed data
            above = self.screen_stack[1:]
            if any(getattr(s, "dirty", False) is True or getattr(s, "changed", False) is True
                   for s in above):
                self.notify(t("表单尚未保存：ctrl+s 保存，esc 取消。",
                              "The form is not saved: ctrl+s saves, esc cancels."),
                            severity="warning")
                return
            while len(self.screen_stack) > 1:
                self.pop_screen()
            return
        self.switch_mode(name)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_sync_now(self) -> None:
        if self.sync_worker is not None:
            self.sync_worker.sync_now()
        else:
            self.notify(t("本设备尚未在县级服务器登记，数据只在本机。",
                          "This device is not enrolled with a county server: data stays here."),
                        severity="warning")

    def set_sync_status(self, **changes: Any) -> None:
        self.sync_status = replace(self.sync_status, **changes)

    def get_system_commands(self, screen: Any) -> Any:
        from tui.commands import system_commands

        yield from super().get_system_commands(screen)
        yield from system_commands(self, screen)


def run_interface(store_dir: Path, *, lang: str | None = None, recovery: bool = False) -> int:
    """Open the interface on a store (``liudong [--store DIR]``)."""
    import sys

    if lang:
        os.environ["LIUDONG_LANG"] = lang
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(t("终端界面需要在终端中运行；脚本请使用子命令（liudong --help）。",
                "The interface needs a terminal; scripts use the subcommands (liudong --help)."),
              file=sys.stderr)
        return 2
    secret = os.environ.get("LIUDONG_RECOVERY_KEY" if recovery else "LIUDONG_PASSPHRASE")
    app = LiudongApp(store_dir, passphrase=secret or None, recovery=recovery)
    import signal

    def close(signum: int, frame: Any) -> None:
        # The window was closed (SIGHUP) or the system is stopping (SIGTERM): leave as with
        # ctrl+q, so an open form keeps what was typed as a draft and the store closes cleanly.
        app.exit(128 + signum)

    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, close)
    result = app.run()
    app.close_store()
    return int(result or 0)
