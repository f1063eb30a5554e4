"""A real county server: `liudong serve` started as its own process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sync.harness import database

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).with_name("liudong")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command() -> list[str]:
    return [str(BIN)] if BIN.exists() else [sys.executable, "-m", "tui.cli"]


class Server:
    def __init__(self, db_url: str, workdir: Path, tls: tuple[Path, Path] | None = None,
                 port: int | None = None, insecure: bool = False) -> None:
        """As an admin starts it: TLS with the certificate the server makes for itself, or the
        one given (``tls``); plain HTTP only when asked (``insecure``)."""
        self.db_url, self.port = db_url, port or free_port()
        self.scheme = "http" if insecure else "https"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        args = [*command(), "serve", "--db", db_url, "--port", str(self.port)]
        if tls:
            args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if insecure:
            args.append("--insecure-http")
        self.log = (workdir / f"serve-{self.port}.log").open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/v1/health", verify=False, timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"liudong serve did not start: {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    s = Server(db_url, tmp_path)
    yield s
    s.stop()
