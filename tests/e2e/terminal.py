"""A real terminal for end-to-end tests of the interface: the command runs in a pseudo-terminal
of a fixed size, and what it draws goes through a VT emulator (pyte), so tests read the screen
as a person would see it and type keys as a person would."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Sequence

import pyte

KEYS = {
    "enter": "\r", "tab": "\t", "escape": "\x1b", "backspace": "\x7f", "up": "\x1b[A",
    "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D", "ctrl+q": "\x11", "ctrl+s": "\x13",
    "ctrl+p": "\x10", "ctrl+c": "\x03", "f1": "\x1bOP", "f5": "\x1b[15~",
}


def _controlling_terminal() -> None:
    """In the child, after setsid: the pseudo-terminal becomes its controlling terminal, so
    closing the window (the master side) hangs it up with SIGHUP, as a real terminal does."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str | os.PathLike[str],
                 cols: int = 80, rows: int = 24) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, cwd=cwd, close_fds=True,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)},
            start_new_session=True, preexec_fn=_controlling_terminal)
        os.close(slave)
        self.raw = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.raw += data
                self.stream.feed(data)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.screen.display)

    def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.text()
            if needle in shown.replace(" ", ""):
                return shown
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never showed; the screen:\n{shown}\n"
                                     f"exit: {self.process.poll()}")
            time.sleep(0.05)

    def press(self, *keys: str, pause: float = 0.15) -> None:
        for key in keys:
            os.write(self.master, KEYS.get(key, key).encode())
            time.sleep(pause)

    def type(self, text: str, pause: float = 0.05) -> None:
        for ch in text:
            os.write(self.master, ch.encode())
            time.sleep(pause)

    def kill(self) -> None:
        """SIGKILL, as when the terminal window is closed hard or the laptop loses power."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.close()

    def wait_exit(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout=timeout)
        time.sleep(0.1)
        self.close()
        return code

    def close(self) -> None:
        try:
            os.close(self.master)
        except OSError:
            pass
