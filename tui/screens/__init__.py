"""The interface's screens. Each section of the app is a mode (``LiudongApp.MODES``)."""

from __future__ import annotations

from typing import Any


def modes() -> dict[str, Any]:
    """Section name → screen factory, imported lazily so that start-up loads only what shows."""

    def lazy(module: str, cls: str) -> Any:
        def make() -> Any:
            import importlib

            return getattr(importlib.import_module(f"tui.screens.{module}"), cls)()
        return make

    return {
        "worklist": lazy("worklist", "WorklistScreen"),
        "members": lazy("members", "MembersScreen"),
        "flows": lazy("flows", "FlowsScreen"),
        "meetings": lazy("meetings", "MeetingsScreen"),
        "county": lazy("county", "CountyScreen"),
        "sync": lazy("sync", "SyncScreen"),
    }
