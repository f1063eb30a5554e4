"""A county for tests: the real FastAPI app over a real database (SQLite file or PostgreSQL),
reached in process through httpx (Starlette's TestClient), and real encrypted device stores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from store import TEST_KDF, Store
from sync.client import Device
from sync.server import db
from sync.server.admin import add_org, make_enroll_code
from sync.server.app import create_app
from tests.conftest import PASSPHRASE

PG_ENV = "LIUDONG_TEST_PG_URL"


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL of the given kind; PostgreSQL ones are dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'county-{uuid.uuid4().hex[:8]}.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set: CI must run these tests against PostgreSQL")
        pytest.skip(f"{PG_ENV} not set (./dev test starts a PostgreSQL and sets it)")
    import psycopg

    name = f"liudong_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class County:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.engine = db.make_engine(url)
        db.migrate(self.engine)
        self.app = create_app(self.engine)
        self.http = TestClient(self.app, base_url="http://county.test")
        self.stores: list[Store] = []

    def org(self, name: str, kind: str, parent: str | None = None, **extra: Any) -> str:
        fields = {"name": name, "kind": kind, **extra}
        if parent:
            fields["parent_id"] = parent
        return add_org(self.engine, fields)

    def code(self, org_id: str, hours: float = 72) -> str:
        return str(make_enroll_code(self.engine, org_id, "http://county.test", hours)["code"])

    def new_store(self, name: str) -> Store:
        store, _ = Store.create(self.tmp_path / name, PASSPHRASE, kdf=TEST_KDF,
                                org={"name": "本支部", "kind": "branch"})
        self.stores.append(store)
        return store

    def device(self, name: str, org_id: str, http: httpx.Client | None = None,
               **kwargs: Any) -> Device:
        store = self.new_store(name)
        device = Device(store, http=http or self.http, sleep=lambda s: None, **kwargs)
        device.enroll(self.code(org_id))
        device.sync()  # as `liudong enroll` does: the org tree arrives at once
        return device

    def reopen(self, device: Device) -> Device:
        """The device's process ended (a crash, or simply closed): open its store again."""
        path = device.store.path
        device.store.close()
        self.stores.remove(device.store)
        store = Store.open(path, PASSPHRASE)
        self.stores.append(store)
        return Device(store, http=device._http, sleep=device.sleep, attempts=device.attempts,
                      rng=device.rng, max_bytes=device.max_bytes)

    def close(self) -> None:
        for store in self.stores:
            store.close()
        self.http.close()
        self.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def county(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[County]:
    with database(request.param, tmp_path) as url:
        c = County(url, tmp_path)
        try:
            yield c
        finally:
            c.close()


@pytest.fixture
def county_tree(county: County) -> dict[str, str]:
    """光山县委 → 城关镇党委 → 城关村 / 东关村 branches; 十里镇党委 → 十里村."""
    ids: dict[str, str] = {}
    ids["county"] = county.org("光山县委", "county", division_code="411522")
    ids["town"] = county.org("城关镇党委", "committee", ids["county"])
    ids["a"] = county.org("城关村党支部", "branch", ids["town"])
    ids["b"] = county.org("东关村党支部", "branch", ids["town"])
    ids["town2"] = county.org("十里镇党委", "committee", ids["county"])
    ids["c"] = county.org("十里村党支部", "branch", ids["town2"])
    return ids
