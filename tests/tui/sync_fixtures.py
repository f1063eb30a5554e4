"""A county for interface tests: the real FastAPI app served by uvicorn (as `liudong serve`
runs it) over real loopback TCP, in a thread of the test process, which can be stopped and
started again on the same port and made to answer late; and real encrypted stores enrolled
with it by one-time codes, which the app then syncs from its own worker thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from store import Store
from sync.client import Device
from sync.protocol import SYNC_PATH
from sync.server import db, identity
from sync.server.admin import add_org, make_enroll_code
from sync.server.app import create_app
from sync.server.serving import make_server
from tests.conftest import create_store


class Late:
    """ASGI wrapper: each sync request is answered ``delay`` seconds late (a slow link, or a
    county server under load), without blocking the server's other requests."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.delay = 0.0
        self.requests = 0
        self.cut = False  # the server is stopping: late answers stop waiting

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == SYNC_PATH:
            self.requests += 1
            end = time.monotonic() + self.delay
            while time.monotonic() < end and not self.cut:
                await asyncio.sleep(0.02)
        await self.app(scope, receive, send)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackCounty:
    """光山县委 → 城关镇党委 → 城关村党支部 (``a``) / 东关村党支部 (``b``), served on loopback
    over plain HTTP (TLS is covered in tests/e2e; answers are still signed and verified)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.engine = db.make_engine(f"sqlite:///{tmp_path / 'county.db'}")
        db.migrate(self.engine)
        identity.record_served(self.engine, identity.INSECURE)
        self.asgi = Late(create_app(self.engine))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.orgs: dict[str, str] = {}
        self.orgs["county"] = add_org(self.engine, {"name": "光山县委", "kind": "county",
                                                    "division_code": "411522"})
        self.orgs["town"] = add_org(self.engine, {"name": "城关镇党委", "kind": "committee",
                                                  "parent_id": self.orgs["county"]})
        self.orgs["a"] = add_org(self.engine, {"name": "城关村党支部", "kind": "branch",
                                               "parent_id": self.orgs["town"]})
        self.orgs["b"] = add_org(self.engine, {"name": "东关村党支部", "kind": "branch",
                                               "parent_id": self.orgs["town"]})
        self.stores: list[Store] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # -- serving ---------------------------------------------------------------------------------
    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self._sock = sock
        self._server = make_server(self.asgi)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"county-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the county server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """As when the county's machine goes away: nobody listens on the port any more."""
        if self._server is None:
            return
        self.asgi.cut = True
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(15)
        self.asgi.cut = False
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    # -- devices ---------------------------------------------------------------------------------
    def enrolled_store(self, name: str, org: str = "a") -> Store:
        """A laptop's store enrolled with a one-time code, after its first sync (as `liudong
        enroll` leaves it)."""
        store, _ = create_store(self.tmp_path / name)
        self.stores.append(store)
        code = make_enroll_code(self.engine, self.orgs[org], self.url)["code"]
        device = Device(store, sleep=lambda s: None)
        try:
            device.enroll(code)
            device.sync()
        finally:
            device.close()
        return store

    def sync(self, store: Store) -> Any:
        device = Device(store, sleep=lambda s: None)
        try:
            return device.sync()
        finally:
            device.close()

    def record(self, rec_id: str) -> dict[str, Any]:
        """A record as the county holds it."""
        import json

        from sqlalchemy import select

        with db.read(self.engine) as conn:
            row = conn.execute(select(db.records).where(db.records.c.rec_id == rec_id)).one()
        return dict(json.loads(row.data))

    def close(self) -> None:
        self.stop()
        for store in self.stores:
            store.close()
        self.engine.dispose()


@contextmanager
def loopback_county(tmp_path: Path) -> Iterator[LoopbackCounty]:
    """A county serving on loopback for the length of the block."""
    county = LoopbackCounty(tmp_path)
    county.start()
    try:
        yield county
    finally:
        county.close()


# -- looking at the interface ------------------------------------------------------------------
# (screen_text and wait_for are in tests/tui/conftest.py)

def status_line(app: Any) -> str:
    from tui.widgets.status import SyncLine

    content = app.screen.query_one(SyncLine).content
    return str(getattr(content, "plain", content))


def spy_notifications(app: Any) -> list[tuple[str, str]]:
    """(severity, message) of every toast the app asks for."""
    told: list[tuple[str, str]] = []
    notify = app.notify

    def spy(message: str, *args: Any, **kwargs: Any) -> Any:
        told.append((str(kwargs.get("severity", "information")), str(message)))
        return notify(message, *args, **kwargs)

    app.notify = spy
    return told
