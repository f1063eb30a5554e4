"""First start (the interactive counterpart of ``liudong init``): the organization's name and
kind, a new passphrase typed twice; the store is created in a thread (the key derivation is
calibrated to this machine), then the recovery key is shown once and must be acknowledged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Select, Static

from store import LiudongError, Store, ValidationError
from store.schema import CHOICES
from tui.output import t


class FirstStartScreen(Screen[None]):
    DEFAULT_CSS = """
    FirstStartScreen { align: center middle; }
    FirstStartScreen #box { width: 72; height: auto; border: round $primary; padding: 0 2; }
    FirstStartScreen .title { text-style: bold; width: 100%; content-align: center middle; }
    FirstStartScreen .label { margin-top: 1; }
    FirstStartScreen #message { height: auto; margin-top: 1; }
    FirstStartScreen #message.error { color: $error; }
    FirstStartScreen #key { text-style: bold; color: $warning; margin: 1 0; width: 100%;
                            content-align: center middle; }
    """
    BINDINGS = [Binding("ctrl+s", "create", t("创建", "Create"))]
    AUTO_FOCUS = "#org"

    def __init__(self, store_dir: Path, kdf: Any = None) -> None:
        super().__init__()
        self.store_dir = store_dir
        self.kdf = kdf
        self.store: Store | None = None

    def compose(self) -> ComposeResult:
        kinds = [(zh if t("zh", "en") == "zh" else en, v) for v, zh, en in CHOICES["org_kind"]]
        with Center(), Vertical(id="box"):
            yield Static(t("首次使用 · 新建加密存储", "First start · a new encrypted store"),
                         classes="title")
            yield Static(t(f"位置：{self.store_dir}", f"location: {self.store_dir}"), classes="hint")
            yield Static(t("本组织名称", "name of this organization"), classes="label")
            yield Input(placeholder=t("例如：城关村党支部", "e.g. 城关村党支部"), id="org")
            yield Static(t("组织类别", "kind"), classes="label")
            yield Select(kinds, value="branch", allow_blank=False, id="kind")
            yield Static(t("口令（至少 8 个字符）", "passphrase (8 characters or more)"),
                         classes="label")
            yield Input(password=True, id="pass1")
            yield Static(t("再输一遍口令", "the passphrase again"), classes="label")
            yield Input(password=True, id="pass2")
            yield Static(t("填好后按 ctrl+s 创建。", "Press ctrl+s to create."), id="message")
            yield Button(t("创建", "Create"), id="create", variant="primary")
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "pass2":
            self.action_create()
        else:
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self.action_create()
        elif event.button.id == "done" and self.store is not None:
            store, self.store = self.store, None
            self.app.pop_screen()
            self.app.unlocked(store)  # type: ignore[attr-defined]

    def _say(self, text: str, error: bool = False) -> None:
        message = self.query_one("#message", Static)
        message.update(text)
        message.set_class(error, "error")

    def action_create(self) -> None:
        if self.store is not None:
            return
        name = self.query_one("#org", Input).value.strip()
        first = self.query_one("#pass1", Input).value
        second = self.query_one("#pass2", Input).value
        if not name:
            self._say(t("请填写本组织名称。", "The organization's name is required."), True)
            self.query_one("#org", Input).focus()
            return
        if first != second:
            self._say(t("两次输入的口令不一致。", "The two passphrases differ."), True)
            self.query_one("#pass2", Input).value = ""
            self.query_one("#pass2", Input).focus()
            return
        kind = self.query_one("#kind", Select).value
        self._say(t("正在根据本机性能设定密钥强度…", "Calibrating key strength to this machine…"))
        self._create(name, str(kind), first)

    @work(thread=True, exclusive=True, group="create")
    def _create(self, name: str, kind: str, passphrase: str) -> None:
        try:
            store, recovery = Store.create(self.store_dir, passphrase, kdf=self.kdf,
                                           org={"name": name, "kind": kind})
        except ValidationError as exc:
            self.app.call_from_thread(self._say, exc.message(), True)
        except (LiudongError, OSError) as exc:
            text = exc.message() if isinstance(exc, LiudongError) else str(exc)
            self.app.call_from_thread(self._say, text, True)
        else:
            self.app.call_from_thread(self._show_key, store, recovery)

    def _show_key(self, store: Store, recovery: str) -> None:
        self.store = store
        box = self.query_one("#box")
        for child in list(box.children):
            child.remove()
        box.mount(
            Static(t("存储已创建", "The store is ready"), classes="title"),
            Static(t("恢复密钥只显示这一次。请抄写在纸上，与电脑分开保管；忘记口令时只能用它打开存储。",
                     "The recovery key is shown this once. Write it on paper and keep it apart "
                     "from the computer: it is the only way in if the passphrase is lost.")),
            Static(recovery, id="key"),
            Button(t("我已抄好，进入", "I wrote it down: continue"), id="done", variant="primary"),
        )
        self.call_after_refresh(lambda: self.query_one("#done", Button).focus())
