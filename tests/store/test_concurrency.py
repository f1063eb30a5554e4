"""The store under an interactive app (DESIGN §2.4): the interface commits from its thread while
a sync worker commits from another and screens read; compaction runs beside commits.

Records handed out are read-only; commits are serialized; each commit is announced once, outside
the store's lock; a commit does not wait for a compaction; network I/O runs without the lock."""

from __future__ import annotations

import copy
import json
import pickle
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import Change, Record, Store
from store.register import add_member
from store.state import State
from sync.client import Device
from sync.server import db, identity
from sync.server.admin import add_org, make_enroll_code
from sync.server.app import create_app
from sync.server.serving import make_server
from tests.conftest import PASSPHRASE, create_store

# -- read-only records ---------------------------------------------------------------------------


def test_records_handed_out_refuse_change(store: Store) -> None:
    member_id = add_member(store, {"name": "张三", "phone": "13800000000"})
    meeting = store.put("meeting", {"org_id": store.meta["own_org_id"], "kind": "group",
                                    "held_on": "2026-05-02", "attendee_ids": [member_id],
                                    "absences": [{"member_id": member_id, "reason": "病假"}]})
    doc = store.get(member_id)
    assert doc is not None
    for found in (doc, next(iter(store.live("member"))), store.search_members("张")[0],
                  store.table("member").search(lambda d: True)[0]):
        assert isinstance(found, Record)
        with pytest.raises(TypeError, match="read-only"):
            found["name"] = "李四"  # type: ignore[index]
        for mutate in (lambda d: d.pop("name"), lambda d: d.update(name="李四"),
                       lambda d: d.setdefault("x", 1), lambda d: d.clear(),
                       lambda d: d.popitem(), lambda d: d.__delitem__("name")):
            with pytest.raises(TypeError):
                mutate(found)
    mdoc = store.get(meeting)
    assert mdoc is not None
    with pytest.raises(TypeError):
        mdoc["attendee_ids"].append("someone")
    with pytest.raises(TypeError):
        mdoc["absences"][0]["reason"] = "事假"
    # still a dict for everything that reads one
    assert json.loads(json.dumps(doc)) == dict(doc)
    plain = dict(doc)
    plain["name"] = "李四"
    assert {**doc, "name": "王五"}["name"] == "王五" and doc["name"] == "张三"
    assert copy.deepcopy(mdoc) == mdoc and pickle.loads(pickle.dumps(mdoc)) == mdoc
    assert json.loads(json.dumps(mdoc))["attendee_ids"] == [member_id]
    # an edit makes a new record: what a reader holds stays as it was
    store.put("member", {"name": "李四"}, member_id)
    assert doc["name"] == "张三" and store.get(member_id)["name"] == "李四"  # type: ignore[index]


def test_live_can_be_iterated_while_commits_go_on(store: Store) -> None:
    for i in range(50):
        add_member(store, {"name": f"党员{i}"})
    seen = 0
    for _ in store.live("member"):
        add_member(store, {"name": "又一个"})  # the table grows under the loop
        seen += 1
    assert seen == 50


# -- change events -------------------------------------------------------------------------------


def test_each_commit_is_announced_once_outside_the_lock(store: Store) -> None:
    heard: list[tuple[Change, int]] = []
    took_lock: list[bool] = []

    def listener(change: Change) -> None:
        heard.append((change, threading.get_ident()))
        # another thread can commit from inside a callback: the store's lock is not held
        t = threading.Thread(target=lambda: took_lock.append(store._mutex.acquire(timeout=2)
                                                             and (store._mutex.release() or True)))
        t.start()
        t.join()

    def broken(change: Change) -> None:
        raise RuntimeError("a screen that fails to refresh")

    store.subscribe(broken)
    stop = store.subscribe(listener)
    with store.batch() as b:
        own = store.meta["own_org_id"]
        a = b.put("member", {"name": "张三", "home_org_id": own, "standing": "full"})
        c = b.put("member", {"name": "李四", "home_org_id": own, "standing": "full"})
        f = b.put("flow", {"member_id": a, "left_on": "2026-03-01", "reason": "work",
                           "status": "pending_report"})
    store.set_meta(note="x")
    store.delete(c)
    assert [h[0] for h in heard] == [
        Change("local", frozenset({a, c, f}), frozenset({"member", "flow"})),
        Change("meta", frozenset(), frozenset()),
        Change("local", frozenset({c}), frozenset({"member"})),
    ]
    assert {h[1] for h in heard} == {threading.get_ident()} and all(took_lock)
    with store.batch():
        pass  # nothing changed: nothing committed, nothing announced
    stop()
    add_member(store, {"name": "王五"})
    assert len(heard) == 3
    assert store.get(a) is not None  # the failing callback broke nothing


def test_a_sync_entry_names_the_records_it_touched(store: Store) -> None:
    heard: list[Change] = []
    store.subscribe(heard.append)
    mine = add_member(store, {"name": "张三"})
    theirs = "01J00000000000000000000XYZ"
    store.commit({"k": "sync", "acked": 1, "applied": [[1, 5]], "cursor": 9, "removes": [mine],
                  "changes": [{"id": theirs, "t": "member", "f": {"name": "李四"}, "v": 7,
                               "c": "0" * 16}]})
    assert heard[-1] == Change("sync", frozenset({mine, theirs}), frozenset({"member"}))


# -- compaction beside commits -------------------------------------------------------------------


@pytest.fixture
def slow_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each piece of a snapshot takes a little while to produce: a compaction of a few thousand
    records takes seconds, as one of a large register does."""
    pieces = State.pieces

    def slow(self: State, per: int = 100) -> Iterator[bytes]:
        for piece in pieces(self, per=20):
            time.sleep(0.01)
            yield piece

    monkeypatch.setattr(State, "pieces", slow)


def big_store(path: Path, members: int) -> tuple[Store, list[str]]:
    store, _ = create_store(path)
    ids: list[str] = []
    for start in range(0, members, 100):
        with store.batch() as b:
            ids += [b.put("member", {"name": f"党员{n}", "notes": "x" * 50, "standing": "full",
                                     "home_org_id": store.meta["own_org_id"]})
                    for n in range(start, start + 100)]
    store.compact()
    return store, ids


def test_a_commit_does_not_wait_for_a_compaction(store_path: Path,
                                                 slow_compaction: None) -> None:
    store, ids = big_store(store_path, 1000)
    gen = store.gen
    store.put("member", {"notes": "before"}, ids[0])
    assert store.compact_in_background()  # as when the journal outgrows the snapshot
    assert store._compactor is not None
    started = time.perf_counter()
    latencies = []
    values = {}
    for n in range(30):
        rec_id = ids[n * 7]
        t0 = time.perf_counter()
        store.put("member", {"notes": f"edit {n}"}, rec_id)
        latencies.append(time.perf_counter() - t0)
        values[rec_id] = f"edit {n}"
    assert store._compactor is not None, "the compaction ended before the commits did"
    assert store.gen == gen
    store.wait_for_compaction()
    took = time.perf_counter() - started
    assert store.compaction_error is None and store.gen == gen + 1
    assert max(latencies) < took / 4, (max(latencies), took)
    names = sorted(p.name for p in store_path.iterdir())
    assert names == [f"journal-{gen + 1:08d}", "keyslots", "lock", f"snapshot-{gen + 1:08d}"]
    store.close()
    with Store.open(store_path, PASSPHRASE) as again:  # the commits made meanwhile were carried
        assert again.gen == gen + 1
        for rec_id, value in values.items():
            assert again.get(rec_id)["notes"] == value  # type: ignore[index]
        assert not [f for f in again.doctor() if f.level == "error"]


def test_close_waits_for_a_running_compaction_or_stops_it(tmp_path: Path,
                                                          slow_compaction: None) -> None:
    for abandon in (False, True):
        path = tmp_path / f"store-{abandon}"
        store, ids = big_store(path, 1000)
        gen = store.gen
        store.put("member", {"notes": "last"}, ids[1])
        assert store.compact_in_background()
        t0 = time.perf_counter()
        store.close(abandon_compaction=abandon)
        took = time.perf_counter() - t0
        left = gen if abandon else gen + 1  # stopped, or waited for
        assert sorted(p.name for p in path.iterdir()) == [
            f"journal-{left:08d}", "keyslots", "lock", f"snapshot-{left:08d}"]
        assert (took < 1.0) if abandon else (took > 1.0)
        with Store.open(path, PASSPHRASE) as again:
            assert again.gen == left and again.get(ids[1])["notes"] == "last"  # type: ignore[index]


# -- threads: an interface, a sync worker, readers, against a county on loopback ---------------


class Loopback:
    """The county server (the real app, served by uvicorn as `liudong serve` runs it) on a
    loopback port, in a thread of this process."""

    def __init__(self, tmp_path: Path) -> None:
        self.engine = db.make_engine(f"sqlite:///{tmp_path / 'county.db'}")
        db.migrate(self.engine)
        identity.record_served(self.engine, identity.INSECURE)
        county = add_org(self.engine, {"name": "光山县委", "kind": "county",
                                       "division_code": "411522"})
        self.branch = add_org(self.engine, {"name": "城关村党支部", "kind": "branch",
                                            "parent_id": county})
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = make_server(create_app(self.engine))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.02)

    def record(self, rec_id: str) -> dict[str, Any]:
        from sqlalchemy import select

        with db.read(self.engine) as conn:
            row = conn.execute(select(db.records).where(db.records.c.rec_id == rec_id)).one()
        return dict(json.loads(row.data))

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()
        self.engine.dispose()


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    county = Loopback(tmp_path)
    try:
        yield county
    finally:
        county.close()


@pytest.mark.slow
def test_interface_sync_and_readers_at_once(loopback: Loopback, store_path: Path) -> None:
    store, _ = create_store(store_path)
    device = Device(store, sleep=lambda s: None)
    device.enroll(str(make_enroll_code(loopback.engine, loopback.branch, loopback.url)["code"]))
    device.sync()
    store.compact_min = 16384  # compactions run beside all this too
    gen = store.gen
    rng = random.Random(20261203)
    acked: dict[str, str] = {}  # rec_id → notes, as the interface was told it was committed
    heard: list[tuple[Change, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()
    store.subscribe(lambda change: heard.append((change, threading.get_ident())))
    edits: list[tuple[int, str]] = []  # (thread, rec_id) of each commit the interface made

    def interface() -> None:
        try:
            ids: list[str] = []
            for n in range(160):
                value = f"第{n}次"
                if not ids or rng.random() < 0.35:
                    rec_id = add_member(store, {"name": rng.choice("张李王赵") + "某",
                                                "notes": value})
                    ids.append(rec_id)
                else:
                    rec_id = rng.choice(ids)
                    store.put("member", {"notes": value}, rec_id)
                acked[rec_id] = value
                edits.append((threading.get_ident(), rec_id))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    syncs = [0]

    def sync_worker() -> None:
        worker = Device(store, sleep=lambda s: None)
        try:
            while not done.is_set():
                syncs[0] += worker.sync().requests  # round trips
            worker.sync()
        except BaseException as exc:
            errors.append(exc)
        finally:
            worker.close()

    reads = [0]

    def reader() -> None:
        try:
            while not done.is_set():
                order = store.member_order()
                for rec_id in order[-20:]:
                    doc = store.get(rec_id)
                    assert doc is not None and doc["type"] == "member"
                live = list(store.live("member"))
                assert len(live) >= len(order)
                for doc in store.search_members("某")[:5]:
                    with pytest.raises(TypeError):
                        doc["notes"] = "behind the journal's back"  # type: ignore[index]
                reads[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (interface, sync_worker, reader, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    print(f"{syncs[0]} sync round trips, {reads[0]} reads, {store.gen - gen} compactions")
    assert syncs[0] >= 2 and reads[0] >= 1 and store.gen > gen
    store.wait_for_compaction()
    assert store.compaction_error is None
    device.sync()
    # every commit of the interface was announced once, on its own thread, naming its record
    local = [(c, ident) for c, ident in heard if c.kind == "local"]
    assert [(ident, next(iter(c.ids))) for c, ident in local] == edits
    assert any(c.kind == "sync" for c, _ in heard)
    for rec_id, value in acked.items():
        assert store.get(rec_id)["notes"] == value  # type: ignore[index]
        assert loopback.record(rec_id)["notes"] == value  # the county has every edit
    assert store.state.pending_count() == 0
    store.close()
    device.close()
    with Store.open(store_path, PASSPHRASE) as again:
        for rec_id, value in acked.items():
            assert again.get(rec_id)["notes"] == value  # type: ignore[index]
        seqs = [op["dev_seq"] for op in again.state.ops]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # dense
        assert seqs[-1] == again.meta["dev_seq"] == again.meta["acked_dev_seq"]
        assert not [f for f in again.doctor() if f.level == "error"]
