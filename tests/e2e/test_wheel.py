"""The wheel, installed as users install it: built from a copy of the source tree, installed
non-editable into a fresh virtual environment with the tested versions (constraints.txt), and
run from that environment's `liudong`, away from the source tree, through the county journey:
serve, admin, init, enroll, member add, sync, doctor."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSPHRASE
from tests.e2e.conftest import ROOT, free_port

pytestmark = pytest.mark.slow

SCRIPTS = "Scripts" if os.name == "nt" else "bin"
# Left out of the copy the wheel is built from: the environments, the history, caches and
# build leftovers (the wheel holds store/, sync/ and tui/ only).
SKIP_AT_ROOT = {".git", ".venv", "build", "dist", "tests", "bench"}
SKIP_ANYWHERE = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis"}


def source_version() -> str:
    found = re.search(r'^__version__ = "([^"]+)"', (ROOT / "store" / "__init__.py").read_text(),
                      re.MULTILINE)
    assert found, "store/__init__.py has no __version__"
    return found.group(1)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without PYTHONPATH, the project's virtual environment and
    any LIUDONG_ setting; then ``extra``."""
    project_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("LIUDONG_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p != project_bin)
    env.update(extra)
    return env


def checked(args: list[str | Path], *, env: dict[str, str], cwd: Path,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                            cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, (args, result.stderr)
    return result


def build_wheel(tmp: Path) -> Path:
    """``pip wheel`` on a copy of the tree, so the source tree gets no build/ or egg-info."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        at_root = Path(directory) == ROOT
        return {n for n in names
                if n in SKIP_ANYWHERE or n.endswith((".pyc", ".egg-info"))
                or (at_root and (n in SKIP_AT_ROOT or n.startswith("demo-store")))}

    source, dist = tmp / "source", tmp / "dist"
    shutil.copytree(ROOT, source, ignore=ignore)
    checked([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source],
            env=clean_env(), cwd=tmp, timeout=300)
    wheels = list(dist.glob("liudong-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def install(wheel: Path, venv: Path) -> Path:
    checked([sys.executable, "-m", "venv", venv], env=clean_env(), cwd=venv.parent, timeout=300)
    python = venv / SCRIPTS / "python"
    checked([python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", wheel],
            env=clean_env(), cwd=venv.parent, timeout=600)
    return python


@contextmanager
def serving(liudong: Path, db: Path, work: Path, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    url = f"https://127.0.0.1:{port}"  # serve speaks TLS by default
    log_path = work / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([str(liudong), "serve", "--db", str(db), "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work,
                                   stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/v1/health", timeout=1, verify=False).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert process.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.1)
            yield url
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


def test_the_installed_wheel_runs_the_county_journey(tmp_path: Path) -> None:
    version = source_version()
    wheel = build_wheel(tmp_path / "build")
    assert wheel.name == f"liudong-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"store/FORMAT.md", "sync/server/app.py", "tui/cli.py"} <= names, sorted(names)

    venv = tmp_path / "venv"
    python = install(wheel, venv)
    liudong = venv / SCRIPTS / "liudong"
    work = tmp_path / "work"  # the current directory for every command: outside the source tree
    work.mkdir()
    home = tmp_path / "home"  # so nothing falls back to the real user's data directory
    home.mkdir()
    env = clean_env(HOME=str(home))
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)

    # the code that runs is the installed copy, not the source tree
    where = checked([python, "-c", "import sysconfig, store, sync.server.app, tui.cli\n"
                     "print(sysconfig.get_paths()['purelib'])\n"
                     "for m in (store, sync.server.app, tui.cli): print(m.__file__)"],
                    env=env, cwd=work).stdout.splitlines()
    site = Path(where[0]).resolve()
    assert site.is_relative_to(venv.resolve()), where
    for module_file in where[1:]:
        assert Path(module_file).resolve().is_relative_to(site), where
        assert not Path(module_file).resolve().is_relative_to(ROOT), where

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return checked([liudong, *args], env={**env, **extra}, cwd=work)

    def as_json(result: subprocess.CompletedProcess[str]) -> Any:
        return json.loads(result.stdout)

    assert run("--version").stdout.strip() == f"liudong {version}"

    db = tmp_path / "county.db"
    laptop = {"LIUDONG_PASSPHRASE": PASSPHRASE, "LIUDONG_STORE": str(tmp_path / "laptop")}
    with serving(liudong, db, work, env) as url:
        health = httpx.get(f"{url}/v1/health", timeout=5, verify=False).json()
        assert health["version"] == version
        run("admin", "--db", str(db), "org", "add", "--name", "光山县委", "--kind", "county")
        run("admin", "--db", str(db), "org", "add", "--name", "城关村党支部", "--kind", "branch",
            "--parent", "光山县委")
        code = as_json(run("admin", "--db", str(db), "enroll-code", "--org", "城关村党支部",
                           "--server-url", url, "--json"))["code"]
        run("init", "--org", "城关村党支部", **laptop)
        run("enroll", "--code", code, **laptop)
        run("member", "add", "--name", "张三", "--phone", "13800138000", **laptop)
        run("sync", **laptop)
        run("doctor", **laptop)
        stats = {r["name"]: r for r in as_json(run("admin", "--db", str(db), "stats", "--json"))}
    assert stats["城关村党支部"]["members"] == 1, stats
    assert stats["光山县委"]["members"] == 1 and stats["光山县委"]["devices"] == 1, stats

    # the interface from the installed wheel, in a real terminal: its stylesheet and Textual
    # came with the install
    from tests.e2e.terminal import Terminal

    term = Terminal([str(liudong), "--store", laptop["LIUDONG_STORE"]],
                    {**env, "LIUDONG_PASSPHRASE": PASSPHRASE}, work)
    try:
        term.wait_for("城关村党支部", timeout=60)
        term.wait_for("1待办")
        term.press("2")
        term.wait_for("张三")
        term.press("ctrl+q")
        assert term.wait_exit() == 0
    finally:
        term.kill()
    assert b"Traceback" not in term.raw
