"""``liudong backup --out FILE`` and ``liudong restore FILE`` as a user runs them: a real process
per command, one bilingual line and an exit code for every refusal."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from store import Store
from store.register import add_member
from tests.cli.test_commands import assert_clean_error, liudong
from tests.conftest import PASSPHRASE, create_store


def make_store(path: Path) -> str:
    store, recovery = create_store(path)
    add_member(store, {"name": "张三", "phone": "13800138000"})
    add_member(store, {"name": "单田芳", "phone": "13900139000"})
    store.close()
    return recovery


def test_backup_to_a_usb_stick_and_restore_on_a_new_laptop(tmp_path: Path) -> None:
    store = tmp_path / "branch"
    make_store(store)
    usb = tmp_path / "usb"
    usb.mkdir()
    r = liudong("backup", "--out", str(usb / "城关村.bak"), store=store)
    assert r.returncode == 0, r.stderr
    assert "已写入备份" in r.stdout and str(usb / "城关村.bak") in r.stdout
    assert stat.S_IMODE((usb / "城关村.bak").stat().st_mode) == 0o600
    assert [p.name for p in usb.iterdir()] == ["城关村.bak"]

    new = tmp_path / "new-laptop" / "store"
    r = liudong("restore", str(usb / "城关村.bak"), store=new, lang="en")
    assert r.returncode == 0, r.stderr
    assert "Restored the store" in r.stdout and "2 member(s)" in r.stdout
    r = liudong("member", "list", "--search", "stf", "--json", store=new)
    assert r.returncode == 0, r.stderr
    assert [m["name"] for m in json.loads(r.stdout)] == ["单田芳"]
    with Store.open(store, PASSPHRASE) as a, Store.open(new, PASSPHRASE) as b:
        assert a.state.to_bytes() == b.state.to_bytes()
    r = liudong("doctor", store=new)
    assert r.returncode == 0, r.stdout + r.stderr


def test_restore_with_the_recovery_key_and_json(tmp_path: Path) -> None:
    store = tmp_path / "branch"
    recovery = make_store(store)
    r = liudong("backup", "--out", str(tmp_path / "b"), "--json", store=store)
    assert r.returncode == 0, r.stderr
    written = json.loads(r.stdout)
    assert written["generation"] == 1 and written["files"] == 3
    r = liudong("restore", str(tmp_path / "b"), "--recovery", "--json", store=tmp_path / "r1",
                passphrase=None, LIUDONG_RECOVERY_KEY=recovery)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["members"] == 2
    r = liudong("--recovery", "restore", str(tmp_path / "b"), store=tmp_path / "r2",
                passphrase=None, LIUDONG_RECOVERY_KEY=recovery)
    assert r.returncode == 0, r.stderr


def test_refused_restores_say_why_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "branch"
    make_store(store)
    backup = tmp_path / "b"
    assert liudong("backup", "--out", str(backup), store=store).returncode == 0
    before = {p.name: p.read_bytes() for p in store.iterdir()}

    # onto the store it came from: refused, nothing touched, exit 2
    r = liudong("restore", str(backup), store=store)
    assert_clean_error(r, "此处已有存储", "a store already exists", "choose another directory")
    assert r.returncode == 2
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before

    # a wrong passphrase: as when opening the store, exit 3
    r = liudong("restore", str(backup), store=tmp_path / "r", passphrase="not the passphrase")
    assert_clean_error(r, "口令不正确", "wrong passphrase")
    assert r.returncode == 3 and not (tmp_path / "r").exists()

    # a damaged file: exit 4, before any passphrase is asked for
    damaged = bytearray(backup.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    (tmp_path / "damaged").write_bytes(damaged)
    r = liudong("restore", str(tmp_path / "damaged"), store=tmp_path / "r", passphrase=None)
    assert_clean_error(r, "备份文件无法使用", "unusable backup", "checksum")
    assert r.returncode == 4 and not (tmp_path / "r").exists()
    r = liudong("restore", str(tmp_path / "no-such-file"), store=tmp_path / "r", lang="en")
    assert_clean_error(r, "does not exist")
    assert r.returncode == 4

    # a backup never overwrites a file that is not a backup
    (tmp_path / "members.xlsx").write_bytes(b"PK\3\4")
    r = liudong("backup", "--out", str(tmp_path / "members.xlsx"), store=store)
    assert_clean_error(r, "not a Liudong backup")
    assert r.returncode == 2 and (tmp_path / "members.xlsx").read_bytes() == b"PK\3\4"
