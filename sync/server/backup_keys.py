"""Key pairs for county backups (DESIGN §3.5): ``liudong admin backup-key`` makes one, the
county's machine keeps only the public half (``PREFIX.pub``, for ``admin backup --recipient``),
and the private half (``PREFIX.key``) goes to offline media for ``admin restore --identity``.

Each file is one line of text, ``LDPUB1-``/``LDKEY1-`` and the raw X25519 key in base64url,
with comments saying what it is; a file of the other kind is named as such when given.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from store.errors import LiudongError
from store.fsutil import fsync_dir, fsync_fd

PUBLIC_TAG, PRIVATE_TAG = "LDPUB1-", "LDKEY1-"

# Every file a backup or a key is written to: never an existing file, never through a symlink.
NEW_FILE = (os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
            | getattr(os, "O_BINARY", 0))


class BackupKeyError(LiudongError):
    """A key file that cannot be used, or a backup that asks for the other kind of key."""

    exit_code = 2


class BackupTargetError(LiudongError):
    """Where a backup or a key may not be written."""

    exit_code = 2


def fingerprint(public: bytes) -> str:
    """A short name of a recipient key, written in the header and printed beside the key."""
    return hashlib.sha256(b"liudong county backup key" + public).hexdigest()[:16]


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_pair() -> tuple[bytes, bytes]:
    """(private, public), raw X25519."""
    key = X25519PrivateKey.generate()
    return (key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption()),
            public_of(key))


def public_of(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def public_key_text(public: bytes) -> str:
    return (f"# 流动县级备份公钥（可以放在服务器上）| Liudong county backup public key (may stay "
            f"on the server)\n# fingerprint {fingerprint(public)}\n"
            f"{PUBLIC_TAG}{_b64u(public)}\n")


def private_key_text(private: bytes) -> str:
    public = public_of(X25519PrivateKey.from_private_bytes(private))
    return (f"# 流动县级备份私钥：离线保管，不要留在服务器上；丢失则备份无法恢复 | Liudong county "
            f"backup PRIVATE key: keep it offline, not on the server; without it the backups "
            f"cannot be restored\n# fingerprint {fingerprint(public)}\n"
            f"# public {PUBLIC_TAG}{_b64u(public)}\n{PRIVATE_TAG}{_b64u(private)}\n")


def _key_line(path: Path, tag: str, other: str, zh: str, en: str) -> bytes:
    where = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise BackupKeyError(f"找不到{zh}文件：{where}", f"no {en} file at {where}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BackupKeyError(f"{zh}文件不是普通文件：{where}", f"the {en} file is not a regular "
                                 f"file: {where}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(4096)
    finally:
        os.close(fd)
    try:
        lines = [s.strip() for s in raw.decode("utf-8").splitlines()]
    except UnicodeDecodeError:
        lines = []
    found = [s for s in lines if s and not s.startswith("#")]
    if len(found) == 1 and found[0].startswith(other):
        if other == PRIVATE_TAG:
            raise BackupKeyError(f"{where} 是私钥：服务器上只应放公钥（私钥离线保管）",
                                 f"{where} is the private key: only the public key belongs on "
                                 "the server (keep the private key offline)")
        raise BackupKeyError(f"{where} 是公钥：恢复需要对应的私钥",
                             f"{where} is the public key: restoring needs its private key")
    try:
        if len(found) != 1 or not found[0].startswith(tag):
            raise ValueError
        key = _unb64u(found[0][len(tag):])
        if len(key) != 32:
            raise ValueError
    except ValueError:
        raise BackupKeyError(f"{where} 不是流动县级备份{zh}文件",
                             f"{where} is not a Liudong county backup {en} file") from None
    return key


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    return _key_line(Path(path), PUBLIC_TAG, PRIVATE_TAG, "公钥", "public key")


def load_private_key(path: str | os.PathLike[str]) -> bytes:
    return _key_line(Path(path), PRIVATE_TAG, PUBLIC_TAG, "私钥", "private key")


def write_key_pair(prefix: str | os.PathLike[str]) -> dict[str, str]:
    """``PREFIX.pub`` and ``PREFIX.key`` (owner-only); existing files are never replaced."""
    base = Path(prefix)
    public_path = base.with_name(base.name + ".pub")
    private_path = base.with_name(base.name + ".key")
    if not base.parent.is_dir():
        raise BackupTargetError(f"找不到目录：{base.parent}", f"no such directory: {base.parent}")
    for path in (public_path, private_path):
        if path.exists() or path.is_symlink():
            raise BackupTargetError(f"{path} 已存在，不予覆盖（覆盖密钥会使已有的备份无法恢复）",
                                    f"{path} exists: not overwriting it (replacing a key would "
                                    "make the backups made to it unrestorable)")
    private, public = new_key_pair()
    written: list[Path] = []
    try:
        for path, text, mode in ((private_path, private_key_text(private), 0o600),
                                 (public_path, public_key_text(public), 0o644)):
            fd = os.open(path, os.O_WRONLY | NEW_FILE, mode)
            written.append(path)
            try:
                os.fchmod(fd, mode)  # the umask may only have narrowed it; make it exact
                write_all(fd, text.encode())
                fsync_fd(fd)
            finally:
                os.close(fd)
        fsync_dir(private_path.parent)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return {"public": str(public_path), "private": str(private_path),
            "fingerprint": fingerprint(public)}


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
