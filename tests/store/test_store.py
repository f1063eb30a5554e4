"""The store's own behaviour: keys, recovery, compaction leftovers, the TinyDB layer, ops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tinydb import Query

from store import (
    TEST_KDF,
    BadRecoveryKey,
    KdfParams,
    Store,
    StoreExists,
    StoreNotFound,
    ValidationError,
    WrongPassphrase,
    crypto,
)
from store.ids import Hlc, is_ulid, new_ulid
from store.register import add_member, flow_out
from tests.conftest import ORG, PASSPHRASE, create_store


def file_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.iterdir() if p.name not in ("lock",)}


def test_passphrase_change_rewrites_only_the_key_file(store: Store, store_path: Path) -> None:
    add_member(store, {"name": "张三"})
    before = file_bytes(store_path)
    store.change_passphrase("a brand new passphrase", kdf=TEST_KDF)
    after = file_bytes(store_path)
    assert [n for n in before if before[n] != after[n]] == ["keyslots"]
    store.close()
    with pytest.raises(WrongPassphrase):
        Store.open(store_path, PASSPHRASE)
    with Store.open(store_path, "a brand new passphrase") as s:
        assert [m["name"] for m in s.live("member")] == ["张三"]


def test_new_passphrases_must_be_long_enough(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        store.change_passphrase("short", kdf=TEST_KDF)
    assert caught.value.field == "passphrase"
    with pytest.raises(ValidationError):
        Store.create(tmp_path / "other", "1234567", kdf=TEST_KDF)
    assert not (tmp_path / "other").exists()


def test_recovery_key_opens_the_store_and_resets_the_passphrase(store_path: Path) -> None:
    store, recovery = create_store(store_path)
    add_member(store, {"name": "李四"})
    store.close()
    assert len(recovery.split("-")) == 11
    # as copied by hand: lower case, spaces instead of dashes, O for 0 and l for 1
    typed = recovery.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    with Store.open(store_path, recovery_key=typed) as s:
        s.change_passphrase("forgot the old one", kdf=TEST_KDF)
    with pytest.raises(WrongPassphrase):
        Store.open(store_path, PASSPHRASE)
    with Store.open(store_path, "forgot the old one") as s:
        assert [m["name"] for m in s.live("member")] == ["李四"]
        new_key = s.new_recovery_key()
    with pytest.raises(WrongPassphrase) as caught:
        Store.open(store_path, recovery_key=recovery)  # the old key stopped working
    assert "recovery" in caught.value.en
    Store.open(store_path, recovery_key=new_key).close()


def test_a_mistyped_recovery_key_is_caught_by_its_checksum(store_path: Path) -> None:
    store, recovery = create_store(store_path)
    store.close()
    chars = list(recovery)
    chars[3] = "Z" if chars[3] != "Z" else "Y"
    for bad in ("".join(chars), recovery[:-1], recovery + "A", "not a key"):
        with pytest.raises(BadRecoveryKey):
            Store.open(store_path, recovery_key=bad)


def test_scrypt_fallback_stores_open(tmp_path: Path) -> None:
    params = KdfParams("scrypt", log_n=14, r=8, p=1)
    s, _ = Store.create(tmp_path / "s", PASSPHRASE, kdf=params, org=dict(ORG))
    add_member(s, {"name": "王五"})
    s.close()
    with Store.open(tmp_path / "s", PASSPHRASE) as s:
        assert [m["name"] for m in s.live("member")] == ["王五"]
    with pytest.raises(WrongPassphrase):
        Store.open(tmp_path / "s", "wrong passphrase")


@pytest.mark.slow
def test_calibration_lands_in_its_range() -> None:
    """DESIGN §7: the KDF takes 0.3–0.5 s. The bound here is looser: CI machines are noisy."""
    params = crypto.calibrate()
    params.check()
    assert params.name == "argon2id" and params.memory_kib >= 64 << 10
    started = time.perf_counter()
    crypto.derive_key(b"x", b"0" * 16, params)
    assert 0.15 < time.perf_counter() - started < 1.2


def test_create_refuses_an_existing_store_and_recovers_from_a_half_made_one(
        store_path: Path) -> None:
    create_store(store_path)[0].close()
    with pytest.raises(StoreExists):
        create_store(store_path)
    # a crash during init, before keyslots: leftovers, no store
    (store_path / "keyslots").unlink()
    with pytest.raises(StoreNotFound):
        Store.open(store_path, PASSPHRASE)
    s, _ = create_store(store_path)
    s.close()
    assert sorted(p.name for p in store_path.iterdir()) == [
        "journal-00000001", "keyslots", "lock", "snapshot-00000001"]


def test_compaction_leftovers_are_cleaned_and_nothing_is_lost(store_path: Path) -> None:
    store, _ = create_store(store_path)
    add_member(store, {"name": "张三"})
    add_member(store, {"name": "李四"})
    store.compact()
    gen2 = {p.name: p.read_bytes() for p in store_path.glob("*-00000002")}
    add_member(store, {"name": "王五"})
    store.compact()
    expected = store.state.to_bytes()
    store.close()
    # crash between the new snapshot and its journal: no journal-3 yet, generation 2 still there
    (store_path / "journal-00000003").unlink()
    for name, data in gen2.items():
        (store_path / name).write_bytes(data)
    (store_path / "snapshot-00000004.tmp").write_bytes(b"half written")
    with Store.open(store_path, PASSPHRASE) as s:
        assert s.gen == 3 and s.state.to_bytes() == expected
        add_member(s, {"name": "赵六"})
    assert sorted(p.name for p in store_path.iterdir()) == [
        "journal-00000003", "keyslots", "lock", "snapshot-00000003"]
    with Store.open(store_path, PASSPHRASE) as s:
        assert {m["name"] for m in s.live("member")} == {"张三", "李四", "王五", "赵六"}


def test_compaction_happens_on_its_own(store: Store, store_path: Path) -> None:
    store.compact_min = 4096
    for i in range(60):
        add_member(store, {"name": f"党员{i}", "notes": "x" * 100})
    store.wait_for_compaction()  # it runs beside commits, in the background
    assert store.gen > 1 and store.compaction_error is None
    assert len(list(store_path.glob("journal-*"))) == 1


def test_tinydb_is_the_query_layer_and_its_write_path_is_closed(store: Store) -> None:
    member_id = add_member(store, {"name": "张三", "gender": "male"})
    add_member(store, {"name": "李四", "gender": "female"})
    found = store.table("member").search(Query().gender == "male")
    assert [d["name"] for d in found] == ["张三"] and found[0].doc_id == member_id
    store.put("member", {"gender": "female"}, member_id)
    assert store.table("member").search(Query().gender == "male") == []  # cache cleared
    with pytest.raises(TypeError):
        store.table("member").insert({"name": "绕过日志"})
    with pytest.raises(TypeError):
        store.table("member").update({"name": "x"})


def test_ops_are_numbered_densely_and_carry_what_sync_needs(store_path: Path) -> None:
    store, _ = create_store(store_path)
    member_id = add_member(store, {"name": "张三"})
    flow_out(store, member_id, {"left_on": "2026-01-05", "reason": "work"})
    store.close()
    with Store.open(store_path, PASSPHRASE) as s:
        s.put("member", {"phone": "13800138000"}, member_id)
        ops = s.state.outbox
        assert [op["dev_seq"] for op in ops] == list(range(1, len(ops) + 1))
        assert s.meta["dev_seq"] == len(ops)
        assert {op["device_id"] for op in ops} == {s.device_id}
        hlcs = [op["hlc"] for op in ops]
        assert hlcs == sorted(hlcs) and len(set(hlcs)) == len(hlcs)
        last = ops[-1]
        assert last["rec_id"] == member_id and last["set"] == {"phone": "13800138000"}
        assert last["base"] == {"phone": 0}
        # the outbox of flow_out: the flow alone (the member's mobility is derived from it)
        assert [(op["type"], sorted(op["set"])) for op in ops[-2:-1]] == [
            ("flow", ["home_org_id", "left_on", "member_id", "reason", "status"])]


def test_erased_keys_make_the_store_unreadable(store: Store, store_path: Path) -> None:
    add_member(store, {"name": "张三"})
    store.erase_keys()
    store.close()
    assert not (store_path / "keyslots").exists()
    with pytest.raises(StoreNotFound):
        Store.open(store_path, PASSPHRASE)


def test_ids_and_clock() -> None:
    ids = [new_ulid() for _ in range(1000)]
    assert all(is_ulid(i) for i in ids) and ids == sorted(ids) and len(set(ids)) == 1000
    clock = Hlc()
    stamps = [clock.now() for _ in range(1000)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 1000
    ahead = Hlc.encode(Hlc.parse(stamps[-1])[0] + 60_000, 7)  # another device, a minute ahead
    clock.observe(ahead)
    assert clock.now() > ahead
