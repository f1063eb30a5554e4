"""The unlock screen: the passphrase (or, after ctrl+r, the recovery key) opens the store. A
wrong passphrase and a damaged store get different messages; the key derivation runs in a
thread, so the screen stays alive while it works."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from store import (
    BadRecoveryKey,
    Corrupted,
    LiudongError,
    Locked,
    Store,
    WrongPassphrase,
)
from tui.output import t


class UnlockScreen(Screen[None]):
    DEFAULT_CSS = """
    UnlockScreen { align: center middle; }
    UnlockScreen #box { width: 60; height: auto; border: round $primary; padding: 1 2; }
    UnlockScreen #title { text-style: bold; width: 100%; content-align: center middle; }
    UnlockScreen #message { height: auto; min-height: 1; margin-top: 1; }
    UnlockScreen #message.error { color: $error; }
    UnlockScreen Input { margin-top: 1; }
    """
    BINDINGS = [
        Binding("ctrl+r", "toggle_recovery", t("用恢复密钥", "Use recovery key")),
    ]
    AUTO_FOCUS = "#secret"

    def __init__(self, store_dir: Path, passphrase: str | None = None,
                 recovery: bool = False) -> None:
        super().__init__()
        self.store_dir = store_dir
        self.passphrase = passphrase
        self.recovery = False
        self._start_recovery = recovery

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="box"):
            yield Static(t("流动党员管理 · 解锁", "Liudong · unlock"), id="title")
            yield Static(str(self.store_dir), classes="hint", id="where")
            yield Input(password=True, id="secret",
                        placeholder=t("口令", "passphrase"))
            yield Static(t("输入口令后按回车。忘记口令：按 ctrl+r 使用恢复密钥。",
                           "Type the passphrase and press enter. Forgot it: ctrl+r for the "
                           "recovery key."), id="message")
        yield Footer()

    def on_mount(self) -> None:
        if not (self.store_dir / "keyslots").exists():
            from tui.screens.first_start import FirstStartScreen

            self.app.switch_screen(FirstStartScreen(self.store_dir,
                                                    getattr(self.app, "kdf", None)))
            return
        if self._start_recovery:
            self.action_toggle_recovery()
        if self.passphrase:
            self._open(self.passphrase, recovery=self.recovery)

    def action_toggle_recovery(self) -> None:
        self.recovery = not self.recovery
        box = self.query_one("#secret", Input)
        box.value = ""
        box.password = not self.recovery
        box.placeholder = t("恢复密钥", "recovery key") if self.recovery else t("口令", "passphrase")
        self._say(t("输入恢复密钥（打开后请用 liudong passwd 设新口令）。",
                    "Type the recovery key (then set a new passphrase with liudong passwd).")
                  if self.recovery else t("输入口令后按回车。", "Type the passphrase and press enter."))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value:
            self._open(event.value, recovery=self.recovery)

    def _say(self, text: str, error: bool = False) -> None:
        message = self.query_one("#message", Static)
        message.update(text)
        message.set_class(error, "error")

    @work(thread=True, exclusive=True, group="unlock")
    def _open(self, secret: str, recovery: bool) -> None:
        self.app.call_from_thread(self._busy)
        try:
            store = (Store.open(self.store_dir, recovery_key=secret) if recovery
                     else Store.open(self.store_dir, secret))
        except (WrongPassphrase, BadRecoveryKey):
            self.app.call_from_thread(self._failed, t(
                "口令不对，请重试。" if not recovery else "恢复密钥不对，请核对后重试。",
                "Wrong passphrase, try again." if not recovery else
                "Wrong recovery key: check it and try again."))
        except Corrupted as exc:
            self.app.call_from_thread(self._failed, t(
                f"存储已损坏，无法打开：{exc.message()}。请从备份恢复（liudong restore）或联系县里。",
                f"The store is damaged and cannot be opened: {exc.message()}. Restore a backup "
                "(liudong restore) or call the county."))
        except Locked as exc:
            self.app.call_from_thread(self._failed, exc.message())
        except LiudongError as exc:
            self.app.call_from_thread(self._failed, exc.message())
        except OSError as exc:
            self.app.call_from_thread(self._failed, t(f"无法读取存储：{exc.strerror}",
                                                      f"cannot read the store: {exc.strerror}"))
        else:
            self.app.call_from_thread(self._done, store)

    def _busy(self) -> None:
        self._say(t("正在解锁…", "Unlocking…"))
        self.query_one("#secret", Input).disabled = True

    def _failed(self, text: str) -> None:
        self._say(text, error=True)
        box = self.query_one("#secret", Input)
        box.disabled = False
        box.value = ""
        box.focus()

    def _done(self, store: Store) -> None:
        self.app.pop_screen()
        self.app.unlocked(store)  # type: ignore[attr-defined]
