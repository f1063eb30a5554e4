"""Background sync (DESIGN §4). Placeholder: replaced by the sync worker."""

from __future__ import annotations

from typing import Any


def start_sync(app: Any) -> None:
    store = app.store
    app.set_sync_status(enrolled=bool(store.meta.get("server_url")),
                        pending=store.state.pending_count(),
                        conflicts=sum(1 for c in store.live("conflict") if c.get("status") == "open"),
                        rejected=len(store.meta.get("rejected", [])))
