"""The command line as a user runs it (DESIGN §5): a real ``liudong`` process per command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from store import Store
from tests.conftest import PASSPHRASE, create_store, make_id_number

BIN = Path(sys.executable).with_name("liudong")
ROOT = Path(__file__).resolve().parents[2]


def liudong(*args: str, store: Path | None = None, passphrase: str | None = PASSPHRASE,
            lang: str = "zh", stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    environ["LIUDONG_LANG"] = lang
    if store is not None:
        environ["LIUDONG_STORE"] = str(store)
    if passphrase is not None:
        environ["LIUDONG_PASSPHRASE"] = passphrase
    environ.update(env)
    command = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "tui.cli"]
    return subprocess.run(command + list(args), capture_output=True, text=True, env=environ,
                          input=stdin if stdin is not None else "", timeout=120, cwd=ROOT)


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A refusal: non-zero exit, one line on stderr in both languages, no traceback."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"[\u4e00-\u9fff]", lines[0]) and re.search(r"[a-z]{3}", lines[0]), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_a_new_user_from_the_readme(tmp_path: Path) -> None:
    """Issue 'Done when': create a store, add members with Chinese names, find them by pinyin
    initials, register an outflow, log a contact, change the passphrase, open with the recovery
    key, verify the store. Real key derivation throughout."""
    store = tmp_path / "branch"
    r = liudong("init", "--org", "城关村党支部", "--division-code", "330106", store=store)
    assert r.returncode == 0, r.stderr
    recovery = re.search(r"([0-9A-Z]{5}(?:-[0-9A-Z]{5}){10})", r.stdout)
    assert recovery, r.stdout
    assert (store / "keyslots").exists()
    number = make_id_number("330106", "19850315", 123)
    r = liudong("member", "add", "--name", "张三", "--gender", "男", "--id-number", number,
                "--birth-date", "1985-03-15", "--phone", "138 0013 8000", "--joined-on",
                "2010-07-01", store=store)
    assert r.returncode == 0, r.stderr
    assert liudong("member", "add", "--name", "单田芳", "--phone", "13900139000",
                   store=store).returncode == 0
    r = liudong("member", "list", "--search", "zs", "--json", store=store)
    assert [m["name"] for m in json.loads(r.stdout)] == ["张三"]
    r = liudong("member", "list", "--search", "stf", store=store)
    assert "单田芳" in r.stdout and "张三" not in r.stdout
    r = liudong("flow", "out", "张三", "--left-on", "2026-09-01", "--reason", "work",
                "--destination-address", "广东省深圳市南山区", "--external-host",
                "南山区科技园党委", "--home-contact", "李书记", store=store)
    assert r.returncode == 0, r.stderr
    assert "待报到" in r.stdout
    r = liudong("contact", "log", "zs", "--on", "2026-11-20", "--channel", "wechat",
                "--reached", "yes", "--note", "已在流入地报到", store=store)
    assert r.returncode == 0, r.stderr
    r = liudong("member", "show", "zs", store=store)
    assert "流出" in r.stdout and "南山区科技园党委" in r.stdout and "2026-11-20" in r.stdout
    assert number not in r.stdout and number[-4:] in r.stdout  # masked on screen
    r = liudong("passwd", store=store, LIUDONG_NEW_PASSPHRASE="a new passphrase 2")
    assert r.returncode == 0, r.stderr
    assert_clean_error(liudong("member", "list", store=store), "口令不正确", "wrong passphrase")
    assert liudong("member", "list", store=store,
                   passphrase="a new passphrase 2").returncode == 0
    # passphrase forgotten: the recovery key opens the store, and sets a new passphrase
    r = liudong("--recovery", "passwd", store=store, passphrase=None,
                LIUDONG_RECOVERY_KEY=recovery.group(1).lower(),
                LIUDONG_NEW_PASSPHRASE="third passphrase")
    assert r.returncode == 0, r.stderr
    r = liudong("doctor", store=store, passphrase="third passphrase")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "存储完好" in r.stdout
    r = liudong("member", "list", "--json", store=store, passphrase="third passphrase")
    assert {m["name"] for m in json.loads(r.stdout)} == {"张三", "单田芳"}


@pytest.fixture
def branch(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    s, _ = create_store(path)
    s.close()
    return path


@pytest.mark.parametrize(("args", "needles"), [
    (["member", "add", "--name", "李四", "--phone", "1234567"], ["手机号", "phone"]),
    (["member", "add", "--name", "李四", "--id-number", make_id_number()[:-1] + "0"],
     ["身份证号", "id_number", "check"]),
    (["member", "add", "--name", "李四", "--birth-date", "2023-02-29"], ["出生日期", "birth_date"]),
    (["member", "add", "--name", "李四", "--gender", "x"], ["性别", "gender"]),
    (["member", "add", "--name", "李四", "--home-org-id", "01ARZ3NDEKTSV4RRFFQ69G5FAV"],
     ["home_org_id"]),
    (["member", "add", "--phone", "13800138000"], ["--name"]),
    (["member", "add", "--name", "李四", "--bogus", "1"], ["--bogus"]),
    (["flow", "out", "nobody", "--left-on", "2026-01-01", "--reason", "work"], ["nobody"]),
    (["contact", "log", "张三", "--on", "2026-13-01", "--channel", "phone", "--reached", "yes"],
     ["on"]),
    (["contact", "log", "张三", "--on", "2026-01-01", "--channel", "fax", "--reached", "yes"],
     ["channel"]),
    (["contact", "log", "张三", "--on", "2026-01-01", "--channel", "phone", "--reached", "maybe"],
     ["reached"]),
    (["flow", "report", "张三", "--on", "2026-01-01"], ["张三"]),
])
def test_bad_input_is_refused_clearly_and_writes_nothing(
        branch: Path, args: list[str], needles: list[str]) -> None:
    assert liudong("member", "add", "--name", "张三", store=branch).returncode == 0
    with Store.open(branch, PASSPHRASE) as s:
        before = s.state.to_bytes()
    for lang in ("zh", "en"):
        assert_clean_error(liudong(*args, store=branch, lang=lang), *needles)
    with Store.open(branch, PASSPHRASE) as s:
        assert s.state.to_bytes() == before


def test_store_problems_have_their_own_messages_and_exit_codes(branch: Path,
                                                               tmp_path: Path) -> None:
    missing = liudong("member", "list", store=tmp_path / "nowhere")
    assert_clean_error(missing, "liudong init")
    wrong = liudong("member", "list", store=branch, passphrase="wrong passphrase")
    assert_clean_error(wrong, "wrong passphrase")
    no_secret = liudong("member", "list", store=branch, passphrase=None)
    assert_clean_error(no_secret, "LIUDONG_PASSPHRASE")
    exists = liudong("init", store=branch)
    assert_clean_error(exists, "already exists")
    journal = next(branch.glob("journal-*"))
    journal.write_bytes(journal.read_bytes() + b"\xff\xff\xff")  # a torn write: dropped
    assert liudong("member", "add", "--name", "王五", store=branch).returncode == 0
    data = bytearray(journal.read_bytes())
    data[-40] ^= 1
    journal.write_bytes(bytes(data))
    corrupted = liudong("member", "list", store=branch)
    assert_clean_error(corrupted, "corrupted")
    doctor = liudong("doctor", store=branch)
    assert doctor.returncode == corrupted.returncode == 4
    assert "✗" in doctor.stdout
    codes = {missing.returncode, wrong.returncode, corrupted.returncode, exists.returncode}
    assert len(codes) == 4, codes


def test_the_store_is_in_use_message(branch: Path) -> None:
    with Store.open(branch, PASSPHRASE):
        assert_clean_error(liudong("member", "list", store=branch), "in use", str(os.getpid()))


def test_flows_end_to_end_and_json_output(branch: Path) -> None:
    r = liudong("flow", "in", "--name", "王芳", "--gender", "female", "--phone", "15011112222",
                "--external-home-org", "河南省某县某村党支部", "--left-on", "2026-03-01",
                "--reason", "work", "--json", store=branch)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["member"]["mobility"] == "inflow" and data["flow"]["status"] == "pending_report"
    assert liudong("flow", "report", "wf", "--on", "2026-03-05", store=branch).returncode == 0
    r = liudong("member", "show", "王芳", "--json", store=branch)
    flow = json.loads(r.stdout)["flows"][0]
    assert flow["status"] == "reported" and flow["reported_on"] == "2026-03-05"
    assert liudong("flow", "end", "王芳", "--on", "2026-10-01", "--reason", "returned",
                   store=branch).returncode == 0
    r = liudong("member", "list", "--json", store=branch)
    assert json.loads(r.stdout) == []  # no longer hosted here: archived
    r = liudong("member", "list", "--all", "--json", store=branch)
    assert [m["archived"] for m in json.loads(r.stdout)] == ["departed"]
    r = liudong("member", "edit", "wf", "--phone", "15011113333", "--clear", "gender",
                "--json", store=branch)
    assert json.loads(r.stdout)["phone"] == "15011113333" and "gender" not in json.loads(r.stdout)


def test_ambiguous_member_names_ask_for_the_id(branch: Path) -> None:
    for _ in range(2):
        assert liudong("member", "add", "--name", "张伟", store=branch).returncode == 0
    assert liudong("member", "add", "--name", "张卫", store=branch).returncode == 0
    assert_clean_error(liudong("member", "show", "zw", store=branch), "张伟", "give the id")
    r = liudong("member", "list", "--json", "--search", "张卫", store=branch)
    member_id = json.loads(r.stdout)[0]["id"]
    assert liudong("member", "show", "张卫", store=branch).returncode == 0
    assert liudong("member", "show", member_id[-8:], store=branch).returncode == 0


def test_english_interface(branch: Path) -> None:
    assert liudong("member", "add", "--name", "张三", store=branch).returncode == 0
    r = liudong("--lang", "en", "member", "list", store=branch, lang="zh")
    assert "name" in r.stdout and "1 member(s)" in r.stdout
