"""Personal data stays off the command line, and ``--json`` masks it as the screen does (issue 8,
§5): ``--id-number -`` (any field the schema marks ``sensitive``) and ``enroll --code -`` read
the value from a prompt without echo or from stdin; ``--json-in -`` reads a whole record as a
JSON object; ``--json`` output masks ID numbers unless ``--reveal``. Real ``liudong`` processes
throughout: what a process was given is what ``ps`` and ``/proc/<pid>/cmdline`` show."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import Store
from store.schema import TYPES
from tests.cli.test_commands import BIN, ROOT, assert_clean_error, liudong
from tests.conftest import PASSPHRASE, create_store, make_id_number

NUMBER = make_id_number("330106", "19850315", 123)
# what the screen shows (`member show`): the region and the last four characters
SHOWN = NUMBER[:4] + "*" * (len(NUMBER) - 8) + NUMBER[-4:]


def command() -> list[str]:
    return [str(BIN)] if BIN.exists() else [sys.executable, "-m", "tui.cli"]


def environ(store: Path, passphrase: str | None = PASSPHRASE, lang: str = "en") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    env.update(LIUDONG_LANG=lang, LIUDONG_STORE=str(store))
    if passphrase is not None:
        env["LIUDONG_PASSPHRASE"] = passphrase
    return env


def stored_members(store: Path) -> dict[str, dict[str, object]]:
    with Store.open(store, PASSPHRASE) as s:
        return {m["name"]: m for m in s.live("member")}


def state_of(store: Path) -> bytes:
    with Store.open(store, PASSPHRASE) as s:
        return s.state.to_bytes()


@pytest.fixture
def branch(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    s, _ = create_store(path)
    s.close()
    return path


def test_the_schema_marks_the_id_number_sensitive() -> None:
    """The flags that read from a prompt are derived from the schema, not listed by hand."""
    sensitive = {(t.name, f.name) for t in TYPES.values() for f in t.fields if f.sensitive}
    assert ("member", "id_number") in sensitive
    r = liudong("member", "add", "--help", lang="en")
    assert "--id-number [ID_NUMBER]" in r.stdout and "without echo" in r.stdout


@pytest.mark.parametrize("form", [["--id-number", "-"], ["--id-number"], ["--id-number=-"]])
def test_an_id_number_read_from_stdin_is_stored_and_never_in_argv(
        branch: Path, form: list[str]) -> None:
    args = ["member", "add", "--name", "张三", *form, "--phone", "13800138000"]
    assert NUMBER not in " ".join(args)  # by construction: argv holds "-" or nothing
    r = liudong(*args, store=branch, stdin=NUMBER + "\n")
    assert r.returncode == 0, r.stderr
    assert stored_members(branch)["张三"]["id_number"] == NUMBER
    # the birth date and gender came from the number, as with the literal flag
    assert stored_members(branch)["张三"]["birth_date"] == "1985-03-15"


def test_the_passphrase_comes_first_when_both_are_on_stdin(branch: Path) -> None:
    r = liudong("member", "add", "--name", "张三", "--id-number", "-", store=branch,
                passphrase=None, stdin=f"{PASSPHRASE}\n{NUMBER}\n")
    assert r.returncode == 0, r.stderr
    assert stored_members(branch)["张三"]["id_number"] == NUMBER
    r = liudong("member", "edit", "张三", "--id-number", store=branch, passphrase=None,
                stdin=f"{PASSPHRASE}\n{make_id_number(seq=124)}\n")
    assert r.returncode == 0, r.stderr
    assert stored_members(branch)["张三"]["id_number"] == make_id_number(seq=124)


def test_proc_cmdline_of_a_waiting_liudong_holds_no_id_number(branch: Path) -> None:
    """The attack of the issue: another local user reads /proc/<pid>/cmdline while the command
    runs. The process is caught while it waits on stdin for the number."""
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("no /proc on this system")
    process = subprocess.Popen(
        [*command(), "member", "add", "--name", "张三", "--id-number", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environ(branch, lang="zh"), cwd=ROOT)
    try:
        proc = Path(f"/proc/{process.pid}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if "pipe" in (proc / "wchan").read_text():  # blocked reading its stdin
                    break
            except OSError:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        assert b"--id-number" in argv and b"-" in argv
        assert NUMBER.encode() not in (proc / "cmdline").read_bytes()
        assert NUMBER.encode() not in (proc / "environ").read_bytes()
        _out, err = process.communicate(NUMBER + "\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert stored_members(branch)["张三"]["id_number"] == NUMBER


def _run_on_a_terminal(args: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run liudong with a pseudo-terminal as its terminal; type ``answer`` at the first prompt.
    Returns the exit code and everything the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: liudong, its stdin/stdout/stderr the terminal
        try:
            os.chdir(ROOT)
            os.execve(command()[0], [*command(), *args], env)
        finally:
            os._exit(127)
    shown, typed = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        if not typed and b"echo" in shown:  # "ID number (not echoed): "
            time.sleep(0.2)  # let getpass turn echo off (it prints the prompt after that)
            os.write(fd, answer.encode() + b"\n")
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_on_a_terminal_the_number_is_asked_for_without_echo(branch: Path) -> None:
    code, shown = _run_on_a_terminal(["member", "add", "--name", "张三", "--id-number"],
                                     environ(branch), NUMBER)
    assert code == 0, shown
    assert "ID number (not echoed)" in shown
    assert NUMBER not in shown and NUMBER[6:14] not in shown  # not echoed
    assert stored_members(branch)["张三"]["id_number"] == NUMBER


def test_a_record_as_json_on_stdin(branch: Path) -> None:
    record = {"name": "张三", "id_number": NUMBER, "phone": "138 0013 8000", "gender": "男",
              "joined_on": "2010-07-01", "notes": "从 JSON 读入"}
    r = liudong("member", "add", "--json-in", "-", "--json", store=branch,
                stdin=json.dumps(record, ensure_ascii=False))
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed["id_number"] == SHOWN and printed["phone"] == "13800138000"
    member = stored_members(branch)["张三"]
    assert (member["id_number"], member["gender"], member["notes"]) == (NUMBER, "male",
                                                                      "从 JSON 读入")
    # an inflow: member and flow fields in one flat object, named as in the schema
    other = make_id_number("411522", "19900101", 321)
    r = liudong("flow", "in", "--json-in", "-", "--json", store=branch, stdin=json.dumps({
        "name": "王芳", "id_number": other, "external_home_org": "河南省某县某村党支部",
        "left_on": "2026-03-01", "reason": "务工"}, ensure_ascii=False))
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed["member"]["mobility"] == "inflow" and printed["flow"]["reason"] == "work"
    assert printed["member"]["id_number"] == other[:4] + "*" * 10 + other[-4:]
    assert stored_members(branch)["王芳"]["id_number"] == other
    # edit: null clears a field, like --clear
    r = liudong("member", "edit", "王芳", "--json-in", "-", store=branch,
                stdin='{"id_number": null, "phone": "15011112222"}')
    assert r.returncode == 0, r.stderr
    assert "id_number" not in stored_members(branch)["王芳"] or \
        stored_members(branch)["王芳"]["id_number"] is None
    assert stored_members(branch)["王芳"]["phone"] == "15011112222"


@pytest.mark.parametrize(("args", "stdin", "needles"), [
    # validated exactly like flags: a field the command has no flag for is an unknown_field
    (["member", "add", "--json-in", "-"], '{"name": "李四", "bogus": 1}', ["bogus"]),
    (["member", "add", "--json-in", "-"], '{"name": "李四", "archived": "left"}', ["archived"]),
    (["flow", "in", "--json-in", "-"],
     '{"name": "李四", "left_on": "2026-01-01", "reason": "work", "status": "ended"}',
     ["status"]),
    (["member", "add", "--json-in", "-"], '{"name": "李四", "id_number": "123"}',
     ["id_number"]),
    (["member", "add", "--json-in", "-"], '{"phone": "13800138000"}', ["--name"]),
    (["member", "add", "--json-in", "-"], '{"name": "李四"', ["JSON"]),
    (["member", "add", "--json-in", "-"], '["李四"]', ["JSON"]),
    (["member", "add", "--json-in", "-", "--name", "李四"], '{"name": "李四"}', ["--name"]),
    (["member", "add", "--json-in", "-", "--id-number", "-"], '{"name": "李四"}',
     ["--json-in", "id_number"]),
    (["member", "add", "--name", "李四", "--id-number", "-"], "", ["ID number", "身份证号"]),
    (["member", "add", "--name", "李四", "--id-number", "-"], "\n", ["ID number"]),
    (["member", "add", "--name", "李四", "--id-number", "-"], make_id_number()[:-1] + "0\n",
     ["id_number", "check"]),
])
def test_bad_input_on_stdin_is_refused_clearly_and_writes_nothing(
        branch: Path, args: list[str], stdin: str, needles: list[str]) -> None:
    assert liudong("member", "add", "--name", "张三", store=branch).returncode == 0
    before = state_of(branch)
    for lang in ("zh", "en"):
        assert_clean_error(liudong(*args, store=branch, lang=lang, stdin=stdin), *needles)
    assert state_of(branch) == before


def test_a_literal_value_still_works_for_scripts(branch: Path) -> None:
    r = liudong("member", "add", "--name", "张三", "--id-number", NUMBER, store=branch)
    assert r.returncode == 0, r.stderr
    assert stored_members(branch)["张三"]["id_number"] == NUMBER


def test_json_output_masks_the_id_number_as_the_screen_does(branch: Path) -> None:
    """Every --json that prints a member shows the number as `member show` does on screen;
    --reveal prints it in full. Nothing else in the output changes."""
    r = liudong("member", "add", "--name", "张三", "--id-number", NUMBER, "--json", store=branch)
    assert json.loads(r.stdout)["id_number"] == SHOWN
    screen = liudong("member", "show", "张三", store=branch).stdout
    assert SHOWN in screen and NUMBER not in screen
    outputs = {
        "add": liudong("member", "add", "--name", "李四", "--id-number", "-", "--json",
                       store=branch, stdin=make_id_number(seq=125) + "\n"),
        "edit": liudong("member", "edit", "张三", "--phone", "13800138000", "--json",
                        store=branch),
        "show": liudong("member", "show", "张三", "--json", store=branch),
        "list": liudong("member", "list", "--json", store=branch),
        "search": liudong("member", "list", "--search", NUMBER[-4:], "--json", store=branch),
        "flow in": liudong("flow", "in", "--name", "王芳", "--id-number", "-",
                           "--external-home-org", "某村党支部", "--left-on", "2026-03-01",
                           "--reason", "work", "--json", store=branch,
                           stdin=make_id_number("411522", "19900101", 321) + "\n"),
    }
    full = [NUMBER, make_id_number(seq=125), make_id_number("411522", "19900101", 321)]
    for what, result in outputs.items():
        assert result.returncode == 0, (what, result.stderr)
        assert not any(n in result.stdout for n in full), what
        assert "*" * 10 in result.stdout, what
    assert json.loads(outputs["show"].stdout)["member"]["id_number"] == SHOWN
    listed = json.loads(outputs["list"].stdout)
    assert {m["name"]: m["id_number"] for m in listed}["张三"] == SHOWN
    # the shape is unchanged: the same keys as with --reveal, only the number differs
    revealed = {
        "edit": liudong("member", "edit", "张三", "--phone", "13800138000", "--json", "--reveal",
                        store=branch),
        "show": liudong("member", "show", "张三", "--json", "--reveal", store=branch),
        "list": liudong("member", "list", "--json", "--reveal", store=branch),
    }
    assert json.loads(revealed["edit"].stdout)["id_number"] == NUMBER
    assert json.loads(revealed["show"].stdout)["member"]["id_number"] == NUMBER
    assert {m["name"]: m["id_number"] for m in json.loads(revealed["list"].stdout)} == {
        "张三": NUMBER, "李四": make_id_number(seq=125),
        "王芳": make_id_number("411522", "19900101", 321)}
    masked_show = json.loads(outputs["show"].stdout)
    revealed_show = json.loads(revealed["show"].stdout)
    revealed_show["member"]["id_number"] = SHOWN
    assert masked_show == revealed_show
    r = liudong("member", "add", "--name", "赵六", "--id-number", "-", "--json", "--reveal",
                store=branch, stdin=make_id_number(seq=126) + "\n")
    assert json.loads(r.stdout)["id_number"] == make_id_number(seq=126)


def test_the_enrollment_code_from_stdin_or_a_prompt(tmp_path: Path) -> None:
    """`liudong enroll --code -` (or no --code) reads the code from stdin: it never shows in
    argv. Against a real `liudong serve`."""
    from tests.e2e.conftest import Server
    from tests.e2e.test_county import as_json, laptop, run

    server = Server(f"sqlite:///{tmp_path / 'county.db'}", tmp_path)
    try:
        db = server.db_url
        run("admin", "org", "add", "--name", "光山县委", "--kind", "county", db=db)
        run("admin", "org", "add", "--name", "城关村党支部", "--kind", "branch", "--parent",
            "光山县委", db=db)
        for name, form in (("a", ["--code", "-"]), ("b", ["--code"]), ("c", [])):
            code = as_json(run("admin", "enroll-code", "--org", "城关村", "--server-url",
                               server.url, "--json", db=db))["code"]
            args = ["enroll", *form]
            assert code not in " ".join(args)
            r = subprocess.run([*command(), *args], input=code + "\n", capture_output=True,
                               text=True, env=environ(laptop(tmp_path, name)), cwd=ROOT,
                               timeout=180)
            assert r.returncode == 0, r.stderr
            assert "Enrolled" in r.stdout, r.stdout
        # nothing on stdin: one clear line, and the laptop stays unenrolled
        store = laptop(tmp_path, "d")
        r = subprocess.run([*command(), "enroll", "--code", "-"], input="", capture_output=True,
                           text=True, env=environ(store), cwd=ROOT, timeout=180)
        assert_clean_error(r, "enrollment code", "登记码")
        with Store.open(store, PASSPHRASE) as s:
            assert not s.meta.get("server_url")
    finally:
        server.stop()
