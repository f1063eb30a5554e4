"""The interface as a person runs it: `liudong` in a real pseudo-terminal at 80×24, its screen
read through a VT emulator, keys typed, and the process killed with SIGKILL as when a laptop
loses power."""

from __future__ import annotations

import os
from pathlib import Path

from store import Store, register
from tests.conftest import PASSPHRASE, create_store, make_id_number
from tests.e2e.conftest import ROOT, command
from tests.e2e.terminal import Terminal


def env_for(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    env.update(LIUDONG_PASSPHRASE=PASSPHRASE, HOME=str(tmp), PYTHONPATH=str(ROOT))
    return env


def make_store(path: Path) -> None:
    store, _ = create_store(path)
    with store:
        register.add_member(store, {"name": "张三", "id_number": make_id_number(seq=21),
                                    "phone": "13800138000"})


def test_the_interface_opens_switches_sections_and_quits(tmp_path: Path) -> None:
    make_store(tmp_path / "s")
    term = Terminal([*command(), "--store", str(tmp_path / "s")], env_for(tmp_path), tmp_path)
    try:
        term.wait_for("城关村党支部")
        term.wait_for("1待办")
        term.press("2")
        screen = term.wait_for("张三")
        assert "13800138000" in screen
        term.press("f1")
        term.wait_for("ctrl+p命令面板")
        term.press("escape", "ctrl+q")
        assert term.wait_exit() == 0
    finally:
        term.kill()
    assert b"Traceback" not in term.raw


def test_english_on_request(tmp_path: Path) -> None:
    make_store(tmp_path / "s")
    term = Terminal([*command(), "--lang", "en", "--store", str(tmp_path / "s")],
                    env_for(tmp_path), tmp_path)
    try:
        term.wait_for("Worklist")
        term.press("2")
        term.wait_for("members")
    finally:
        term.kill()


def test_without_a_terminal_the_command_says_so(tmp_path: Path) -> None:
    import subprocess

    make_store(tmp_path / "s")
    result = subprocess.run([*command(), "--store", str(tmp_path / "s")], capture_output=True,
                            text=True, env=env_for(tmp_path), stdin=subprocess.DEVNULL,
                            timeout=60)
    assert result.returncode == 2
    assert "终端" in result.stderr and "Traceback" not in result.stderr
    with Store.open(tmp_path / "s", PASSPHRASE):
        pass  # untouched and not left locked


def test_a_saved_form_survives_sigkill_and_typed_work_survives_a_closed_window(
        tmp_path: Path) -> None:
    make_store(tmp_path / "s")
    env = env_for(tmp_path)
    term = Terminal([*command(), "--store", str(tmp_path / "s")], env, tmp_path)
    try:
        term.wait_for("1待办")
        term.press("2")
        term.wait_for("张三")
        term.press("n")
        term.wait_for("新增党员")
        term.type("王小明")
        term.press("ctrl+s")
        term.wait_for("已保存")
    finally:
        term.kill()  # SIGKILL right after the save was reported
    with Store.open(tmp_path / "s", PASSPHRASE) as store:
        assert [m["name"] for m in store.live("member") if m["name"] == "王小明"] == ["王小明"]

    term = Terminal([*command(), "--store", str(tmp_path / "s")], env, tmp_path)
    try:
        term.wait_for("1待办")
        term.press("2")
        term.wait_for("王小明")
        term.press("n")
        term.wait_for("新增党员")
        term.type("李小红")
        term.press("tab")
        term.type("13912345678")
        # the window closes (the terminal hangs up) without saving
        term.close()
        assert term.process.wait(timeout=20) is not None
    finally:
        term.kill()
    term = Terminal([*command(), "--store", str(tmp_path / "s")], env, tmp_path)
    try:
        screen = term.wait_for("未保存的草稿")
        assert "李小红" in screen.replace(" ", "")
        term.press("ctrl+q")
        term.wait_exit()
    finally:
        term.kill()
    with Store.open(tmp_path / "s", PASSPHRASE) as store:
        assert not [m for m in store.live("member") if m["name"] == "李小红"]  # not saved
        drafts = store.meta.get("drafts") or {}
        assert any("13912345678" in str(d) for d in drafts.values())
