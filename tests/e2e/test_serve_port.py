"""`liudong serve` on a port another program holds: one bilingual line naming the address and
the reason, exit code 12 ("cannot listen on that address"), at once and without a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import command

CANNOT_LISTEN = 12


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_port_in_use_is_named_and_exits_12(tmp_path: Path, lang: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
        env["LIUDONG_LANG"] = lang
        started = time.monotonic()
        result = subprocess.run(
            [*command(), "serve", "--db", str(tmp_path / "county.db"), "--port", str(port)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
            stdin=subprocess.DEVNULL)
        took = time.monotonic() - started
    assert result.returncode == CANNOT_LISTEN, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "the port is in use" in lines[0] and "端口已被占用" in lines[0]
    assert lines[0].startswith("error: " if lang == "en" else "错误：")
    # nothing announced as started, and the database was never opened
    assert result.stdout == ""
    assert not (tmp_path / "county.db").exists()
    assert took < 20, took
