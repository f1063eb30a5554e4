"""The ``keyslots`` file: the random master key, wrapped once per passphrase and once for the
recovery key (restic's key files, Borg's key slots). Changing a passphrase rewrites this file only.

The file is JSON (it holds no personal data). Two seals protect it:
- ``checksum``: SHA-256 over the body. It tells a damaged file ("corrupted") from a wrong
  passphrase: without it a flipped bit in a slot would read as "wrong passphrase".
- ``mac``: HMAC under a key derived from the master key, checked once a slot opens. It detects
  deliberate edits (a slot added or swapped) that the plain checksum cannot.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import crypto
from .crypto import KdfParams
from .errors import Corrupted, WrongPassphrase
from .fsutil import read_file, write_atomic

FORMAT = "liudong-keyslots"
VERSION = 1
MAX_SLOTS = 16
MAX_FILE = 64 * 1024


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

    # -- file form -------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "store_id": self.store_id,
                "key_id": self.key_id.hex(), "slots": [s.to_json() for s in self.slots]}

    def to_bytes(self, master: bytes) -> bytes:
        data = self.body()
        data["mac"] = crypto.mac(mac_key(master), canonical(data)).hex()
        data["checksum"] = hashlib.sha256(canonical(data)).hexdigest()
        return json.dumps(data, indent=1, sort_keys=True).encode() + b"\n"

    def save(self, path: Path, master: bytes) -> None:
        write_atomic(path, self.to_bytes(master))

    @classmethod
    def load(cls, path: Path) -> tuple[KeySlots, dict[str, Any]]:
        """Parse and check the checksum; returns the slots and the raw document (for the MAC)."""
        where = path.name
        try:
            raw = read_file(path)
        except FileNotFoundError:
            raise Corrupted(where, "文件缺失", "is missing") from None
        if len(raw) > MAX_FILE:
            raise Corrupted(where, "文件过大", "is too large")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Corrupted(where, "无法解析", "cannot be parsed") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise Corrupted(where, "不是密钥文件", "is not a key-slot file")
        checksum = data.pop("checksum", None)
        if checksum != hashlib.sha256(canonical(data)).hexdigest():
            raise Corrupted(where, "校验和不符", "fails its checksum")
        if data.get("version") != VERSION:
            raise Corrupted(where, f"版本不受支持：{data.get('version')}",
                            f"has unsupported version {data.get('version')}")
        try:
            slots = [
                Slot(s["kind"], s["kdf"], crypto.unb64(s["salt"]), crypto.unb64(s["nonce"]),
                     crypto.unb64(s["wrapped"]))
                for s in data["slots"]
            ]
            result = cls(str(data["store_id"]), bytes.fromhex(data["key_id"]), slots)
        except (KeyError, TypeError, ValueError):
            raise Corrupted(where, "结构有误", "is malformed") from None
        if not 1 <= len(slots) <= MAX_SLOTS or any(
            s.kind not in ("passphrase", "recovery") or not isinstance(s.kdf, dict)
            for s in slots
        ):
            raise Corrupted(where, "密钥槽有误", "has malformed slots")
        return result, data

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
