"""Durable file operations: fsync that means it, atomic replace, in-place overwrite and
shredding, the directory lock."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import Locked

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def fsync_fd(fd: int, data_only: bool = False) -> None:
    """Flush to stable storage. macOS needs F_FULLFSYNC; fsync there only reaches the drive's
    cache. ``data_only`` uses fdatasync where it exists (enough after an append: the size is
    metadata that fdatasync does flush)."""
    if sys.platform == "darwin" and fcntl is not None and hasattr(fcntl, "F_FULLFSYNC"):
        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
    elif data_only and hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def fsync_dir(path: Path) -> None:
    """A rename or a new file is durable only once its directory is flushed."""
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a whole file so that after a crash it is either the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        fsync_fd(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``os.pwrite`` may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


SHRED_CHUNK = 1 << 20


def shred(path: Path, random: bool = False, follow: bool = False) -> bool:
    """Overwrite a file in place (zeros, or random bytes), flush it to the disk, then unlink it.

    Unlinking alone leaves the file's blocks on the disk, where whoever reads the raw device
    finds them. The overwrite must reach the disk *before* the unlink: dirty pages of an
    unlinked file are dropped, not written. (On a filesystem that writes elsewhere — btrfs,
    ZFS, a log-structured flash translation layer — an overwrite in place cannot reach the old
    blocks; FORMAT.md says so.) A symlink is only unlinked, unless ``follow``. Returns whether
    there was a file; the caller fsyncs the directory."""
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return False
    except OSError:  # a symlink (O_NOFOLLOW): nothing of ours to overwrite
        path.unlink(missing_ok=True)
        return True
    try:
        size = os.fstat(fd).st_size
        offset = 0
        zeros = bytes(min(size, SHRED_CHUNK))
        while offset < size:
            n = min(SHRED_CHUNK, size - offset)
            pwrite_all(fd, os.urandom(n) if random else zeros[:n], offset)
            offset += n
        if size:
            fsync_fd(fd, data_only=True)
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
    return True


def read_file(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


class DirLock:
    """One process at a time per store: an exclusive advisory lock on ``<store>/lock``.

    The lock dies with the process (kill -9 included), so a crash never leaves a stale lock.
    The holder's pid is written into the file for the "in use" message.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / "lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # pragma: no cover - Windows
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            holder = "?"
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise Locked(str(self.path.parent), f"pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def open_regular(path: str | os.PathLike[str],
                 bad: Callable[[str, str], Exception]) -> tuple[int, os.stat_result]:
    """A file to read that must be a regular file (a backup given on the command line): its
    descriptor and stat. Anything else raises ``bad(zh, en)``. O_NONBLOCK: a FIFO put in its
    place must not hang the caller."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise bad("不存在", "does not exist") from None
    except IsADirectoryError:
        raise bad("是一个目录", "is a directory") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise bad("是一个目录", "is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise bad("不是普通文件", "is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st
