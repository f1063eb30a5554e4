"""Fixtures for the interface's tests (Pilot, headless), on real encrypted stores.

``branch`` makes a store with a few members (one away, pending report); ``run_app`` runs the
app over an open store at a fixed size and date. The cursor does not blink in tests, so what
the screen shows does not depend on when it is read (as Harlequin and Posting do).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from store import Store, register
from tests.conftest import PASSPHRASE, create_store, make_id_number

TODAY = dt.date(2026, 12, 3)


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@dataclass
class Branch:
    """A branch's store on disk and the ids of what it holds."""

    path: Path
    ids: dict[str, str]

    def open(self) -> Store:
        return Store.open(self.path, PASSPHRASE)


def build_branch(path: Path) -> Branch:
    """城关村党支部 with 张三 (away since 2026-09-01, not yet reported in), 李四, 王五."""
    store, _ = create_store(path)
    ids: dict[str, str] = {}
    with store:
        for n, name in enumerate(("张三", "李四", "王五")):
            ids[name] = register.add_member(store, {
                "name": name, "id_number": make_id_number(seq=31 + n),
                "phone": f"1380013{n:04d}"})
        ids["flow 张三"] = register.flow_out(store, ids["张三"], {
            "left_on": "2026-09-01", "reason": "work", "external_host": "南山区科技园综合党委"})
    return Branch(path, ids)


@pytest.fixture
def branch(tmp_path: Path) -> Branch:
    return build_branch(tmp_path / "store")


@asynccontextmanager
async def run_app(store: Store, path: Path, size: tuple[int, int] = (100, 40),
                  today: dt.date = TODAY) -> AsyncIterator[tuple[Any, Any]]:
    """The app over an open store (closed when the app ends), and its pilot."""
    from tui.app import LiudongApp

    app = LiudongApp(path, store=store, today=today)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        yield app, pilot


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 15.0,
                   what: str = "") -> float:
    """Seconds until ``condition`` holds, polling the interface every 10 ms."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"the interface did not get there in {timeout} s: {what}")
        await pilot.pause(0.01)
    return time.monotonic() - start


def screen_text(app: Any) -> str:
    """Everything the screen shows, as text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.fixture
def notifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every ``app.notify`` message, in order."""
    from textual.app import App

    seen: list[str] = []
    original = App.notify

    def spy(self: Any, message: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(message))
        return original(self, message, *args, **kwargs)

    monkeypatch.setattr(App, "notify", spy)
    yield seen
