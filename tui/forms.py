"""Forms (placeholder: being written)."""

from __future__ import annotations

from typing import Any

ACTIONS: dict[str, tuple[str, str]] = {}


def open_form(app: Any, action: str, **ctx: Any) -> None:
    app.notify(f"form {action} {ctx}")
