"""Encrypted county backups (DESIGN §3.5): the container ``liudong admin backup`` writes.

The database's tables go out as JSON lines, gzipped, then sealed in chunks; nothing readable
reaches the disk. A backup is made either to a passphrase (Argon2id, scrypt where OpenSSL lacks
it, parameters in the header) or to a recipient's X25519 public key, so the county's machine can
make backups holding only the public key while the private key stays offline.

    prefix    magic "LDCBAK\\0\\1" ‖ version u16 ‖ header length u32
    header    canonical JSON: format, version, time, schema version, chunk size, and how the
              file key is made (KDF parameters and salt, or the ephemeral X25519 key and the
              recipient key's fingerprint)
    hmac      HMAC-SHA256(header key, prefix ‖ header): tells a wrong key from a damaged file
    chunks    length u32 ‖ nonce ‖ AES-256-GCM(payload key, piece,
                  AD = SHA-256(prefix ‖ header) ‖ index u64 ‖ last u8)
    checksum  SHA-256(everything above)

The checksum is checked first, before any key derivation, so a damaged file is reported as
damaged rather than as a wrong passphrase. Each chunk's associated data binds the header, its
place and whether it is the last, so chunks cannot be reordered, dropped or cut off at the end
(as store/sealed.py does for snapshots). The file is written under a temporary name created
exclusively and without following links (0600), fsynced, read back, renamed into place and its
directory fsynced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from store import crypto
from store.errors import LiudongError, UnsafeParameters
from store.fsutil import fsync_dir, fsync_fd, open_regular

from .backup_keys import (
    NEW_FILE,
    BackupKeyError,
    BackupTargetError,
    fingerprint,
    public_of,
    write_all,
)

FORMAT = "liudong-county-backup"
VERSION = 1
MAGIC = b"LDCBAK\x00\x01"
PREFIX = struct.Struct(">8sHI")  # magic, version, header length
CHUNK_LEN = struct.Struct(">I")
MAC_LEN = SUM_LEN = 32
NONCE = crypto.NONCE_LEN
CHUNK_SIZE = 1 << 20
MAX_CHUNK = 16 << 20
MAX_HEADER = 64 * 1024
MAX_LINE = 64 << 20  # one row of one table, as JSON
READ = 1 << 20
MIN_PASSPHRASE = 8

# Fixed, strong: about a second on a small server. Restoring runs what the header says, within
# the bounds store/crypto.py checks before running anything.
ARGON2_BACKUP = crypto.KdfParams("argon2id", memory_kib=128 << 10, iterations=3, lanes=4)
SCRYPT_BACKUP = crypto.KdfParams("scrypt", log_n=17, r=8, p=1)

_X25519_INFO = b"liudong/county-backup/x25519/v1"
_HEADER_INFO = b"liudong/county-backup/header/v1"
_PAYLOAD_INFO = b"liudong/county-backup/payload/v1"


# -- errors --------------------------------------------------------------------------------------

class BadCountyBackup(LiudongError):
    """Damaged, truncated, altered, or not a county backup at all."""

    exit_code = 4

    def __init__(self, where: str, zh: str, en: str) -> None:
        super().__init__(f"县级备份无法使用：{where} {zh}（请换用另一份备份）",
                         f"unusable county backup: {where} {en} (use another copy)")


class WrongBackupKey(LiudongError):
    """The passphrase or the private key does not open this backup."""

    exit_code = 3


# -- keys ----------------------------------------------------------------------------------------

def default_kdf() -> crypto.KdfParams:
    return ARGON2_BACKUP if crypto.argon2_available() else SCRYPT_BACKUP


# -- sealing -------------------------------------------------------------------------------------

def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _keys(file_key: bytes) -> tuple[bytes, bytes]:
    """(header MAC key, payload key)."""
    return crypto.hkdf(file_key, _HEADER_INFO), crypto.hkdf(file_key, _PAYLOAD_INFO)


def _x25519_file_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return crypto.hkdf(shared, _X25519_INFO, salt=ephemeral + recipient)


def to_passphrase(passphrase: str,
                  kdf: crypto.KdfParams | None = None) -> tuple[dict[str, Any], bytes]:
    """(the header's key part, the file key) for a backup to a passphrase."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupKeyError(f"备份口令至少要 {MIN_PASSPHRASE} 个字符",
                             f"a backup passphrase needs at least {MIN_PASSPHRASE} characters")
    params = kdf or default_kdf()
    salt = os.urandom(32)
    key = crypto.derive_key(crypto.normalize_passphrase(passphrase), salt, params)
    return {"type": "passphrase", "kdf": params.to_json(), "salt": crypto.b64(salt)}, key


def to_recipient(public: bytes) -> tuple[dict[str, Any], bytes]:
    """(the header's key part, the file key) for a backup to an X25519 public key."""
    ephemeral = X25519PrivateKey.generate()
    eph_public = public_of(ephemeral)
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        raise BackupKeyError("公钥无效", "the public key is not valid") from None
    return ({"type": "x25519", "ephemeral": crypto.b64(eph_public),
             "recipient": fingerprint(public)},
            _x25519_file_key(shared, eph_public, public))


class BackupWriter:
    """Plaintext in (``write``), a sealed backup out (``commit``); ``abort`` leaves nothing."""

    def __init__(self, out: str | os.PathLike[str], key_part: dict[str, Any], file_key: bytes,
                 schema_version: int, chunk_size: int | None = None) -> None:
        self.out = Path(out)
        check_out(self.out)
        self.chunk_size = chunk_size = chunk_size or CHUNK_SIZE
        self.header = {"format": FORMAT, "version": VERSION, "chunk_size": chunk_size,
                       "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "schema_version": schema_version, "compression": "gzip",
                       "cipher": "aes-256-gcm", "key": key_part}
        raw = canonical(self.header)
        prefix = PREFIX.pack(MAGIC, VERSION, len(raw)) + raw
        mac_key, self._key = _keys(file_key)
        self._digest = hashlib.sha256(prefix).digest()
        self._sum = hashlib.sha256()
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip
        self._pending = bytearray()
        self._index = 0
        self.size = 0
        self.tmp = self.out.with_name(f".{self.out.name}.{os.urandom(6).hex()}.tmp")
        self._fd = os.open(self.tmp, os.O_RDWR | NEW_FILE, 0o600)
        try:
            self._emit(prefix + crypto.mac(mac_key, prefix))
        except BaseException:
            self.abort()
            raise

    def write(self, data: bytes) -> None:
        self._pending += self._zip.compress(data)
        # Hold back a full chunk: the last one must be known to be last when it is sealed.
        while len(self._pending) > self.chunk_size:
            self._seal(bytes(self._pending[:self.chunk_size]), last=False)
            del self._pending[:self.chunk_size]

    def _seal(self, piece: bytes, last: bool) -> None:
        nonce, sealed = crypto.seal(self._key, piece,
                                    self._digest + struct.pack(">QB", self._index, last))
        self._emit(CHUNK_LEN.pack(len(sealed)) + nonce + sealed)
        self._index += 1

    def _emit(self, data: bytes) -> None:
        self._sum.update(data)
        write_all(self._fd, data)
        self.size += len(data)

    def commit(self) -> dict[str, Any]:
        try:
            self._pending += self._zip.flush()
            while len(self._pending) > self.chunk_size:
                self._seal(bytes(self._pending[:self.chunk_size]), last=False)
                del self._pending[:self.chunk_size]
            self._seal(bytes(self._pending), last=True)
            self._pending.clear()
            checksum = self._sum.digest()
            write_all(self._fd, checksum)
            self.size += len(checksum)
            fsync_fd(self._fd)
            # What is written must read back: checksum, header, every chunk.
            sealed = SealedBackup(self._fd, str(self.tmp), own_fd=False)
            for _ in sealed.chunks(self._key):
                pass
            os.close(self._fd)
            self._fd = -1
            os.replace(self.tmp, self.out)
        except BaseException:
            self.abort()
            raise
        fsync_dir(self.out.parent)
        return {"path": str(self.out), "size": self.size, "chunks": self._index,
                "created_at": self.header["created_at"], "key": self.header["key"]["type"]}

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.tmp.unlink(missing_ok=True)


def check_out(out: Path) -> None:
    if out.is_dir():
        raise BackupTargetError(f"备份位置是一个目录：{out}（请给出文件名）",
                                f"the backup location is a directory: {out} (give a file name)")
    if not out.parent.is_dir():
        raise BackupTargetError(f"找不到目录：{out.parent}", f"no such directory: {out.parent}")
    if out.exists() or out.is_symlink():
        head = b""
        if out.is_file() and not out.is_symlink():
            try:
                with open(out, "rb") as fh:
                    head = fh.read(len(MAGIC))
            except OSError:
                pass
        if head != MAGIC:
            raise BackupTargetError(f"{out} 已存在且不是加密的县级备份，不予覆盖",
                                    f"{out} exists and is not an encrypted county backup: not "
                                    "overwriting it")


# -- opening -------------------------------------------------------------------------------------

class SealedBackup:
    """A backup file whose checksum and header hold; the key is checked by ``unlock``."""

    def __init__(self, fd: int, where: str, own_fd: bool = True) -> None:
        self.fd, self.where, self._own = fd, where, own_fd
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    def _bad(self, zh: str, en: str) -> BadCountyBackup:
        return BadCountyBackup(self.where, zh, en)

    def _parse(self) -> None:
        size = os.fstat(self.fd).st_size
        head = os.pread(self.fd, PREFIX.size, 0)
        if not head:
            raise self._bad("是空文件", "is empty")
        if head[:2] == b"\x1f\x8b":
            raise self._bad("是旧版本写出的未加密备份，本版本不再读取（请用旧版本恢复后重新备份，并销毁该文件）",
                            "is an unencrypted backup of an older version, no longer read (restore "
                            "it with that version, back up again, and destroy the file)")
        if head[:len(MAGIC)] != MAGIC and not MAGIC.startswith(head):
            raise self._bad("不是流动县级备份文件", "is not a Liudong county backup")
        if len(head) < PREFIX.size or size < PREFIX.size + MAC_LEN + SUM_LEN:
            raise self._bad("不完整（被截断）", "is truncated")
        digest, offset = hashlib.sha256(), 0
        while offset < size - SUM_LEN:
            block = os.pread(self.fd, min(READ, size - SUM_LEN - offset), offset)
            if not block:
                raise self._bad("在读取时变短了", "got shorter while being read")
            digest.update(block)
            offset += len(block)
        if digest.digest() != os.pread(self.fd, SUM_LEN, size - SUM_LEN):
            raise self._bad("已损坏或不完整（校验和不符）", "is damaged or truncated (fails its checksum)")
        _, version, header_len = PREFIX.unpack(head)
        if version != VERSION:
            raise self._bad(f"版本不受支持：{version}", f"has unsupported version {version}")
        end = PREFIX.size + header_len
        if header_len > MAX_HEADER or end + MAC_LEN > size - SUM_LEN:
            raise self._bad("文件头长度异常", "has a bad header length")
        raw = os.pread(self.fd, header_len, PREFIX.size)
        try:
            header = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._bad("文件头无法解析", "has an unreadable header") from None
        if not _header_ok(header) or canonical(header) != raw:
            raise self._bad("文件头结构有误", "has a malformed header")
        self.header: dict[str, Any] = header
        self._digest = hashlib.sha256(head + raw).digest()
        self._signed = head + raw
        self._mac = os.pread(self.fd, MAC_LEN, end)
        self._start, self._end = end + MAC_LEN, size - SUM_LEN
        if self._start >= self._end:
            raise self._bad("不完整（没有数据块）", "is truncated (holds no chunk)")

    @property
    def key_type(self) -> str:
        return str(self.header["key"]["type"])

    @property
    def recipient(self) -> str | None:
        return self.header["key"].get("recipient")

    @property
    def schema_version(self) -> int:
        return int(self.header["schema_version"])

    @property
    def created_at(self) -> str:
        return str(self.header["created_at"])

    def unlock(self, passphrase: str | None = None, identity: bytes | None = None) -> bytes:
        """The payload key, once the header's MAC shows the key is the right one."""
        part = self.header["key"]
        if part["type"] == "passphrase":
            if identity is not None or passphrase is None:
                raise BackupKeyError("这份备份是用口令加密的：请给出备份口令（而不是私钥）",
                                     "this backup was made with a passphrase: give the backup "
                                     "passphrase (not a private key)")
            try:
                params = crypto.KdfParams.from_json(part["kdf"])
            except UnsafeParameters:
                raise self._bad("文件头中的密钥参数超出安全范围", "has key parameters outside "
                                "safe bounds") from None
            file_key = crypto.derive_key(crypto.normalize_passphrase(passphrase),
                                         crypto.unb64(part["salt"]), params)
            wrong = WrongBackupKey("备份口令不正确（或文件头被改动过）",
                                   "wrong backup passphrase (or the header was altered)")
        else:
            if identity is None:
                raise BackupKeyError(
                    f"这份备份是用公钥 {part['recipient']} 加密的：请用 --identity 给出对应的私钥文件",
                    f"this backup was made to public key {part['recipient']}: give its private "
                    "key file with --identity")
            try:
                private = X25519PrivateKey.from_private_bytes(identity)
            except ValueError:
                raise BackupKeyError("私钥无效", "the private key is not valid") from None
            public = public_of(private)
            if fingerprint(public) != part["recipient"]:
                raise WrongBackupKey(
                    f"这份备份是用公钥 {part['recipient']} 加密的，给出的私钥属于 {fingerprint(public)}",
                    f"this backup was made to key {part['recipient']}; the private key given is "
                    f"{fingerprint(public)}'s")
            ephemeral = crypto.unb64(part["ephemeral"])
            try:
                shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            except ValueError:
                raise self._bad("文件头中的临时公钥无效", "has an invalid ephemeral key") from None
            file_key = _x25519_file_key(shared, ephemeral, public)
            wrong = WrongBackupKey("私钥打不开这份备份（或文件头被改动过）",
                                   "the private key does not open this backup (or the header "
                                   "was altered)")
        mac_key, payload_key = _keys(file_key)
        if not hmac.compare_digest(crypto.mac(mac_key, self._signed), self._mac):
            raise wrong
        return payload_key

    def chunks(self, key: bytes) -> Iterator[bytes]:
        """Every chunk's plaintext (gzip), authenticated, in order; raises on the first that
        fails."""
        limit = int(self.header["chunk_size"]) + crypto.TAG_LEN
        offset, index, last = self._start, 0, False
        while not last:
            if offset + CHUNK_LEN.size + NONCE > self._end:
                raise self._bad(f"在第 {index} 块处被截断", f"is truncated at chunk {index}")
            (length,) = CHUNK_LEN.unpack(os.pread(self.fd, CHUNK_LEN.size, offset))
            if not crypto.TAG_LEN <= length <= limit:
                raise self._bad(f"第 {index} 块长度异常", f"has a bad length at chunk {index}")
            body = offset + CHUNK_LEN.size
            if body + NONCE + length > self._end:
                raise self._bad(f"在第 {index} 块处被截断", f"is truncated at chunk {index}")
            nonce = os.pread(self.fd, NONCE, body)
            sealed = os.pread(self.fd, length, body + NONCE)
            offset = body + NONCE + length
            last = offset == self._end
            plain = crypto.open_sealed(key, nonce, sealed,
                                       self._digest + struct.pack(">QB", index, last))
            if plain is None:
                raise self._bad(f"第 {index} 块校验失败（被改动、截断或拼接）",
                                f"fails authentication at chunk {index} (altered, truncated or "
                                "spliced)")
            yield plain
            index += 1

    def lines(self, key: bytes) -> Iterator[bytes]:
        """The plaintext, one JSON line at a time, inflated in bounded steps."""
        unzip = zlib.decompressobj(31)
        rest = b""
        for chunk in self.chunks(key):
            data = chunk
            while data:
                try:
                    out = unzip.decompress(data, READ)
                except zlib.error:
                    raise self._bad("内容无法解压", "cannot be decompressed") from None
                data = unzip.unconsumed_tail
                rest += out
                *complete, rest = rest.split(b"\n")
                yield from complete
                if len(rest) > MAX_LINE:
                    raise self._bad("内容有一行过长", "holds an overlong line")
                if unzip.eof and (data or unzip.unused_data):
                    raise self._bad("压缩数据之后还有多余内容", "has data after its end")
        if not unzip.eof:
            raise self._bad("压缩数据不完整", "ends inside its compressed data")
        if rest:
            yield rest

    def close(self) -> None:
        if self._own and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> SealedBackup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _header_ok(header: Any) -> bool:
    keys = {"format", "version", "chunk_size", "created_at", "schema_version", "compression",
            "cipher", "key"}
    if not isinstance(header, dict) or set(header) != keys:
        return False
    if header["format"] != FORMAT or header["version"] != VERSION or \
            header["compression"] != "gzip" or header["cipher"] != "aes-256-gcm":
        return False
    for name in ("chunk_size", "schema_version"):
        if not isinstance(header[name], int) or isinstance(header[name], bool):
            return False
    if not 0 < header["chunk_size"] <= MAX_CHUNK or header["schema_version"] < 1:
        return False
    if not isinstance(header["created_at"], str) or len(header["created_at"]) > 64:
        return False
    part = header["key"]
    if not isinstance(part, dict):
        return False
    try:
        if part.get("type") == "passphrase" and set(part) == {"type", "kdf", "salt"}:
            return len(crypto.unb64(part["salt"])) == 32 and isinstance(part["kdf"], dict)
        if part.get("type") == "x25519" and set(part) == {"type", "ephemeral", "recipient"}:
            recipient = part["recipient"]
            return len(crypto.unb64(part["ephemeral"])) == 32 and isinstance(recipient, str) \
                and len(recipient) == 16 and not recipient.strip("0123456789abcdef")
    except (ValueError, UnicodeEncodeError):
        return False
    return False


def open_backup(path: str | os.PathLike[str]) -> SealedBackup:
    """Open a backup file and check its structure and checksum (no key needed)."""
    where = str(path)
    fd, _ = open_regular(path, lambda zh, en: BadCountyBackup(where, zh, en))
    return SealedBackup(fd, where)
