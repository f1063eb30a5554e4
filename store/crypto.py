"""Key derivation, key wrapping and the recovery key.

Passphrases go through Argon2id (scrypt where OpenSSL lacks Argon2), with parameters calibrated
at creation to 0.3–0.5 s on this machine and stored beside the slot. Parameters read from disk
are checked against fixed bounds *before* they run, so a doctored key file cannot make an unlock
take an hour or exhaust memory (Borg PR #6469, MacPass #1333).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import BadRecoveryKey, UnsafeParameters

KEY_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16

# Bounds on stored KDF parameters, checked before running them.
ARGON2_MAX_MEMORY_KIB = 1 << 20  # 1 GiB
ARGON2_MIN_MEMORY_KIB = 8 << 10  # 8 MiB
ARGON2_MAX_ITERATIONS = 20
ARGON2_MAX_LANES = 16
SCRYPT_MAX_LOG_N = 22
SCRYPT_MIN_LOG_N = 14

CALIBRATION_LOW, CALIBRATION_HIGH = 0.3, 0.5
# Calibration aims inside the range, not at its edge: a later unlock on a busier machine should
# not fall outside it.
CALIBRATION_MARGIN = 0.05


@dataclass(frozen=True)
class KdfParams:
    name: str  # "argon2id" | "scrypt"
    memory_kib: int = 0  # argon2id
    iterations: int = 0  # argon2id
    lanes: int = 0  # argon2id
    log_n: int = 0  # scrypt
    r: int = 0  # scrypt
    p: int = 0  # scrypt

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_json(cls, data: Any) -> KdfParams:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise UnsafeParameters("kdf")
        allowed = {"name", "memory_kib", "iterations", "lanes", "log_n", "r", "p"}
        if set(data) - allowed or not all(
            isinstance(v, int) and not isinstance(v, bool) for k, v in data.items() if k != "name"
        ):
            raise UnsafeParameters("kdf fields")
        params = cls(**data)
        params.check()
        return params

    def check(self) -> None:
        """Refuse parameters outside safe bounds, before anything runs them."""
        if self.name == "argon2id":
            if not ARGON2_MIN_MEMORY_KIB <= self.memory_kib <= ARGON2_MAX_MEMORY_KIB:
                raise UnsafeParameters(f"argon2id memory {self.memory_kib} KiB")
            if not 1 <= self.iterations <= ARGON2_MAX_ITERATIONS:
                raise UnsafeParameters(f"argon2id iterations {self.iterations}")
            if not 1 <= self.lanes <= ARGON2_MAX_LANES:
                raise UnsafeParameters(f"argon2id lanes {self.lanes}")
            if self.memory_kib < 8 * self.lanes:
                raise UnsafeParameters("argon2id memory below 8 KiB per lane")
        elif self.name == "scrypt":
            if not SCRYPT_MIN_LOG_N <= self.log_n <= SCRYPT_MAX_LOG_N:
                raise UnsafeParameters(f"scrypt log2(N) {self.log_n}")
            if not 1 <= self.r <= 32 or not 1 <= self.p <= 4:
                raise UnsafeParameters(f"scrypt r={self.r} p={self.p}")
        else:
            raise UnsafeParameters(f"unknown kdf {self.name!r}")


# Light parameters for tests and benchmarks that create many stores; never chosen by `init`.
TEST_KDF = KdfParams("argon2id", memory_kib=ARGON2_MIN_MEMORY_KIB, iterations=1, lanes=1)


def normalize_passphrase(passphrase: str) -> bytes:
    """NFC, so the same passphrase typed with composed or decomposed characters opens the store."""
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def argon2_available() -> bool:
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id  # noqa: F401
    except ImportError:
        return False
    try:
        derive_key(b"probe", os.urandom(16), TEST_KDF)
    except UnsupportedAlgorithm:
        return False
    return True


def derive_key(secret: bytes, salt: bytes, params: KdfParams) -> bytes:
    params.check()
    if params.name == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        return Argon2id(
            salt=salt, length=KEY_LEN, iterations=params.iterations,
            lanes=params.lanes, memory_cost=params.memory_kib,
        ).derive(secret)
    return Scrypt(salt=salt, length=KEY_LEN, n=1 << params.log_n, r=params.r, p=params.p).derive(
        secret
    )


def _timed(params: KdfParams, runs: int = 2) -> float:
    """Mean time of a derivation; one run alone swings by a fifth on a busy machine."""
    start = time.perf_counter()
    for _ in range(runs):
        derive_key(b"calibration", os.urandom(16), params)
    return (time.perf_counter() - start) / runs


def calibrate(low: float = CALIBRATION_LOW, high: float = CALIBRATION_HIGH) -> KdfParams:
    """Parameters that take between ``low`` and ``high`` seconds on this machine.

    Argon2id with 128 MiB (64 MiB on small machines) and 2 lanes; raise the iterations until an
    unlock takes at least ``low`` seconds. Where one iteration is already too slow, memory is
    halved instead. scrypt, the fallback, scales N the same way.
    """
    target = (low + high) / 2
    low, high = low + CALIBRATION_MARGIN, high - CALIBRATION_MARGIN
    if argon2_available():
        memory = 128 << 10 if _total_memory() >= 4 << 30 else 64 << 10
        params = KdfParams("argon2id", memory_kib=memory, iterations=2, lanes=2)
        for _ in range(12):
            took = _timed(params)
            if low <= took <= high:
                return params
            if took < low and params.iterations < ARGON2_MAX_ITERATIONS:
                per_iter = took / params.iterations
                want = max(params.iterations + 1, round(target / per_iter))
                params = KdfParams("argon2id", memory_kib=params.memory_kib,
                                   iterations=min(want, ARGON2_MAX_ITERATIONS), lanes=2)
            elif took > high and params.iterations > 1:
                params = KdfParams("argon2id", memory_kib=params.memory_kib,
                                   iterations=params.iterations - 1, lanes=2)
            elif took > high and params.memory_kib > 16 << 10:
                params = KdfParams("argon2id", memory_kib=params.memory_kib // 2,
                                   iterations=params.iterations, lanes=2)
            else:
                return params
        return params
    params = KdfParams("scrypt", log_n=15, r=8, p=1)
    for _ in range(8):
        took = _timed(params)
        if took < low and params.log_n < SCRYPT_MAX_LOG_N:
            params = KdfParams("scrypt", log_n=params.log_n + 1, r=8, p=1)
        elif took > high and params.log_n > SCRYPT_MIN_LOG_N:
            return KdfParams("scrypt", log_n=params.log_n - 1, r=8, p=1)
        else:
            return params
    return params


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def hkdf(key: bytes, info: bytes, salt: bytes | None = None, length: int = KEY_LEN) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """AES-256-GCM with a random nonce; returns (nonce, ciphertext‖tag)."""
    nonce = os.urandom(NONCE_LEN)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
    """The plaintext, or None when the tag does not verify."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        return None


def mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text.encode("ascii"), validate=True)


# The recovery key: 32 random bytes and a 2-byte checksum in Crockford Base32, in groups of
# five, e.g. "7ZK3Q-…". Crockford's alphabet has no I, L, O or U, and reading maps I/L to 1 and
# O to 0, so a key copied by hand from paper still reads back.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECOVERY_BYTES = 32


def format_recovery_key(secret: bytes) -> str:
    payload = secret + hashlib.sha256(b"liudong recovery" + secret).digest()[:2]
    value = int.from_bytes(payload, "big")
    nchars = (len(payload) * 8 + 4) // 5
    chars = "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(nchars - 1, -1, -1))
    return "-".join(chars[i:i + 5] for i in range(0, len(chars), 5))


def parse_recovery_key(text: str) -> bytes:
    cleaned = text.strip().upper().replace("-", "").replace(" ", "")
    cleaned = cleaned.translate(str.maketrans("ILO", "110"))
    nbytes = RECOVERY_BYTES + 2
    if len(cleaned) != (nbytes * 8 + 4) // 5 or any(c not in CROCKFORD for c in cleaned):
        raise BadRecoveryKey()
    value = 0
    for c in cleaned:
        value = value * 32 + CROCKFORD.index(c)
    if value >> (nbytes * 8):
        raise BadRecoveryKey()
    payload = value.to_bytes(nbytes, "big")
    secret, check = payload[:RECOVERY_BYTES], payload[RECOVERY_BYTES:]
    if hashlib.sha256(b"liudong recovery" + secret).digest()[:2] != check:
        raise BadRecoveryKey()
    return secret


# -- keys for uses outside the store's own files ------------------------------------------------
# ``Store.derive_key`` hands out only these: HKDF-SHA256(MK, salt=none, info=label). Each label is
# distinct from every label above, so no such key seals or authenticates a file of the store.
BACKUP_MAC_LABEL = b"liudong/backup-mac/v1"  # the MAC over a whole backup file (store/backup.py)
EXPORTED_LABELS = frozenset({BACKUP_MAC_LABEL})
