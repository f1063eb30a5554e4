"""A laptop that went back in time loses nothing (DESIGN §3.2): its store restored from a copy,
its journal cut at a frame boundary, or a USB backup restored. The server keeps a digest of
every op; the device learns where its ops and the server's part, renumbers what it has not
sent, gets back what it sent before, and says so."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from store import Store
from store.backup import restore_backup, write_backup
from store.register import add_member
from sync.client import Device
from sync.server import db
from tests.conftest import PASSPHRASE
from tests.sync.harness import County


def server_names(county: County) -> list[str]:
    import json

    with db.read(county.engine) as conn:
        rows = conn.execute(select(db.records.c.data).where(
            db.records.c.type == "member")).scalars().all()
    return sorted(json.loads(r)["name"] for r in rows)


def ops_of(county: County, device: Device) -> list[tuple[int, str]]:
    with db.read(county.engine) as conn:
        return [(r.dev_seq, r.outcome) for r in conn.execute(
            select(db.ops).where(db.ops.c.device_id == device.store.device_id)
            .order_by(db.ops.c.dev_seq))]


def closed(county: County, device: Device, copy_to: Path | None = None,
           put_back: Path | None = None) -> Device:
    """Close the laptop's store (as a person copies a folder: with the program closed), copy it
    or put an older copy back in its place, and open it again."""
    path = device.store.path
    device.store.close()
    county.stores.remove(device.store)
    if copy_to is not None:
        shutil.copytree(path, copy_to)
    if put_back is not None:
        shutil.rmtree(path)
        shutil.copytree(put_back, path)
    store = Store.open(path, PASSPHRASE)
    county.stores.append(store)
    return Device(store, http=device._http, sleep=device.sleep)


def test_a_store_put_back_from_a_copy_loses_nothing(county: County,
                                                   county_tree: dict[str, str],
                                                   tmp_path: Path) -> None:
    a = county.device("a", county_tree["a"])
    add_member(a.store, {"name": "张三"})
    a.sync()
    copy = tmp_path / "copy"
    a = closed(county, a, copy_to=copy)
    add_member(a.store, {"name": "李四"})  # after the copy: the copy does not have it
    a.sync()
    a = closed(county, a, put_back=copy)
    assert sorted(m["name"] for m in a.store.live("member")) == ["张三"]
    add_member(a.store, {"name": "王五"})  # numbered as 李四 was: the server must notice
    report = a.sync()
    assert report.rewound is not None and report.rejected == []
    assert server_names(county) == ["张三", "李四", "王五"]
    assert sorted(m["name"] for m in a.store.live("member")) == ["张三", "李四", "王五"]
    assert a.store.state.outbox == []
    seqs = [s for s, _ in ops_of(county, a)]
    assert seqs == sorted(set(seqs)) and {o for _, o in ops_of(county, a)} == {"applied"}
    assert not [f for f in a.store.doctor() if f.level == "error"]
    other = county.device("a2", county_tree["a"])  # the rest of the county has it all
    assert sorted(m["name"] for m in other.store.live("member")) == ["张三", "李四", "王五"]
    # and it goes on as usual, also after the program is closed and opened again
    a = closed(county, a)
    add_member(a.store, {"name": "赵六"})
    assert a.sync().rewound is None and "赵六" in server_names(county)


def test_a_journal_cut_at_a_frame_boundary_loses_nothing(county: County,
                                                        county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    add_member(a.store, {"name": "张三"})
    a.sync()
    a = closed(county, a)
    journal = next(a.store.path.glob("journal-*"))
    cut = journal.stat().st_size  # a frame boundary: every commit so far, nothing after
    add_member(a.store, {"name": "李四"})
    a.sync()
    a.store.close()
    county.stores.remove(a.store)
    with open(journal, "r+b") as fh:
        fh.truncate(cut)
    store = Store.open(a.store.path, PASSPHRASE)
    county.stores.append(store)
    a = Device(store, http=county.http, sleep=lambda s: None)
    assert [m["name"] for m in a.store.live("member")] == ["张三"]
    # no new op yet: the server still tells it went back, so its next op is numbered above
    report = a.sync()
    assert report.rewound is not None
    assert sorted(m["name"] for m in a.store.live("member")) == ["张三", "李四"]
    add_member(a.store, {"name": "王五"})
    assert a.sync().rejected == []
    assert server_names(county) == ["张三", "李四", "王五"]


def test_a_usb_backup_restored_later_loses_nothing(county: County, county_tree: dict[str, str],
                                                  tmp_path: Path) -> None:
    a = county.device("a", county_tree["a"])
    add_member(a.store, {"name": "张三"})
    a.sync()
    usb = tmp_path / "usb" / "branch.ldbak"
    usb.parent.mkdir()
    write_backup(a.store, usb)
    add_member(a.store, {"name": "李四"})
    a.sync()
    path = a.store.path  # the laptop's disk fails; a new laptop restores the stick
    a.store.close()
    county.stores.remove(a.store)
    shutil.rmtree(path)
    store = restore_backup(usb, path, passphrase=PASSPHRASE)
    county.stores.append(store)
    a = Device(store, http=county.http, sleep=lambda s: None)
    add_member(a.store, {"name": "王五"})
    report = a.sync()
    assert report.rewound is not None
    assert sorted(m["name"] for m in a.store.live("member")) == ["张三", "李四", "王五"]
    assert server_names(county) == ["张三", "李四", "王五"]
