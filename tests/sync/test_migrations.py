"""Schema migrations upgrade an existing database and keep its data (DESIGN §3.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from store.ids import new_ulid
from sync.server import db
from sync.server.admin import list_orgs
from tests.sync.harness import database


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_version_1_database_is_upgraded_with_its_data(kind: str, tmp_path: Path) -> None:
    with database(kind, tmp_path) as url:
        engine = db.make_engine(url)
        try:
            assert db.migrate(engine, target=1) == 0
            org_id = new_ulid()
            fields = {"name": "光山县委", "kind": "county"}
            with engine.begin() as conn:  # rows as release 1 wrote them
                epoch = db.get_meta(conn, "epoch")
                conn.execute(text(
                    "INSERT INTO records (rec_id, type, data, versions, hlcs, created_at, "
                    "updated_at, deleted, seq) VALUES (:id, 'org', :data, '{}', '{}', :h, :h, "
                    ":deleted, 1)"), {"id": org_id, "data": json.dumps(fields),
                                      "h": "0" * 16, "deleted": False})
                conn.execute(text(
                    "INSERT INTO ops (device_id, dev_seq, seq, rec_id, type, body, "
                    "received_at, outcome) VALUES ('admin', 1, 1, :id, 'org', '{}', 0, "
                    "'applied')"), {"id": org_id})
                conn.execute(text(
                    "INSERT INTO org_closure (org_id, ancestor_id, depth) VALUES (:id, :id, 0)"),
                    {"id": org_id})
                assert "client_version" not in {
                    c["name"] for c in inspect(conn).get_columns("devices")}
            assert db.migrate(engine) == 1
            with engine.connect() as conn:
                assert db.schema_version(conn) == db.SCHEMA_VERSION
                assert db.get_meta(conn, "epoch") == epoch
                device_columns = {c["name"] for c in inspect(conn).get_columns("devices")}
                op_columns = {c["name"] for c in inspect(conn).get_columns("ops")}
                indexes = {i["name"] for i in inspect(conn).get_indexes("ops")}
                op = conn.execute(select(db.ops)).one()
            assert "client_version" in device_columns and "ix_ops_rec" in indexes
            assert "prev_seq" in op_columns and op.prev_seq is None and op.rec_id == org_id
            assert [(o["id"], o["name"]) for o in list_orgs(engine)] == [(org_id, "光山县委")]
            assert db.migrate(engine) == db.SCHEMA_VERSION  # nothing left to do
        finally:
            engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_version_4_drops_stored_mobility_and_indexes_id_numbers(kind: str,
                                                                tmp_path: Path) -> None:
    """Mobility became derived (DESIGN §2.2): a version 3 database loses the stored field and
    gains the county's ID-number index from the members it holds (first come keeps a number
    that was registered twice)."""
    with database(kind, tmp_path) as url:
        engine = db.make_engine(url)
        try:
            db.migrate(engine, target=3)
            first, second, county = new_ulid(), new_ulid(), new_ulid()
            fields = {"name": "张三", "id_number": "41152219880512123X", "mobility": "outflow"}
            with engine.begin() as conn:
                for seq, rec_id in enumerate((first, second), start=1):
                    conn.execute(text(
                        "INSERT INTO records (rec_id, type, county_id, data, versions, hlcs, "
                        "created_at, updated_at, deleted, seq) VALUES (:id, 'member', :c, "
                        ":data, '{}', '{}', :h, :h, :deleted, :seq)"),
                        {"id": rec_id, "c": county, "data": json.dumps(fields),
                         "h": "0" * 16, "deleted": False, "seq": seq})
            assert db.migrate(engine) == 3
            with engine.connect() as conn:
                data = [json.loads(r) for r in conn.execute(
                    select(db.records.c.data).order_by(db.records.c.seq)).scalars()]
                indexed = conn.execute(select(db.id_numbers)).all()
                op_columns = {c["name"] for c in inspect(conn).get_columns("ops")}
            assert [d.get("mobility") for d in data] == [None, None]
            assert [d["name"] for d in data] == ["张三", "张三"]
            assert [(r.county_id, r.id_number, r.rec_id) for r in indexed] == [
                (county, "41152219880512123X", first)]
            assert "digest" in op_columns
        finally:
            engine.dispose()
