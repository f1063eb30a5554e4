"""Keys that really go, and records that really leave (issue 8 §4; FORMAT.md "keyslots",
"Compaction"), tested the way the attack worked: on a loop-mounted ext4 image, whose raw bytes
are read like a stolen disk's.

The attack: ``passwd`` wrote a new ``keyslots`` and renamed it over the old one; the old file's
blocks stayed on the device. A slot carved from the raw image opened the store with the old
passphrase, and — after the revocation's erase — with the old passphrase and the recovery key.
Now ``keyslots`` has a fixed size and is only ever overwritten in place; erase overwrites it
with random bytes before unlinking it; older generations of the snapshot and the journal are
overwritten before they are unlinked, and a removal from the device's scope compacts at once.

The image tests need root, ``mkfs.ext4`` (e2fsprogs) and loop devices; they are skipped, with
the reason, where those are missing — or fail, with ``LIUDONG_REQUIRE_DISK_TESTS=1``. CI runs as
root.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import TEST_KDF, Store, WrongPassphrase, crypto, sealed
from store.fsutil import write_atomic
from store.ids import new_ulid, ulid_bytes
from store.keyslots import FILE_SIZE, HALF, KeySlots, Slot, canonical, mac_key
from store.register import add_member, log_contact
from tests.conftest import PASSPHRASE, create_store, make_id_number

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("passwd_child.py")
NEW_PASSPHRASE = "a brand new passphrase"
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


# -- the image -------------------------------------------------------------------------------

class Ext4Image:
    """An ext4 filesystem in a file, loop-mounted at ``mnt``. ``raw()`` unmounts it (so that
    everything written reached the device), reads the device's bytes, and mounts it again."""

    def __init__(self, image: Path, mnt: Path) -> None:
        self.image, self.mnt = image, mnt

    def _run(self, *argv: str) -> None:
        tool = shutil.which(argv[0], path=SBIN) or argv[0]
        subprocess.run([tool, *argv[1:]], check=True, capture_output=True, text=True,
                       timeout=60)

    def mount(self) -> None:
        self._run("mount", "-t", "ext4", "-o", "loop", str(self.image), str(self.mnt))

    def umount(self) -> None:
        self._run("umount", str(self.mnt))

    def raw(self) -> bytes:
        self.umount()
        data = self.image.read_bytes()
        self.mount()
        return data


def _why_no_image() -> str | None:
    if not sys.platform.startswith("linux"):
        return "loop-mounted ext4 images need Linux"
    if os.geteuid() != 0:
        return "mounting a loop device needs root (CI runs as root)"
    for tool in ("mkfs.ext4", "mount", "umount"):
        if shutil.which(tool, path=SBIN) is None:
            return f"{tool} is not installed (apt-get install e2fsprogs mount)"
    if not (Path("/dev/loop-control").exists() or Path("/dev/loop0").exists()):
        return "no loop devices here (/dev/loop-control is missing)"
    return None


def _cannot(reason: str) -> None:
    """Skip — or fail where the image tests must run (``LIUDONG_REQUIRE_DISK_TESTS=1``, for CI:
    a skipped attack test proves nothing)."""
    message = f"cannot loop-mount an ext4 image: {reason}"
    if os.environ.get("LIUDONG_REQUIRE_DISK_TESTS") == "1":
        pytest.fail(message + " (LIUDONG_REQUIRE_DISK_TESTS=1)")
    pytest.skip(message)


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Ext4Image]:
    reason = _why_no_image()
    if reason:
        _cannot(reason)
    image, mnt = tmp_path / "disk.img", tmp_path / "mnt"
    mnt.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(32 << 20)
    disk = Ext4Image(image, mnt)
    try:
        # 4 KiB blocks as on a real disk (mke2fs would pick 1 KiB for so small a filesystem)
        disk._run("mkfs.ext4", "-q", "-F", "-b", "4096", str(image))
        disk.mount()
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        _cannot(f"{detail.strip()} (no loop devices in this container?)")
    try:
        yield disk
    finally:
        umount = shutil.which("umount", path=SBIN) or "umount"
        if subprocess.run([umount, str(mnt)], capture_output=True, timeout=60).returncode:
            # still busy (a failed test left a store open): detach it lazily
            subprocess.run([umount, "-l", str(mnt)], capture_output=True, timeout=60)


# -- what an attacker does with the raw device ---------------------------------------------------

SLOT_START = re.compile(rb'\{\s*"kdf"')


def carve_slots(raw: bytes) -> list[dict[str, Any]]:
    """Every key slot whose JSON is whole somewhere on the device, in a key-slot file of any
    version, live or in freed blocks."""
    text = raw.decode("latin-1")
    decoder = json.JSONDecoder()
    found = []
    for m in SLOT_START.finditer(raw):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict) and {"kind", "kdf", "salt", "nonce", "wrapped"} <= obj.keys():
            found.append(obj)
    return found


def opens_with(carved: dict[str, Any], store_id: str, passphrase: str | None = None,
               recovery: str | None = None) -> bool:
    """Whether a carved slot yields the master key for this secret."""
    try:
        slot = Slot(carved["kind"], carved["kdf"], crypto.unb64(carved["salt"]),
                    crypto.unb64(carved["nonce"]), crypto.unb64(carved["wrapped"]))
        one = KeySlots(store_id, b"", [slot])
        if recovery is not None:
            one.unlock_recovery(crypto.parse_recovery_key(recovery))
        else:
            one.unlock_passphrase(passphrase or "")
    except (WrongPassphrase, ValueError, TypeError, KeyError):
        return False
    return True


def slot_bytes(path: Path, kind: str | None = None) -> list[bytes]:
    """The random parts of the slots now in ``keyslots``, as they are written there (base64
    text): finding one on the device means finding that slot."""
    slots, _ = KeySlots.load(path)
    return [crypto.b64(part).encode() for s in slots.slots if kind in (None, s.kind)
            for part in (s.salt, s.wrapped)]


def legacy_keyslots(store: Store) -> bytes:
    """The key-slot file as version 1 wrote it (one JSON document, replaced by rename)."""
    data: dict[str, Any] = {"format": "liudong-keyslots", "version": 1,
                            "store_id": store.store_id, "key_id": store._slots.key_id.hex(),
                            "slots": [s.to_json() for s in store._slots.slots]}
    data["mac"] = crypto.mac(mac_key(store._master), canonical(data)).hex()
    data["checksum"] = hashlib.sha256(canonical(data)).hexdigest()
    return json.dumps(data, indent=1, sort_keys=True).encode() + b"\n"


def make_store(path: Path, start: str, scratch: Path) -> tuple[str, str]:
    """A store at ``path`` with one member; ``start`` "legacy" gives it a version-1 key file
    (as a store made before this format has), written once, in place. Returns the store id
    and the recovery key."""
    if start == "new":
        store, recovery = create_store(path)
        add_member(store, {"name": "张三"})
        store_id = store.store_id
        store.close()
        return store_id, recovery
    made = scratch / "made"
    store, recovery = create_store(made)
    add_member(store, {"name": "张三"})
    old = legacy_keyslots(store)
    store_id = store.store_id
    store.close()
    path.mkdir(mode=0o700)
    for f in made.iterdir():
        if f.name.startswith(("snapshot-", "journal-")):
            shutil.copyfile(f, path / f.name)
    (path / "keyslots").write_bytes(old)
    return store_id, recovery


# -- keys ------------------------------------------------------------------------------------

@pytest.mark.parametrize("start", ["new", "legacy"])
def test_no_earlier_key_slot_is_left_on_the_device(ext4: Ext4Image, tmp_path: Path,
                                                   start: str) -> None:
    """passwd, a new recovery key, then erase: after each, no slot that opens with an earlier
    secret can be carved from the raw device, and after erase no key-slot byte at all."""
    path = ext4.mnt / "store"
    store_id, recovery = make_store(path, start, tmp_path)
    seen = slot_bytes(path / "keyslots")
    old_passphrase_slot = slot_bytes(path / "keyslots", "passphrase")
    raw = ext4.raw()
    assert all(part in raw for part in seen)  # the scan finds slots where they are
    assert any(opens_with(c, store_id, PASSPHRASE) for c in carve_slots(raw))

    with Store.open(path, PASSPHRASE) as s:  # a version-1 file is converted here, in place
        assert s.keyslots_rewritten == ("migrated" if start == "legacy" else None)
        s.change_passphrase(NEW_PASSPHRASE, kdf=TEST_KDF)
        assert (path / "keyslots").stat().st_size == FILE_SIZE
    raw = ext4.raw()
    carved = carve_slots(raw)
    assert any(opens_with(c, store_id, NEW_PASSPHRASE) for c in carved)
    opened = [c for c in carved if opens_with(c, store_id, PASSPHRASE)]
    assert not opened, f"the old passphrase opens {len(opened)} slot(s) carved from the device"
    assert not [p for p in old_passphrase_slot if p in raw], "the old passphrase slot is on the device"
    seen += slot_bytes(path / "keyslots")

    with Store.open(path, NEW_PASSPHRASE) as s:
        new_recovery = s.new_recovery_key()
    raw = ext4.raw()
    carved = carve_slots(raw)
    assert any(opens_with(c, store_id, recovery=new_recovery) for c in carved)
    assert not [c for c in carved if opens_with(c, store_id, recovery=recovery)], \
        "the old recovery key opens a slot carved from the device"
    seen += slot_bytes(path / "keyslots")

    # the revocation's erase
    with Store.open(path, NEW_PASSPHRASE) as s:
        s.erase_keys()
    raw = ext4.raw()
    assert b"liudong-keyslots" not in raw, "a key-slot document is left on the device"
    left = [p for p in seen if p in raw]
    assert not left, f"{len(left)} piece(s) of key slots are left on the device"
    carved = carve_slots(raw)
    for secret in (PASSPHRASE, NEW_PASSPHRASE):
        assert not [c for c in carved if opens_with(c, store_id, secret)]
    for key in (recovery, new_recovery):
        assert not [c for c in carved if opens_with(c, store_id, recovery=key)]


def test_the_key_file_is_rewritten_in_place(store: Store, store_path: Path) -> None:
    """Same file (same inode), same size, both halves the same newest document, after passwd
    and a new recovery key; nothing of the superseded slot left in it."""
    keyslots = store_path / "keyslots"
    inode = keyslots.stat().st_ino
    old = slot_bytes(keyslots, "passphrase")
    store.change_passphrase(NEW_PASSPHRASE, kdf=TEST_KDF)
    old_recovery = slot_bytes(keyslots, "recovery")
    store.new_recovery_key()
    raw = keyslots.read_bytes()
    assert keyslots.stat().st_ino == inode and len(raw) == FILE_SIZE
    assert raw[:HALF] == raw[HALF:]
    assert not [p for p in old + old_recovery if p in raw]
    assert KeySlots.load(keyslots)[0].generation == 3
    assert not list(store_path.glob("*.tmp"))


def test_a_version_1_key_file_opens_and_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store_id, recovery = make_store(path, "legacy", tmp_path)
    legacy = (path / "keyslots").read_bytes()
    inode = (path / "keyslots").stat().st_ino
    with Store.open(path, recovery_key=recovery) as s:
        assert s.keyslots_rewritten == "migrated" and s.store_id == store_id
        assert [m["name"] for m in s.live("member")] == ["张三"]
        assert not [f for f in s.doctor() if f.level == "error"]
    raw = (path / "keyslots").read_bytes()
    assert (path / "keyslots").stat().st_ino == inode and len(raw) == FILE_SIZE
    assert raw[:HALF] == raw[HALF:] and legacy.rstrip(b"\n") not in raw
    with Store.open(path, PASSPHRASE) as s:
        assert s.keyslots_rewritten is None
    # the conversion's first step (the file extended, the old document still in half 0)
    (path / "keyslots").write_bytes(legacy.ljust(FILE_SIZE, b"\0"))
    with Store.open(path, PASSPHRASE) as s:
        assert s.keyslots_rewritten == "migrated"
    # a version-1 document that a crash left in half 0 beside a newer one in half 1: the newer
    with Store.open(path, PASSPHRASE) as s:
        s.change_passphrase(NEW_PASSPHRASE, kdf=TEST_KDF)
    newer = (path / "keyslots").read_bytes()
    (path / "keyslots").write_bytes(legacy.ljust(HALF, b"\0") + newer[HALF:])
    with pytest.raises(WrongPassphrase):
        Store.open(path, PASSPHRASE)
    with Store.open(path, NEW_PASSPHRASE) as s:
        assert s.keyslots_rewritten == "repaired"
    assert legacy.rstrip(b"\n") not in (path / "keyslots").read_bytes()


# -- crashes ---------------------------------------------------------------------------------

def _passphrase(n: int) -> str:
    return f"passphrase number {n}"


def _kill_during_rewrites(path: Path, n: int, rng: random.Random) -> tuple[int, int | None]:
    """Run a child that changes the passphrase from number ``n`` on, kill it at a random
    moment — often while it writes a half of the file. Returns the last passphrase it
    acknowledged and the one it was changing to when killed (None if none)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, str(CHILD), str(path), str(n)],
                             stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
    assert child.stdout is not None
    target = rng.choice(["W"] * 3 + ["A", "O"])
    skip = rng.randint(0, 4) if target != "O" else 0
    acked, pending = n, None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        word = line.split()
        if word[0] == "B":
            pending = int(word[1])
        elif word[0] == "A":
            acked, pending = int(word[1]), None
        if word[0] == target:
            if skip == 0:
                break
            skip -= 1
    time.sleep(rng.random() * 0.004)  # inside the write of a half, or near it
    child.send_signal(signal.SIGKILL)
    for line in child.stdout.read().splitlines():
        word = line.split()
        if word and word[0] == "B":
            pending = int(word[1])
        elif word and word[0] == "A":
            acked, pending = int(word[1]), None
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, f"child ended by itself: {child.returncode}"
    return acked, pending


@pytest.mark.slow
@pytest.mark.parametrize("start", ["new", "legacy"])
def test_a_kill_during_a_rewrite_leaves_the_old_or_the_new_passphrase(
        tmp_path: Path, start: str) -> None:
    """kill -9 while the key file is rewritten (``passwd``; with "legacy", also while a
    version-1 file is converted on open), with each half written in torn pieces: the store
    always opens with the last acknowledged passphrase or the one being set, never with an
    older one, and the file is whole again (both halves the newest) once it has been opened."""
    path = tmp_path / "store"
    store, _ = Store.create(path, _passphrase(0), kdf=TEST_KDF)
    store.close()
    rng = random.Random(8)
    n, torn, newer, kills = 0, 0, 0, 30
    for _ in range(kills):
        if start == "legacy":
            with Store.open(path, _passphrase(n)) as s:
                old = legacy_keyslots(s)
            (path / "keyslots").unlink()
            write_atomic(path / "keyslots", old)
        acked, pending = _kill_during_rewrites(path, n, rng)
        raw = (path / "keyslots").read_bytes()
        torn += len(raw) == FILE_SIZE and raw[:HALF] != raw[HALF:]
        try:
            s = Store.open(path, _passphrase(acked))
            n = acked
        except WrongPassphrase:
            assert pending is not None, "neither the acknowledged nor a pending passphrase opens"
            s = Store.open(path, _passphrase(pending))
            n = pending
            newer += 1
        with s:
            assert not [f for f in s.doctor() if f.level == "error"]
        for older in {max(0, n - 1), 0} - {n}:
            with pytest.raises(WrongPassphrase):
                Store.open(path, _passphrase(older))
        raw = (path / "keyslots").read_bytes()
        assert len(raw) == FILE_SIZE and raw[:HALF] == raw[HALF:]
    assert torn >= 3, f"only {torn} kill(s) landed inside a rewrite"
    print(f"{kills} kills, {torn} inside a rewrite, {newer} opened with the passphrase being set")


# -- records that leave the scope ------------------------------------------------------------

LEAVER = "欧阳明珠"
PHONE = "13912345678"
ID_NUMBER = make_id_number("330106", "19850315", 123)
NOTE = "在深圳南山区科技园务工"
HOST_NOTE = "东莞市长安镇党委走访"
UNSENT_NOTE = "迁出前最后一次修改"


def sync_entry(store: Store, **parts: Any) -> dict[str, Any]:
    """A county server's answer as the sync client commits it (FORMAT.md, journal entries)."""
    entry = {"k": "sync", "acked": store.meta["dev_seq"], "applied": [], "aliases": {},
             "changes": [], "removes": [], "rejected": [], "cursor": 0, "epoch": "e1",
             "synced_at": int(time.time())}
    entry.update(parts)
    return entry


def store_plaintext(store: Store) -> bytes:
    """Everything the current files hold, decrypted with the master key: what someone who
    has the passphrase reads."""
    sid = ulid_bytes(store.store_id)
    snap = sealed.read_snapshot(store._file("snapshot"), store._master, sid, store._slots.key_id)
    found = sealed.read_journal(store._file("journal"), store._master, sid,
                                store._slots.key_id, store.gen, snap.anchor)
    return snap.state + b"\n".join(found.entries)


def sealed_files(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in path.iterdir()
            if f.name.startswith(("snapshot-", "journal-"))}


def pieces(data: bytes) -> list[bytes]:
    """32-byte pieces of a sealed file, one inside each 4 KiB block (a piece never straddles
    two blocks, which need not lie side by side on the device). Sealed bytes are random: one
    piece found is the block found."""
    return [data[i + 64:i + 96] for i in range(0, len(data), 4096) if i + 96 <= len(data)]


def leave_scope(path: Path) -> tuple[Store, list[str], list[dict[str, bytes]]]:
    """A member this device registered, logged contacts with, and got a host's contact for
    from the county; then the member transfers away: the pull removes the member and what
    hangs off it. Returns the store (open), what must be gone, and the sealed files that held
    the member at each step."""
    store, _ = create_store(path)
    add_member(store, {"name": "王五"})
    leaver = add_member(store, {"name": LEAVER, "phone": PHONE, "id_number": ID_NUMBER,
                                "notes": NOTE})
    contact = log_contact(store, leaver, {"on": "2026-10-01", "channel": "phone",
                                          "reached": True, "summary": NOTE})
    seqs = [op["dev_seq"] for op in store.state.ops]
    store.commit(sync_entry(store, applied=[[s, 10 + s] for s in seqs], cursor=20))
    host_contact = new_ulid()
    hlc = store.meta["hlc"]
    store.commit(sync_entry(store, cursor=30, changes=[{
        "id": host_contact, "t": "contact", "v": 30, "c": hlc, "u": hlc,
        "f": {"member_id": leaver, "on": "2026-10-02", "channel": "visit", "reached": True,
              "summary": HOST_NOTE}}]))
    acked = store.meta["dev_seq"]
    store.put("member", {"notes": UNSENT_NOTE}, leaver)  # not yet sent when the member leaves
    held = [sealed_files(path)]
    gen = store.gen
    store.commit(sync_entry(store, acked=acked, cursor=40,
                            removes=[leaver, contact, host_contact]))
    assert store.gen == gen + 1  # the removal compacted at once
    gone = [leaver, contact, host_contact]
    assert all(store.get(i, include_deleted=True) is None for i in gone)
    # the device's own acknowledged ops on them went; the unsent one waits to be refused
    assert [op["set"] for op in store.state.ops if op["rec_id"] in gone] == [{"notes": UNSENT_NOTE}]
    held.append(sealed_files(path))
    store.commit(sync_entry(store, cursor=41))  # it was sent, and refused
    assert not [op for op in store.state.ops if op["rec_id"] in gone]
    assert "left_scope" not in store.meta
    assert store.gen == gen + 2
    return store, [LEAVER, PHONE, ID_NUMBER, NOTE, HOST_NOTE, UNSENT_NOTE, *gone], held


def test_records_that_leave_the_scope_leave_the_store_files(store_path: Path) -> None:
    store, markers, held = leave_scope(store_path)
    try:
        plain = store_plaintext(store)
        assert not [m for m in markers if m.encode() in plain]
        assert [m["name"] for m in store.live("member")] == ["王五"]
        now = sealed_files(store_path)
        for files in held:
            assert not set(files) & set(now)  # none of the files that held it is left
        assert not [f for f in store.doctor() if f.level == "error"]
    finally:
        store.close()
    with Store.open(store_path, PASSPHRASE) as s:
        assert not [m for m in markers if m.encode() in store_plaintext(s)]


def test_records_that_leave_the_scope_leave_the_device(ext4: Ext4Image) -> None:
    """Who has the passphrase (or carved the key) and reads the raw device finds no block of
    any snapshot or journal that held the member: the older generations were overwritten
    before they were unlinked."""
    path = ext4.mnt / "store"
    store, markers, held = leave_scope(path)
    assert not [m for m in markers if m.encode() in store_plaintext(store)]
    store.close()
    raw = ext4.raw()
    for files in held:
        for name, data in files.items():
            found = [p for p in pieces(data) if p in raw]
            assert not found, f"{len(found)} block(s) of {name}, which held the member, are on the device"


def test_a_record_back_in_scope_before_its_ops_are_acknowledged_keeps_them(store: Store) -> None:
    """An op still unsent when its record left waits for the acknowledgement; if the record
    came back into scope meanwhile (a flow got this branch as host again), the op is this
    device's again, and kept like any other."""
    member = add_member(store, {"name": LEAVER, "phone": PHONE})
    acked = store.meta["dev_seq"]
    store.commit(sync_entry(store, applied=[[s, s] for s in range(1, acked + 1)], cursor=2))
    store.put("member", {"notes": UNSENT_NOTE}, member)
    record = store.get(member)
    assert record is not None
    store.commit(sync_entry(store, acked=acked, removes=[member], cursor=3))
    assert store.meta["left_scope"] == [member]
    hlc = store.meta["hlc"]
    store.commit(sync_entry(store, cursor=4, changes=[{
        "id": member, "t": "member", "v": 4, "c": record["created_at"], "u": hlc,
        "f": {k: v for k, v in record.items()
              if k not in ("id", "type", "created_at", "updated_at", "deleted")}}]))
    assert "left_scope" not in store.meta
    assert [op["set"] for op in store.state.ops if op["rec_id"] == member][-1] == {
        "notes": UNSENT_NOTE}
    assert not [f for f in store.doctor() if f.level == "error"]
