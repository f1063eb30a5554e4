"""The command palette (ctrl+p): every action of the interface, searchable in the user's
language."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.app import SystemCommand

from tui.output import t


def system_commands(app: Any, screen: Any) -> Iterator[SystemCommand]:
    if app.store is None:
        return
    sections = (
        ("worklist", "待办事项", "Worklist"), ("members", "党员名册", "Members"),
        ("flows", "流动登记", "Flows"), ("meetings", "会议与组织生活", "Meetings"),
        ("county", "统计与任务", "County statistics and tasks"), ("sync", "同步", "Sync"),
    )
    for n, (name, zh, en) in enumerate(sections, 1):
        yield SystemCommand(t(f"转到：{zh}", f"Go to: {en}"), t(f"按键 {n}", f"key {n}"),
                            partial(app.action_section, name))
    from tui.forms import ACTIONS, open_form

    for action, (zh, en) in ACTIONS.items():
        yield SystemCommand(t(zh, en), t("打开表单", "open the form"),
                            partial(open_form, app, action))
    yield SystemCommand(t("立即同步", "Sync now"), "f5", app.action_sync_now)
    yield SystemCommand(t("帮助：按键一览", "Help: the keys"), "f1", app.action_help)
