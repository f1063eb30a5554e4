"""Tampering and truncation (DESIGN §2.4, §7): flip every byte and truncate at every offset of
every store file. Each case must be an error, or — for truncation of the journal — the loss of
a tail of commits, or — for a flip in one of the two copies in ``keyslots`` — the other copy
read and the damaged one rewritten; never altered data. Plus targeted attacks: reordered, duplicated, dropped and
spliced frames, a journal of another store, hostile KDF parameters, a second process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import (
    Corrupted,
    Locked,
    Store,
    StoreError,
    StoreFailed,
    UnsafeParameters,
    WrongPassphrase,
)
from store import sealed as sealed_mod
from store.keyslots import HALF
from store.register import add_member
from tests.conftest import PASSPHRASE, create_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[bytes]]:
    """A small closed store: three members in the snapshot, four commits in the journal.
    Returns its path, recovery key and the state after each journal frame (index 0: none)."""
    path = tmp_path_factory.mktemp("tamper") / "store"
    store, recovery = create_store(path)
    for name in ("张三", "李四", "王五"):
        add_member(store, {"name": name, "phone": "13800138000"})
    store.compact()
    prefixes = [store.state.to_bytes()]
    ids = [m["id"] for m in store.live("member")]
    add_member(store, {"name": "赵六"})
    prefixes.append(store.state.to_bytes())
    store.put("member", {"notes": "第一次修改"}, ids[0])
    prefixes.append(store.state.to_bytes())
    store.delete(ids[1])
    prefixes.append(store.state.to_bytes())
    store.put("member", {"phone": "13900139000"}, ids[2])
    prefixes.append(store.state.to_bytes())
    store.close()
    return path, recovery, prefixes


def store_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.name != "lock")


def try_open(path: Path, recovery: str) -> bytes | StoreError:
    """The state the store opens with, or the store error it raises. The recovery key opens it:
    the same checks run, without a slow KDF per case."""
    try:
        with Store.open(path, recovery_key=recovery) as s:
            return s.state.to_bytes()
    except StoreError as exc:
        return exc


def keyslots_offsets(data: bytes) -> list[int]:
    """Every byte of the first copy of the key-slot document and of the zero bytes just after
    it; every 8th byte of the second copy (the same bytes); every 64th of the rest of the
    padding (all alike)."""
    ends = [data.index(b"\0", h) for h in (0, HALF)]
    return [i for i in range(len(data))
            if i < ends[0] + 64 or (HALF <= i < ends[1] + 64 and i % 8 == 0) or i % 64 == 0]


def test_every_flipped_byte_is_detected(small_store: tuple[Path, str, list[bytes]],
                                        tmp_path: Path) -> None:
    """A flipped byte is an error — except in ``keyslots``, which holds its document twice:
    the damaged copy fails its checksum, the store opens with the other, unchanged, and the
    damaged copy is rewritten at once (so a crash that tore one copy heals the same way)."""
    original, recovery, prefixes = small_store
    path = tmp_path / "copy"
    shutil.copytree(original, path)
    full = prefixes[-1]
    assert try_open(path, recovery) == full
    cases = undetected = healed = keyslots_cases = 0
    for f in store_files(path):
        data = f.read_bytes()
        offsets = keyslots_offsets(data) if f.name == "keyslots" else range(len(data))
        keyslots_cases += len(offsets) if f.name == "keyslots" else 0
        for offset in offsets:
            flipped = bytearray(data)
            flipped[offset] ^= 0x01
            f.write_bytes(bytes(flipped))
            outcome = try_open(path, recovery)
            after = f.read_bytes()
            f.write_bytes(data)
            cases += 1
            if isinstance(outcome, StoreError):
                continue
            # Not an error: then nothing may have changed. Snapshots and journals are sealed
            # byte for byte, so there even that must not happen.
            assert outcome == full, f"{f.name}@{offset}: flipped byte altered the data"
            assert not f.name.startswith(("snapshot", "journal")), f"{f.name}@{offset} unnoticed"
            if f.name == "keyslots" and after[:HALF] == after[HALF:] and \
                    after[:HALF].rstrip(b"\0") != data[:HALF].rstrip(b"\0"):
                healed += 1  # both copies whole again (the next generation)
                continue
            undetected += 1
    assert cases > 2500
    assert undetected == 0
    assert healed == keyslots_cases > 900


def test_every_truncation_is_an_error_or_a_lost_tail(
        small_store: tuple[Path, str, list[bytes]], tmp_path: Path) -> None:
    original, recovery, prefixes = small_store
    path = tmp_path / "copy"
    shutil.copytree(original, path)
    tails = 0
    for f in store_files(path):
        data = f.read_bytes()
        for length in keyslots_offsets(data) if f.name == "keyslots" else range(len(data)):
            f.write_bytes(data[:length])
            outcome = try_open(path, recovery)
            f.write_bytes(data)
            if isinstance(outcome, StoreError):
                continue
            # the key file has a fixed size: any truncation is an error
            assert f.name.startswith("journal"), f"{f.name} truncated to {length} opened"
            assert outcome in prefixes, f"journal truncated to {length} gave altered data"
            tails += 1
    assert tails > 100  # truncations inside the frames drop the tail and keep the rest


def frames(journal: Path) -> tuple[bytes, list[bytes]]:
    data = journal.read_bytes()
    offset, out = sealed_mod.JRNL_SIZE, []
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        end = offset + sealed_mod.FRAME.size + sealed_mod.NONCE + length
        out.append(data[offset:end])
        offset = end
    return data[:sealed_mod.JRNL_SIZE], out


@pytest.mark.parametrize("attack", ["swap", "duplicate", "drop_middle", "reseq"])
def test_reordered_duplicated_or_dropped_frames_are_corruption(
        small_store: tuple[Path, str, list[bytes]], tmp_path: Path, attack: str) -> None:
    original, recovery, _ = small_store
    path = tmp_path / "copy"
    shutil.copytree(original, path)
    journal = next(path.glob("journal-*"))
    header, fs = frames(journal)
    assert len(fs) == 4
    if attack == "swap":
        fs[1], fs[2] = fs[2], fs[1]
    elif attack == "duplicate":
        fs.insert(2, fs[1])
    elif attack == "drop_middle":
        del fs[1]
    else:
        # drop frame 2 and renumber the rest, with valid header checks: the chain still breaks
        import struct
        import zlib

        del fs[1]
        fixed = []
        for seq, frame in enumerate(fs, start=1):
            head = frame[:4] + struct.pack(">Q", seq)
            fixed.append(head + struct.pack(">I", zlib.crc32(head)) + frame[16:])
        fs = fixed
    journal.write_bytes(header + b"".join(fs))
    assert isinstance(try_open(path, recovery), Corrupted)


def test_journal_of_another_store_or_generation_is_refused(tmp_path: Path) -> None:
    a_path, b_path = tmp_path / "a", tmp_path / "b"
    a, a_key = create_store(a_path)
    add_member(a, {"name": "张三"})
    a.close()
    b, _ = create_store(b_path)
    add_member(b, {"name": "李四"})
    b.compact()
    add_member(b, {"name": "王五"})
    b.close()
    # b's journal in a's place
    a_journal = next(a_path.glob("journal-*"))
    a_journal.write_bytes(next(b_path.glob("journal-*")).read_bytes())
    assert isinstance(try_open(a_path, a_key), Corrupted)
    # an old snapshot renamed as the current generation of the same store
    c_path = tmp_path / "c"
    c, c_key = create_store(c_path)
    old_snapshot = next(c_path.glob("snapshot-*")).read_bytes()
    add_member(c, {"name": "赵六"})
    c.compact()
    c.close()
    next(c_path.glob("snapshot-*")).write_bytes(old_snapshot)
    assert isinstance(try_open(c_path, c_key), Corrupted)


def test_torn_tail_is_dropped_and_committed_data_kept(store_path: Path) -> None:
    store, _ = create_store(store_path)
    add_member(store, {"name": "张三"})
    before = store.state.to_bytes()
    store.close()
    journal = next(store_path.glob("journal-*"))
    good = journal.read_bytes()
    for tail in (b"\x00" * 40, b"\x00\x00\x00\x40" + b"\x00" * 8, os.urandom(7)):
        journal.write_bytes(good + tail)
        with Store.open(store_path, PASSPHRASE) as s:
            assert s.state.to_bytes() == before
            assert s.dropped_tail == len(tail)
            add_member(s, {"name": "李四"})  # the next frame follows the last good one
        with Store.open(store_path, PASSPHRASE) as s:
            assert {m["name"] for m in s.live("member")} == {"张三", "李四"}
            s.delete(next(m["id"] for m in s.live("member") if m["name"] == "李四"))
            before = s.state.to_bytes()
        good = journal.read_bytes()


def test_wrong_passphrase_and_corruption_are_different_errors(store_path: Path) -> None:
    create_store(store_path)[0].close()
    with pytest.raises(WrongPassphrase) as wrong:
        Store.open(store_path, "not the passphrase")
    keyslots = store_path / "keyslots"
    doc = read_doc(keyslots)
    doc["slots"][0]["wrapped"] = doc["slots"][1]["wrapped"]
    write_doc(keyslots, doc)
    with pytest.raises(Corrupted) as corrupted:
        Store.open(store_path, PASSPHRASE)
    assert wrong.value.exit_code != corrupted.value.exit_code
    assert wrong.value.zh != corrupted.value.zh and wrong.value.en != corrupted.value.en


def read_doc(keyslots: Path) -> dict:
    """The key-slot document in the first half of the file."""
    raw = keyslots.read_bytes()
    return json.loads(raw[:raw.index(b"\0")])


def write_doc(keyslots: Path, doc: dict, halves: tuple[int, ...] = (0, 1)) -> None:
    """Write ``doc`` into the given halves of the file, as the store lays it out."""
    raw = bytearray(keyslots.read_bytes())
    half = (json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n").ljust(
        HALF, b"\0")
    for index in halves:
        raw[index * HALF:(index + 1) * HALF] = half
    keyslots.write_bytes(bytes(raw))


def _reseal_checksum(keyslots: Path, doc: dict, halves: tuple[int, ...] = (0, 1)) -> None:
    """What an attacker can do: the checksum is unkeyed, so it can be recomputed."""
    from store.keyslots import canonical

    doc.pop("checksum", None)
    doc["checksum"] = hashlib.sha256(canonical(doc)).hexdigest()
    write_doc(keyslots, doc, halves)


@pytest.mark.parametrize("kdf", [
    {"name": "argon2id", "memory_kib": 64 << 20, "iterations": 3, "lanes": 1},  # 64 GiB
    {"name": "argon2id", "memory_kib": 65536, "iterations": 10_000, "lanes": 1},
    {"name": "scrypt", "log_n": 30, "r": 8, "p": 1},
    {"name": "argon2id", "memory_kib": 1024, "iterations": 1, "lanes": 1},  # a downgrade
    {"name": "pbkdf2", "iterations": 1},
])
def test_absurd_kdf_parameters_are_refused_before_running(store_path: Path, kdf: dict) -> None:
    create_store(store_path)[0].close()
    keyslots = store_path / "keyslots"
    doc = read_doc(keyslots)
    doc["slots"][0]["kdf"] = kdf
    doc["generation"] += 1  # the newer copy is the one read
    _reseal_checksum(keyslots, doc, halves=(1,))
    started = time.perf_counter()
    with pytest.raises(UnsafeParameters):
        Store.open(store_path, PASSPHRASE)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("newer_half_only", [False, True])
def test_added_slot_fails_the_mac(store_path: Path, tmp_path: Path,
                                  newer_half_only: bool) -> None:
    """An attacker who copies a slot from another store (whose passphrase they know) and fixes
    the checksum is caught by the MAC under the master key — in both copies, or in one copy
    claiming a newer generation (the one that is read)."""
    create_store(store_path)[0].close()
    other_path = tmp_path / "other"
    create_store(other_path)[0].close()
    keyslots = store_path / "keyslots"
    doc = read_doc(keyslots)
    doc["slots"].append(read_doc(other_path / "keyslots")["slots"][0])
    if newer_half_only:
        doc["generation"] += 1
    _reseal_checksum(keyslots, doc, halves=(1,) if newer_half_only else (0, 1))
    with pytest.raises(Corrupted) as caught:
        Store.open(store_path, PASSPHRASE)
    assert "MAC" in caught.value.en


def test_second_process_gets_a_clear_in_use_error(store: Store, store_path: Path) -> None:
    code = (f"from store import Store\n"
            f"try:\n    Store.open({str(store_path)!r}, {PASSPHRASE!r})\n"
            f"except Exception as e:\n    print(type(e).__name__, e.message('en'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert out.stdout.startswith("Locked store is in use by another process (pid ")
    assert str(os.getpid()) in out.stdout
    with pytest.raises(Locked):
        Store.open(store_path, PASSPHRASE)  # in-process too


def test_failed_write_leaves_the_store_as_it_was(store: Store, store_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    add_member(store, {"name": "张三"})
    before = store.state.to_bytes()
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data)[:10])  # a partial write, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sealed_mod.os, "write", disk_full)
    with pytest.raises(StoreFailed):
        add_member(store, {"name": "李四"})
    monkeypatch.undo()
    assert store.state.to_bytes() == before  # memory holds only what is durable
    with pytest.raises(StoreFailed):
        add_member(store, {"name": "王五"})  # no more writes until reopened
    store.close()
    with Store.open(store_path, PASSPHRASE) as s:
        assert s.state.to_bytes() == before
        assert s.dropped_tail == 0  # the partial frame was cut off at once
        add_member(s, {"name": "李四"})
