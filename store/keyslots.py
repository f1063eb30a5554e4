"""The ``keyslots`` file: the random master key, wrapped once per passphrase and once for the
recovery key (restic's key files, Borg's key slots). Changing a passphrase rewrites this file only.

The key-slot document is JSON (it holds no personal data). Two seals protect it:
- ``checksum``: SHA-256 over the body. It tells a damaged file ("corrupted") from a wrong
  passphrase: without it a flipped bit in a slot would read as "wrong passphrase".
- ``mac``: HMAC under a key derived from the master key, checked once a slot opens. It detects
  deliberate edits (a slot added or swapped) that the plain checksum cannot.

The file has a fixed size and is **rewritten in place, never replaced** (FORMAT.md): a file
written anew and renamed over the old one leaves the old one's blocks on the disk, and a slot
carved from them opens the store with a passphrase (or recovery key) that was changed — or
after the keys were erased. Two halves of ``HALF`` bytes each hold a copy of the document,
with a generation counter; a rewrite writes the new document into one half, fsyncs, then into
the other, fsyncs. A crash at any moment leaves at least one whole half (the newest whole one
wins), and once both halves are written no byte of the superseded document is left in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import crypto
from .crypto import KdfParams
from .errors import Corrupted, WrongPassphrase
from .fsutil import fsync_dir, fsync_fd, pwrite_all, shred, write_atomic

FORMAT = "liudong-keyslots"
VERSION = 2  # a document in one half of the fixed-size file, with a generation
LEGACY_VERSION = 1  # the whole file one JSON document, replaced by rename (older stores)
MAX_SLOTS = 16
HALF = 4096  # one filesystem block, one page
FILE_SIZE = 2 * HALF
MAX_FILE = FILE_SIZE  # a legacy file is never larger than one half (it held two slots)
_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0)


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def key_id(master: bytes) -> bytes:
    return crypto.hkdf(master, b"liudong/key-id/v1", length=16)


def mac_key(master: bytes) -> bytes:
    return crypto.hkdf(master, b"liudong/keyslots-mac/v1")


@dataclass
class Slot:
    kind: str  # "passphrase" | "recovery"
    kdf: dict[str, Any]
    salt: bytes
    nonce: bytes
    wrapped: bytes

    def aad(self, store_id: str) -> bytes:
        # Binding the parameters stops a downgrade: weaker parameters fail the tag.
        return canonical({"store_id": store_id, "kind": self.kind, "kdf": self.kdf,
                          "salt": crypto.b64(self.salt)})

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "kdf": self.kdf, "salt": crypto.b64(self.salt),
                "nonce": crypto.b64(self.nonce), "wrapped": crypto.b64(self.wrapped)}


def _passphrase_kek(passphrase: str, slot_kdf: dict[str, Any], salt: bytes) -> bytes:
    params = KdfParams.from_json(slot_kdf)
    return crypto.derive_key(crypto.normalize_passphrase(passphrase), salt, params)


def _recovery_kek(secret: bytes, salt: bytes) -> bytes:
    return crypto.hkdf(secret, b"liudong/recovery-slot/v1", salt=salt)


def make_passphrase_slot(store_id: str, master: bytes, passphrase: str,
                         params: KdfParams) -> Slot:
    salt = os.urandom(16)
    slot = Slot("passphrase", params.to_json(), salt, b"", b"")
    kek = _passphrase_kek(passphrase, slot.kdf, salt)
    slot.nonce, slot.wrapped = crypto.seal(kek, master, slot.aad(store_id))
    return slot


def make_recovery_slot(store_id: str, master: bytes, secret: bytes) -> Slot:
    salt = os.urandom(16)
    slot = Slot("recovery", {"name": "hkdf-sha256"}, salt, b"", b"")
    slot.nonce, slot.wrapped = crypto.seal(_recovery_kek(secret, salt), master, slot.aad(store_id))
    return slot


@dataclass
class KeySlots:
    store_id: str
    key_id: bytes
    slots: list[Slot]
    generation: int = 0  # 0: read from a legacy file (no generation yet)
    # Set by ``parse``: the file is not two identical copies of this document (a legacy file,
    # a half a crash tore or left behind, a damaged half). ``Store.open`` rewrites it then.
    needs_rewrite: bool = field(default=False, compare=False)

    # -- file form -------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "generation": self.generation,
                "store_id": self.store_id, "key_id": self.key_id.hex(),
                "slots": [s.to_json() for s in self.slots]}

    def to_bytes(self, master: bytes) -> bytes:
        """The document of generation ``self.generation``: compact JSON and a newline."""
        data = self.body()
        data["mac"] = crypto.mac(mac_key(master), canonical(data)).hex()
        data["checksum"] = hashlib.sha256(canonical(data)).hexdigest()
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    def half(self, master: bytes) -> bytes:
        """One half of the file: the document, padded with zero bytes to ``HALF``."""
        doc = self.to_bytes(master)
        if len(doc) > HALF:
            raise ValueError(f"{len(self.slots)} key slots do not fit in {HALF} bytes")
        return doc + bytes(HALF - len(doc))

    def create(self, path: Path, master: bytes) -> None:
        """A new ``keyslots`` (``init``): both halves, generation 1, written beside and renamed
        into place, so a store exists only once the whole file does. There is no older file
        whose blocks the rename could leave behind."""
        self.generation = 1
        write_atomic(path, self.half(master) * 2)
        self.needs_rewrite = False

    def save(self, path: Path, master: bytes) -> None:
        """Rewrite the file in place with these slots, as the next generation.

        The half that does not hold the newest whole document is written first and fsynced,
        then the other; each write covers its whole half. A crash leaves the newest whole
        document in one half at least. A legacy file is first extended to the fixed size
        (its document then reads as half 0, generation 0), so it too is only overwritten."""
        fd = os.open(path, os.O_RDWR | _OPEN_FLAGS)
        try:
            size = os.fstat(fd).st_size
            if size > MAX_FILE:
                raise Corrupted(path.name, "文件过大", "is too large")
            raw = os.pread(fd, size, 0)
            if size != FILE_SIZE:
                if size > HALF:
                    raise Corrupted(path.name, "文件过大", "is too large")
                os.ftruncate(fd, FILE_SIZE)
                fsync_fd(fd)
                raw = raw.ljust(FILE_SIZE, b"\0")
            found = [_read_half(raw[i * HALF:(i + 1) * HALF], path.name) for i in (0, 1)]
            generations = [f[0].generation if isinstance(f, tuple) else -1 for f in found]
            current = 1 if generations[1] > generations[0] else 0
            self.generation = max(max(generations), self.generation) + 1
            half = self.half(master)
            for index in (1 - current, current):
                pwrite_all(fd, half, index * HALF)
                fsync_fd(fd, data_only=True)
        finally:
            os.close(fd)
        self.needs_rewrite = False

    @classmethod
    def load(cls, path: Path) -> tuple[KeySlots, dict[str, Any]]:
        """Read and check the checksum; returns the slots of the newest whole document and the
        document itself (for the MAC)."""
        where = path.name
        try:
            fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            raise Corrupted(where, "文件缺失", "is missing") from None
        try:
            raw = os.pread(fd, MAX_FILE + 1, 0)
        finally:
            os.close(fd)
        return cls.parse(raw, where)

    @classmethod
    def parse(cls, raw: bytes, where: str = "keyslots") -> tuple[KeySlots, dict[str, Any]]:
        if len(raw) > MAX_FILE:
            raise Corrupted(where, "文件过大", "is too large")
        if len(raw) != FILE_SIZE:
            # A legacy file: one JSON document, the whole file (it never holds a zero byte;
            # a fixed-size file cut short does).
            if b"\0" in raw or raw.startswith(b'{"checksum":'):
                raise Corrupted(where, "长度不对（被截断？）", "has the wrong length (truncated?)")
            slots, data = _parse_document(raw, where, (LEGACY_VERSION,))
            slots.needs_rewrite = True
            return slots, data
        found = [_read_half(raw[:HALF], where), _read_half(raw[HALF:], where)]
        whole = [f for f in found if isinstance(f, tuple)]
        if not whole:
            # Neither half is whole: report what is wrong with the first that holds anything.
            raise next((f for f in found if isinstance(f, Corrupted)),
                       Corrupted(where, "无法解析", "cannot be parsed"))
        slots, data = max(whole, key=lambda f: f[0].generation)  # first of equals: half 0
        slots.needs_rewrite = raw[:HALF] != raw[HALF:]
        return slots, data

    # -- unlocking -------------------------------------------------------------------------
    def unlock_passphrase(self, passphrase: str) -> tuple[bytes, int]:
        for index, slot in enumerate(self.slots):
            if slot.kind != "passphrase":
                continue
            kek = _passphrase_kek(passphrase, slot.kdf, slot.salt)
            master = crypto.open_sealed(kek, slot.nonce, slot.wrapped, slot.aad(self.store_id))
            if master is not None:
                return master, index
        raise WrongPassphrase()

    def unlock_recovery(self, secret: bytes) -> tuple[bytes, int]:
        for index, slot in enumerate(self.slots):
            if slot.kind != "recovery":
                continue
            master = crypto.open_sealed(_recovery_kek(secret, slot.salt), slot.nonce,
                                        slot.wrapped, slot.aad(self.store_id))
            if master is not None:
                return master, index
        raise WrongPassphrase("recovery")

    def verify(self, master: bytes, document: dict[str, Any]) -> None:
        """After a slot opened: the master key must match ``key_id`` and the MAC must hold."""
        if key_id(master) != self.key_id:
            raise Corrupted("keyslots", "主密钥标识不符", "key id does not match the master key")
        claimed = document.get("mac")
        body = {k: v for k, v in document.items() if k != "mac"}
        if claimed != crypto.mac(mac_key(master), canonical(body)).hex():
            raise Corrupted("keyslots", "完整性校验失败（被修改）", "fails its MAC (it was altered)")


def _read_half(half: bytes, where: str) -> tuple[KeySlots, dict[str, Any]] | Corrupted | None:
    """The document in one half: ``None`` when the half is empty (zeros), the error when it is
    not whole (a torn or damaged write). JSON never holds a raw zero byte, so the document ends
    at the first one, and every byte after it must be zero."""
    end = half.find(b"\0")
    if end < 0:
        end = len(half)
    if half[end:].count(0) != len(half) - end:
        return Corrupted(where, "内容有误", "has stray bytes after its document")
    if end == 0:
        return None
    try:
        return _parse_document(half[:end], where, (VERSION, LEGACY_VERSION))
    except Corrupted as exc:
        return exc


def _parse_document(raw: bytes, where: str,
                    versions: tuple[int, ...]) -> tuple[KeySlots, dict[str, Any]]:
    """Parse one document and check its checksum; returns the slots and the document without
    its checksum (for the MAC). A legacy document (version 1, as in the file before 0.4, or in
    half 0 of one being converted) reads as generation 0."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Corrupted(where, "无法解析", "cannot be parsed") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise Corrupted(where, "不是密钥文件", "is not a key-slot file")
    checksum = data.pop("checksum", None)
    if checksum != hashlib.sha256(canonical(data)).hexdigest():
        raise Corrupted(where, "校验和不符", "fails its checksum")
    version = data.get("version")
    if version not in versions or isinstance(version, bool):
        raise Corrupted(where, f"版本不受支持：{version}", f"has unsupported version {version}")
    generation = data.get("generation", 0) if version == VERSION else 0
    if version == VERSION and (not isinstance(generation, int) or isinstance(generation, bool)
                               or not 1 <= generation < 1 << 62):
        raise Corrupted(where, "结构有误", "is malformed")
    if version == LEGACY_VERSION and "generation" in data:
        raise Corrupted(where, "结构有误", "is malformed")
    try:
        slots = [
            Slot(s["kind"], s["kdf"], crypto.unb64(s["salt"]), crypto.unb64(s["nonce"]),
                 crypto.unb64(s["wrapped"]))
            for s in data["slots"]
        ]
        result = KeySlots(str(data["store_id"]), bytes.fromhex(data["key_id"]), slots,
                          generation)
    except (KeyError, TypeError, ValueError):
        raise Corrupted(where, "结构有误", "is malformed") from None
    if not 1 <= len(slots) <= MAX_SLOTS or any(
        s.kind not in ("passphrase", "recovery") or not isinstance(s.kdf, dict)
        for s in slots
    ):
        raise Corrupted(where, "密钥槽有误", "has malformed slots")
    return result, data


def erase(path: Path) -> None:
    """Crypto-shredding: overwrite the whole file in place with random bytes, fsync, unlink,
    fsync the directory. The file has only ever been overwritten in place, so no earlier copy
    of a slot is left in blocks it once had."""
    shred(path, random=True, follow=True)
    fsync_dir(path.parent)
