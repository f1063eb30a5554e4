"""What the device and the county server agree on: paths, body encoding, request signatures.

One request each way (DESIGN §3.2). Bodies are JSON compressed with zlib (``Content-Encoding:
deflate``); a request's signature covers the method, the path, the SHA-256 of the body as sent,
the creation time, a nonce and the device id, in the manner of RFC 9421, carried in one compact
header so that an incremental sync stays under 2 KB on the wire.

Imported by both sides: it depends on neither the device store nor the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PROTOCOL = 1
SYNC_PATH = "/v1/sync"
ENROLL_PATH = "/v1/enroll"
AUTH_HEADER = "authorization"
AUTH_SCHEME = "Liudong"
MAX_OPS_BYTES = 64 * 1024  # ops per request, as JSON (DESIGN §3.2)
DEFAULT_MAX_BYTES = 256 * 1024  # changes per response, as JSON
MAX_BODY = 4 * 1024 * 1024  # more than the server takes of any body (server/intake.py)
CLOCK_WINDOW = 300  # seconds a signed request may be early or late


def encode_body(data: Any) -> bytes:
    return zlib.compress(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(), 6)


def op_digest(op: Any) -> str:
    """What identifies one op of a device, whatever number it travels under: the server keeps it
    to tell an op sent again from a different op under a number it has seen (a device whose
    store went back to an older copy, DESIGN §3.2)."""
    core = {k: op.get(k) for k in ("rec_id", "type", "set", "hlc", "deleted")}
    core["deleted"] = bool(core["deleted"])
    data = json.dumps(core, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signature_base(method: str, path: str, body: bytes, created: int, nonce: str,
                   device_id: str) -> bytes:
    """The bytes a device signs, as RFC 9421 lays out its signature base."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    return (
        f'"@method": {method.upper()}\n'
        f'"@path": {path}\n'
        f'"content-digest": sha-256=:{digest}:\n'
        f'"@signature-params": ("@method" "@path" "content-digest");created={created};'
        f'nonce="{nonce}";keyid="{device_id}";alg="ed25519"'
    ).encode()


def new_keypair() -> tuple[bytes, bytes]:
    """(private, public) raw Ed25519 keys."""
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization as ser

    private = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return private, public


def sign_request(private_key: bytes, device_id: str, method: str, path: str, body: bytes,
                 created: int) -> str:
    """The ``Authorization`` header value of a signed request."""
    nonce = b64u(os.urandom(12))
    sig = Ed25519PrivateKey.from_private_bytes(private_key).sign(
        signature_base(method, path, body, created, nonce, device_id))
    return f"{AUTH_SCHEME} d={device_id},t={created},n={nonce},s={b64u(sig)}"


@dataclass(frozen=True)
class SignedBy:
    device_id: str
    created: int
    nonce: str
    signature: bytes


def parse_authorization(value: str | None) -> SignedBy | None:
    if not value or not value.startswith(AUTH_SCHEME + " "):
        return None
    try:
        parts = dict(p.split("=", 1) for p in value[len(AUTH_SCHEME) + 1:].split(","))
        return SignedBy(parts["d"], int(parts["t"]), parts["n"], unb64u(parts["s"]))
    except (ValueError, KeyError):
        return None


def verify_signature(public_key: bytes, signed: SignedBy, method: str, path: str,
                     body: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signed.signature,
            signature_base(method, path, body, signed.created, signed.nonce, signed.device_id))
    except (InvalidSignature, ValueError):
        return False
    return True


# -- enrollment codes ----------------------------------------------------------------------------
# A code is what the county admin hands a branch worker: the one-time token and, so that nothing
# else must be typed, the server's address and (for a self-signed certificate) the SHA-256
# fingerprint of its certificate to pin. ``ld1.`` + base64url(JSON). The token alone also works
# with ``enroll --server URL``.

@dataclass(frozen=True)
class Code:
    """What an enrollment code carries (DESIGN §3.4): the one-time token, the server's address,
    its identity key (every answer must verify with it) and, for TLS, the certificate's SHA-256
    fingerprint to pin."""

    token: str
    url: str
    server_key: str  # raw Ed25519 public key, base64url
    fingerprint: str | None


def make_code(token: str, url: str, server_key: str, fingerprint: str | None) -> str:
    data = {"t": token, "u": url, "k": server_key}
    if fingerprint:
        data["f"] = fingerprint
    return "ld2." + b64u(json.dumps(data, separators=(",", ":")).encode())


def parse_code(code: str) -> Code:
    """ValueError when it is garbled. A code of before answers were signed (``ld1.``), or a bare
    token, carries no server key: nothing the device would hear could be trusted."""
    code = code.strip()
    if not code.startswith("ld2.") or len(code) > 4096:
        raise ValueError("garbled or outdated enrollment code")
    try:
        data = json.loads(unb64u(code[4:]))
        found = Code(str(data["t"]), str(data["u"]), str(data["k"]), data.get("f"))
        if len(unb64u(found.server_key)) != 32 or not found.url.startswith(
                ("https://", "http://")):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ValueError("garbled enrollment code") from None
    if found.fingerprint is not None and (not isinstance(found.fingerprint, str)
                                          or len(found.fingerprint) != 64):
        raise ValueError("garbled enrollment code")
    return found


# -- signed answers -----------------------------------------------------------------------------
# Every answer of the county server is signed with its identity key and bound to the very request
# it answers: the request's nonce (a header the device makes fresh for every request), method and
# path, and a digest of its Authorization header and body as the server received them. So an
# answer from anything but the pinned server, one replayed from another request, or the server's
# answer to somebody else's request sent under this device's nonce (someone on a plain-HTTP link
# who holds another device's key) is not acted on (DESIGN §3.4).

NONCE_HEADER = "liudong-nonce"
ANSWER_HEADER = "liudong-signature"


def new_nonce() -> str:
    return b64u(os.urandom(16))


class RequestDigest:
    """SHA-256 over a request's Authorization header (or none) and its body as sent, fed as the
    body arrives."""

    def __init__(self, authorization: str | None) -> None:
        self._hash = hashlib.sha256(b"liudong-request/1\n" + (authorization or "").encode(
            "latin-1", "replace") + b"\n")

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def value(self) -> str:
        return b64u(self._hash.digest())


def request_digest(authorization: str | None, body: bytes) -> str:
    digest = RequestDigest(authorization)
    digest.update(body)
    return digest.value()


@dataclass(frozen=True)
class Asked:
    """What an answer is bound to: the request as its sender made it."""

    nonce: str
    method: str
    path: str
    request: str  # request_digest of its Authorization and body


def answer_base(asked: Asked, status: int, encoding: str | None, body: bytes) -> bytes:
    """The bytes the server signs: the request (``Asked``), the status, the answer's content
    encoding and the SHA-256 of its body as sent (compressed)."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    return (f"liudong-answer/2\nnonce: {asked.nonce}\n@method: {asked.method.upper()}\n"
            f"@path: {asked.path}\nrequest-digest: {asked.request}\n@status: {status}\n"
            f"content-encoding: {(encoding or '').lower()}\n"
            f"content-digest: sha-256=:{digest}:").encode()


def sign_answer(private_key: bytes, asked: Asked, status: int, encoding: str | None,
                body: bytes) -> str:
    sig = Ed25519PrivateKey.from_private_bytes(private_key).sign(
        answer_base(asked, status, encoding, body))
    return f"s={b64u(sig)}"


def verify_answer(public_key: bytes, header: str | None, asked: Asked, status: int,
                  encoding: str | None, body: bytes) -> bool:
    if not header or not header.startswith("s=") or len(header) > 200:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            unb64u(header[2:]), answer_base(asked, status, encoding, body))
    except (InvalidSignature, ValueError):
        return False
    return True


def token_digest(token: str) -> str:
    return hashlib.sha256(token.replace("-", "").upper().encode()).hexdigest()


def cert_fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def enroll_proof(token: str, device_id: str, public_key: str) -> bytes:
    """What a device signs with its new key when it enrolls: proof that it holds the key."""
    return f"liudong-enroll\n{token_digest(token)}\n{device_id}\n{public_key}".encode()
