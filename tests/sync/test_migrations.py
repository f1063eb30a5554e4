"""Schema migrations upgrade an existing database and keep its data (DESIGN §3.5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from sync.server import db
from sync.server.admin import add_org, list_orgs
from tests.sync.harness import database


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_version_1_database_is_upgraded_with_its_data(kind: str, tmp_path: Path) -> None:
    with database(kind, tmp_path) as url:
        engine = db.make_engine(url)
        try:
            assert db.migrate(engine, target=1) == 0
            org_id = add_org(engine, {"name": "光山县委", "kind": "county"})
            with engine.connect() as conn:
                epoch = db.get_meta(conn, "epoch")
                assert "client_version" not in {c["name"] for c in inspect(conn).get_columns(
                    "devices")}
            assert db.migrate(engine) == 1
            with engine.connect() as conn:
                assert db.schema_version(conn) == db.SCHEMA_VERSION == 2
                assert db.get_meta(conn, "epoch") == epoch
                columns = {c["name"] for c in inspect(conn).get_columns("devices")}
                indexes = {i["name"] for i in inspect(conn).get_indexes("ops")}
                seq = conn.execute(select(db.counter.c.seq)).scalar()
            assert "client_version" in columns and "ix_ops_rec" in indexes
            assert [o["id"] for o in list_orgs(engine)] == [org_id] and seq >= 1
            assert db.migrate(engine) == 2  # nothing left to do
        finally:
            engine.dispose()
