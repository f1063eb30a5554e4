"""Backup and restore (FORMAT.md "Backup file"): real stores, real encryption.

A backup restores the same state with the passphrase or the recovery key; every flipped byte,
every truncation and every part taken from another backup or store is refused; a restore never
touches a store already there, and one that fails or is killed half-way leaves no store or a
complete one. Nothing readable is in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import (
    BadRecoveryKey,
    Finding,
    LiudongError,
    StoreError,
    StoreExists,
    StoreNotFound,
    WrongPassphrase,
    crypto,
)
from store import backup as bk
from store.backup import BadBackup, RestoreTargetTaken, restore_backup, write_backup
from store.register import add_member, flow_out, log_contact
from store.store import Store
from tests.conftest import PASSPHRASE, create_store, make_id_number
from tests.store.test_plaintext import IDS, NAMES, NOTE, ORG_NAME, PHONES, scan

ROOT = Path(__file__).resolve().parents[2]


def populated(path: Path) -> tuple[Store, str]:
    store, recovery = create_store(path)
    ids = [add_member(store, {"name": n, "phone": p, "id_number": i, "notes": NOTE})
           for n, p, i in zip(NAMES, PHONES, IDS)]
    flow_out(store, ids[0], {"left_on": "2026-09-01", "reason": "work",
                             "destination_address": NOTE, "external_host": "南山区科技园党委"})
    log_contact(store, ids[0], {"on": "2026-10-01", "channel": "phone", "reached": True,
                                "summary": NOTE})
    return store, recovery


def listing(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of a directory with its mode and bytes, to show that nothing changed."""
    return {f.name: (f.stat().st_mode, f.read_bytes()) for f in sorted(directory.iterdir())}


# -- splicing helpers: rebuild a container from parts, with a correct checksum ----------------

def split(data: bytes) -> tuple[dict, list[tuple[str, bytes]], bytes]:
    backup = bk.parse(data)
    return backup.header, backup.files, backup.mac


def assemble(header: dict, files: list[tuple[str, bytes]], mac: bytes) -> bytes:
    header = dict(header, files=[{"name": n, "size": len(d)} for n, d in files])
    raw = bk.canonical(header)
    body = bk.PREFIX.pack(bk.MAGIC, bk.VERSION, len(raw)) + raw + b"".join(d for _, d in files)
    body += mac
    return body + hashlib.sha256(body).digest()


def with_checksum(data: bytes) -> bytes:
    return data[:-32] + hashlib.sha256(data[:-32]).digest()


# -- round trips -------------------------------------------------------------------------------

def test_round_trip_restores_the_same_state(tmp_path: Path) -> None:
    store, _ = populated(tmp_path / "store")
    store.compact()  # generation 2, with a journal that holds frames too
    add_member(store, {"name": "王五", "phone": "13700137000"})
    out = tmp_path / "usb" / "branch.ldbak"
    out.parent.mkdir()
    info = write_backup(store, out)
    assert info["size"] == out.stat().st_size and info["generation"] == store.gen == 2
    assert info["files"] == 3 and info["store_id"] == store.store_id

    target = tmp_path / "new-laptop" / "store"
    with restore_backup(out, target, PASSPHRASE) as restored:
        assert restored.state.to_bytes() == store.state.to_bytes()
        assert sorted(m["name"] for m in restored.live("member")) == sorted([*NAMES, "王五"])
        assert restored.store_id == store.store_id and restored.gen == 2
        assert not [f for f in restored.doctor() if f.level != "ok"]
        restored.put("member", {"notes": "after restore"}, restored.search_members("王五")[0]["id"])
    assert sorted(p.name for p in target.iterdir()) == [
        "journal-00000002", "keyslots", "lock", "snapshot-00000002"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in target.iterdir())
    with Store.open(target, PASSPHRASE) as again:  # and it stays a working store
        assert again.search_members("王五")[0]["notes"] == "after restore"
    store.close()


def test_the_recovery_key_restores_too(tmp_path: Path) -> None:
    store, recovery = populated(tmp_path / "store")
    write_backup(store, tmp_path / "b")
    with restore_backup(tmp_path / "b", tmp_path / "r", recovery_key=recovery.lower()) as r:
        assert r.state.to_bytes() == store.state.to_bytes()
    store.close()


def test_restoring_needs_the_passphrase_of_the_time_of_the_backup(tmp_path: Path) -> None:
    store, _ = populated(tmp_path / "store")
    store.change_passphrase("a second passphrase", kdf=crypto.TEST_KDF)
    write_backup(store, tmp_path / "b")
    with pytest.raises(WrongPassphrase):
        restore_backup(tmp_path / "b", tmp_path / "r", PASSPHRASE)
    restore_backup(tmp_path / "b", tmp_path / "r", "a second passphrase").close()
    store.close()


def test_a_wrong_passphrase_or_recovery_key_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store, recovery = populated(tmp_path / "store")
    write_backup(store, tmp_path / "b")
    store.close()
    with pytest.raises(WrongPassphrase) as caught:
        restore_backup(tmp_path / "b", tmp_path / "r", "not the passphrase")
    assert caught.value.exit_code == 3
    other = create_store(tmp_path / "other")
    other[0].close()
    with pytest.raises(WrongPassphrase):
        restore_backup(tmp_path / "b", tmp_path / "r", recovery_key=other[1])
    mistyped = recovery[:-1] + ("0" if recovery[-1] != "0" else "1")
    with pytest.raises(BadRecoveryKey):
        restore_backup(tmp_path / "b", tmp_path / "r", recovery_key=mistyped)
    assert not (tmp_path / "r").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WrongPassphrase):
        restore_backup(tmp_path / "b", empty, "not the passphrase")
    assert list(empty.iterdir()) == []  # an existing directory is left as it was


# -- damage ------------------------------------------------------------------------------------

@pytest.fixture
def small_backup(tmp_path: Path) -> bytes:
    store, _ = create_store(tmp_path / "store")
    add_member(store, {"name": "张三", "phone": "13800138000"})
    write_backup(store, tmp_path / "good")
    store.close()
    return (tmp_path / "good").read_bytes()


def sampled(backup: bytes, every: int, end: int | None = None) -> list[int]:
    """Positions in ``backup`` up to ``end``: every byte, except in the part of ``keyslots``
    after its first document (the second copy of it, and zero padding to a fixed size), where
    every ``every``-th."""
    parsed = bk.parse(backup)
    keys_from = len(parsed.signed) - sum(len(d) for _, d in parsed.files)
    keys = parsed.files[0][1]
    doc_to, keys_to = keys_from + keys.index(b"\0") + 8, keys_from + len(keys)
    return [i for i in range(len(backup) if end is None else end)
            if not doc_to <= i < keys_to or i % every == 0]


def test_every_flipped_byte_is_detected(tmp_path: Path, small_backup: bytes) -> None:
    bad, target = tmp_path / "bad", tmp_path / "r"
    for i in sampled(small_backup, 8):
        damaged = bytearray(small_backup)
        damaged[i] ^= 1 << (i % 8)
        bad.write_bytes(damaged)
        with pytest.raises(BadBackup):
            restore_backup(bad, target, PASSPHRASE)
        assert not target.exists(), i
    bad.write_bytes(small_backup)
    restore_backup(bad, target, PASSPHRASE).close()  # the loop above did test something


def test_every_flip_is_refused_even_with_a_recomputed_checksum(tmp_path: Path,
                                                              small_backup: bytes) -> None:
    """The checksum is public: someone who edits the file can fix it. The keyed checks (the
    keyslots' own checksum and MAC, the backup MAC) still refuse every change. Every byte of
    the prefix, the header, ``keyslots`` and the MAC; every tenth byte of the snapshot and the
    journal, which each cost a key derivation and which the MAC covers alike."""
    bad, target = tmp_path / "bad", tmp_path / "r"
    parsed = bk.parse(small_backup)
    sealed_from = len(parsed.signed) - sum(len(d) for _, d in parsed.files[1:])
    sealed_to = len(parsed.signed)
    # keyslots holds its document twice, each copy padded with zero bytes to a fixed size:
    # every byte of the first copy, every 40th of the rest
    positions = [i for i in sampled(small_backup, 40, len(small_backup) - 32)
                 if not sealed_from <= i < sealed_to or i % 10 == 0]
    outcomes: dict[str, int] = {}
    for i in positions:
        damaged = bytearray(small_backup)
        damaged[i] ^= 1 << (i % 8)
        bad.write_bytes(with_checksum(bytes(damaged)))
        with pytest.raises((BadBackup, WrongPassphrase)) as caught:
            restore_backup(bad, target, PASSPHRASE)
        outcomes[type(caught.value).__name__] = outcomes.get(type(caught.value).__name__, 0) + 1
        assert not target.exists(), i
    assert outcomes["BadBackup"] > len(positions) // 2, outcomes


def test_every_truncation_and_extension_is_detected(tmp_path: Path, small_backup: bytes) -> None:
    bad, target = tmp_path / "bad", tmp_path / "r"
    for n in sampled(small_backup, 8):
        bad.write_bytes(small_backup[:n])
        with pytest.raises(BadBackup):
            restore_backup(bad, target, PASSPHRASE)
    for extra in (b"\0", b"x" * 100, small_backup):
        bad.write_bytes(small_backup + extra)
        with pytest.raises(BadBackup):
            restore_backup(bad, target, PASSPHRASE)
    assert not target.exists()


def test_not_a_backup_gives_a_clear_error(tmp_path: Path) -> None:
    for name, content in [("empty", b""), ("text", "张三 13800138000\n".encode()),
                          ("keyslots", b'{"format": "liudong-keyslots"}\n'),
                          ("snapshot", b"LDSNAP\0\1" + b"\0" * 200)]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(BadBackup) as caught:
            restore_backup(tmp_path / name, tmp_path / "r", PASSPHRASE)
        assert caught.value.exit_code == 4 and isinstance(caught.value, StoreError)
        assert "备份" in caught.value.zh and "backup" in caught.value.en
    with pytest.raises(BadBackup, match="does not exist"):
        restore_backup(tmp_path / "missing", tmp_path / "r", PASSPHRASE)
    with pytest.raises(BadBackup):
        restore_backup(tmp_path, tmp_path / "r", PASSPHRASE)  # a directory
    assert not (tmp_path / "r").exists()


def test_parts_of_another_backup_or_store_are_refused(tmp_path: Path) -> None:
    store, recovery = populated(tmp_path / "store")
    write_backup(store, tmp_path / "early")
    add_member(store, {"name": "王五"})
    write_backup(store, tmp_path / "late")  # same store, same generation, longer journal
    other, _ = create_store(tmp_path / "other")  # another store, same passphrase
    add_member(other, {"name": "赵六"})
    write_backup(other, tmp_path / "foreign")
    other.close()
    early_h, early, early_mac = split((tmp_path / "early").read_bytes())
    _, late, late_mac = split((tmp_path / "late").read_bytes())
    foreign_h, foreign, foreign_mac = split((tmp_path / "foreign").read_bytes())
    spliced = {
        "journal of a later backup": assemble(early_h, [early[0], early[1], late[2]], early_mac),
        "snapshot and journal of a later backup": assemble(early_h, [early[0], *late[1:]],
                                                           early_mac),
        "a later backup's MAC": assemble(early_h, early, late_mac),
        "an edited header": assemble(dict(early_h, created_at="2020-01-01T00:00:00Z"), early,
                                     early_mac),
        "keyslots of another store": assemble(early_h, [foreign[0], *early[1:]], early_mac),
        "keyslots and header of another store": assemble(foreign_h, [foreign[0], *early[1:]],
                                                         early_mac),
        "keyslots, header and MAC of another store": assemble(foreign_h, [foreign[0], *early[1:]],
                                                              foreign_mac),
        "snapshot and journal of another store": assemble(early_h, [early[0], *foreign[1:]],
                                                          early_mac),
    }
    for what, data in spliced.items():
        (tmp_path / "swapped").write_bytes(data)
        with pytest.raises(BadBackup):
            restore_backup(tmp_path / "swapped", tmp_path / "r", PASSPHRASE)
        assert not (tmp_path / "r").exists(), what
    # Another store's whole backup, put under this one's name: its passphrase is not ours.
    third, _ = create_store(tmp_path / "third")
    third.change_passphrase("the other branch's passphrase", kdf=crypto.TEST_KDF)
    write_backup(third, tmp_path / "early")
    third.close()
    with pytest.raises(WrongPassphrase):
        restore_backup(tmp_path / "early", tmp_path / "r", PASSPHRASE)
    with pytest.raises(WrongPassphrase):
        restore_backup(tmp_path / "early", tmp_path / "r", recovery_key=recovery)
    assert not (tmp_path / "r").exists()
    store.close()


# -- the target directory ----------------------------------------------------------------------

def test_restore_into_a_directory_holding_a_store_is_refused_and_changes_nothing(
        tmp_path: Path) -> None:
    store, _ = populated(tmp_path / "store")
    write_backup(store, tmp_path / "b")
    expected = store.state.to_bytes()
    store.close()
    occupied, _ = create_store(tmp_path / "occupied")
    add_member(occupied, {"name": "赵六"})
    occupied_state = occupied.state.to_bytes()
    occupied.close()
    for target in (tmp_path / "store", tmp_path / "occupied"):
        before = listing(target)
        with pytest.raises(RestoreTargetTaken) as caught:
            restore_backup(tmp_path / "b", target, PASSPHRASE)
        assert isinstance(caught.value, StoreExists) and caught.value.exit_code == 2
        assert "另选" in caught.value.zh and "choose another directory" in caught.value.en
        assert "move the old store away" in caught.value.en
        assert listing(target) == before
    with Store.open(tmp_path / "occupied", PASSPHRASE) as s:
        assert s.state.to_bytes() == occupied_state
    with Store.open(tmp_path / "store", PASSPHRASE) as s:
        assert s.state.to_bytes() == expected
    # a directory with other files in it is not a place to restore to either
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "报告.docx").write_bytes(b"mine")
    with pytest.raises(RestoreTargetTaken, match="not an empty directory"):
        restore_backup(tmp_path / "b", docs, PASSPHRASE)
    assert listing(docs) == {"报告.docx": ((docs / "报告.docx").stat().st_mode, b"mine")}
    (tmp_path / "a-file").write_bytes(b"x")
    with pytest.raises(RestoreTargetTaken):
        restore_backup(tmp_path / "b", tmp_path / "a-file", PASSPHRASE)


def test_a_restore_failing_at_doctor_leaves_no_store(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = populated(tmp_path / "store")
    write_backup(store, tmp_path / "b")
    store.close()
    written: list[list[str]] = []

    def failing_doctor(self: Store) -> list[Finding]:
        written.append(sorted(p.name for p in self.path.iterdir()))
        return [Finding("ok", "好", "fine"), Finding("error", "坏了", "simulated damage")]

    monkeypatch.setattr(Store, "doctor", failing_doctor)
    with pytest.raises(BadBackup, match="simulated damage"):
        restore_backup(tmp_path / "b", tmp_path / "r", PASSPHRASE)
    assert written == [["journal-00000001", "keyslots", "lock", "snapshot-00000001"]]
    assert not (tmp_path / "r").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadBackup):
        restore_backup(tmp_path / "b", tmp_path / "empty", PASSPHRASE)
    assert list((tmp_path / "empty").iterdir()) == []
    with pytest.raises(StoreNotFound):
        Store.open(tmp_path / "empty", PASSPHRASE)


def test_a_restore_failing_while_writing_leaves_no_store(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = populated(tmp_path / "store")
    write_backup(store, tmp_path / "b")
    store.close()
    real_replace = os.replace

    for failing in ("snapshot-00000001", "journal-00000001", "keyslots"):
        def replace(src: os.PathLike[str], dst: os.PathLike[str], failing: str = failing) -> None:
            if Path(dst).name == failing:
                raise OSError(28, "No space left on device", str(dst))
            real_replace(src, dst)

        monkeypatch.setattr(bk.os, "replace", replace)
        with pytest.raises(OSError):
            restore_backup(tmp_path / "b", tmp_path / "r", PASSPHRASE)
        assert not (tmp_path / "r").exists(), failing
    monkeypatch.setattr(bk.os, "replace", real_replace)
    restore_backup(tmp_path / "b", tmp_path / "r", PASSPHRASE).close()


CHILD = """
import sys
from store.backup import restore_backup
print("R", flush=True)
restore_backup(sys.argv[1], sys.argv[2], sys.argv[3]).close()
print("D", flush=True)
"""


@pytest.mark.slow
def test_a_restore_killed_half_way_leaves_no_store_or_a_complete_one(tmp_path: Path) -> None:
    """SIGKILL a child at a random moment of a restore: the target then holds no store (and a
    new restore into it works) or the complete store; never something that half opens."""
    store, _ = populated(tmp_path / "store")
    for i in range(300):  # a bigger backup: more time spent writing
        add_member(store, {"name": f"测试{i}", "notes": NOTE + os.urandom(40).hex()})
    write_backup(store, tmp_path / "b")
    expected = store.state.to_bytes()
    store.close()
    start = time.perf_counter()
    restore_backup(tmp_path / "b", tmp_path / "timing", PASSPHRASE).close()
    took = time.perf_counter() - start
    rng = random.Random(20261203)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    outcomes = {"none": 0, "complete": 0, "finished": 0}
    for k in range(20):
        target = tmp_path / f"r{k}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "b"), str(target),
                                  PASSPHRASE], stdout=subprocess.PIPE, env=env, text=True,
                                 cwd=ROOT)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "R"
        time.sleep(rng.random() * took * 1.5)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        finished = "D" in child.stdout.read()
        child.stdout.close()
        if (target / "keyslots").exists():
            with Store.open(target, PASSPHRASE) as s:
                assert s.state.to_bytes() == expected, k
                assert not [f for f in s.doctor() if f.level == "error"], k
            outcomes["finished" if finished else "complete"] += 1
        else:
            with pytest.raises(StoreNotFound):
                Store.open(target, PASSPHRASE)
            outcomes["none"] += 1
            with restore_backup(tmp_path / "b", target, PASSPHRASE) as s:  # leftovers are fine
                assert s.state.to_bytes() == expected, k
    assert sum(outcomes.values()) == 20, outcomes


# -- the file ----------------------------------------------------------------------------------

def test_no_personal_data_in_the_backup(tmp_path: Path) -> None:
    store, _ = populated(tmp_path / "store")
    usb = tmp_path / "usb"
    usb.mkdir()
    write_backup(store, usb / "one")
    store.compact()
    write_backup(store, usb / "two")
    store.close()
    markers = [*NAMES, *PHONES, *IDS, ORG_NAME, NOTE, IDS[0][-6:], PASSPHRASE,
               make_id_number("330106", "19850315", 123)]
    assert scan(usb, markers) == []
    header = bk.parse((usb / "two").read_bytes()).header
    assert set(header) == bk.HEADER_KEYS  # ids, generation, time and sizes: nothing personal


def test_the_file_is_owner_only_and_replaced_whole(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = populated(tmp_path / "store")
    usb = tmp_path / "usb"
    usb.mkdir()
    out = usb / "branch.bak"
    write_backup(store, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    first = out.read_bytes()
    add_member(store, {"name": "王五"})
    write_backup(store, out)  # an older backup is replaced
    assert out.read_bytes() != first and os.listdir(usb) == ["branch.bak"]
    second = out.read_bytes()

    def no_space(fd: int, data_only: bool = False) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bk, "fsync_fd", no_space)
    with pytest.raises(OSError):
        write_backup(store, out)
    monkeypatch.undo()
    assert out.read_bytes() == second and os.listdir(usb) == ["branch.bak"]  # no partial file

    (usb / "members.xlsx").write_bytes(b"PK\3\4 a spreadsheet")
    with pytest.raises(LiudongError, match="not a Liudong backup"):
        write_backup(store, usb / "members.xlsx")
    assert (usb / "members.xlsx").read_bytes() == b"PK\3\4 a spreadsheet"
    with pytest.raises(LiudongError, match="inside the store directory"):
        write_backup(store, store.path / "backup")
    with pytest.raises(LiudongError, match="is a directory"):
        write_backup(store, usb)
    store.close()


def test_the_backup_mac_key_is_its_own(store: Store) -> None:
    key = store.derive_key(crypto.BACKUP_MAC_LABEL)
    assert len(key) == 32
    for label in (b"liudong/keyslots-mac/v1", b"liudong/journal-header/v1", b"liudong/key-id/v1",
                  b"liudong/snapshot/v1", b"liudong/journal/v1"):
        with pytest.raises(ValueError):
            store.derive_key(label)
    sources = "".join((ROOT / "store" / f).read_text() for f in
                      ("crypto.py", "keyslots.py", "sealed.py", "store.py"))
    assert sources.count('b"liudong/backup-mac/v1"') == 1  # used for nothing else


def test_header_format(tmp_path: Path, small_backup: bytes) -> None:
    magic, version, length = struct.unpack_from(">8sHI", small_backup)
    assert magic == b"LDBACK\0\1" and version == 1
    header = json.loads(small_backup[14:14 + length])
    assert header["format"] == "liudong-backup"
    assert [f["name"] for f in header["files"]] == ["keyslots", "snapshot-00000001",
                                                    "journal-00000001"]
    assert 14 + length + sum(f["size"] for f in header["files"]) + 64 == len(small_backup)
    assert hashlib.sha256(small_backup[:-32]).digest() == small_backup[-32:]
