"""The county server's identity (DESIGN §3.4): the Ed25519 key that signs every answer, and the
TLS certificate devices pin.

Both are made on first need and kept in the database's ``meta`` table, so a backup of the
database carries them and a server restored from it is, to every enrolled device, the same
server. The database and its backups are owner-only, and backups are encrypted.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from ..protocol import (
    ANSWER_HEADER,
    NONCE_HEADER,
    Asked,
    RequestDigest,
    b64u,
    cert_fingerprint,
    sign_answer,
    unb64u,
)
from . import db

IDENTITY = "identity_key"  # raw Ed25519 private key, base64url
TLS_CERT, TLS_KEY = "tls_cert", "tls_key"  # the self-signed certificate made here (PEM)
SERVED = "served_tls"  # what `serve` last served: a certificate's fingerprint, or INSECURE
INSECURE = "insecure-http"


@dataclass(frozen=True)
class Identity:
    private_key: bytes

    @property
    def public_key(self) -> str:
        """The raw public key, base64url: what enrollment codes carry."""
        key = Ed25519PrivateKey.from_private_bytes(self.private_key).public_key()
        return b64u(key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw))

    def sign(self, asked: Asked, status: int, encoding: str | None, body: bytes) -> str:
        return sign_answer(self.private_key, asked, status, encoding, body)


def _meta(engine: Engine, name: str, make: Callable[[], str]) -> str:
    """A meta value, made and stored the first time it is asked for (two processes asking at
    once agree: the one that writes second keeps what the first wrote)."""
    with db.read(engine) as conn:
        found = db.get_meta(conn, name)
    if found is not None:
        return found
    made = make()
    with db.write(engine) as conn:
        found = db.get_meta(conn, name)
        if found is None:
            db.set_meta(conn, name, made)
            found = made
    return found


def identity(engine: Engine) -> Identity:
    def make() -> str:
        key = Ed25519PrivateKey.generate()
        return b64u(key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw,
                                      ser.NoEncryption()))

    return Identity(unb64u(_meta(engine, IDENTITY, make)))


def self_signed(engine: Engine) -> tuple[str, str]:
    """(certificate PEM, key PEM) of the certificate this server made for itself."""
    key_pem = _meta(engine, TLS_KEY, lambda: ec.generate_private_key(ec.SECP256R1())
                    .private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                   ser.NoEncryption()).decode())

    def make_cert() -> str:
        key = ser.load_pem_private_key(key_pem.encode(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Liudong county server")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return cert.public_bytes(ser.Encoding.PEM).decode()

    # Devices pin the certificate itself, not a name: one made once serves every address.
    return _meta(engine, TLS_CERT, make_cert), key_pem


def pem_fingerprint(pem: str) -> str:
    return cert_fingerprint(ssl.PEM_cert_to_DER_cert(pem))


def record_served(engine: Engine, served: str) -> None:
    """What `serve` serves (a certificate's fingerprint, or plain HTTP), for enrollment codes
    made while or after it runs."""
    with db.write(engine) as conn:
        db.set_meta(conn, SERVED, served)


def served(engine: Engine) -> str | None:
    with db.read(engine) as conn:
        return db.get_meta(conn, SERVED)


class SignAnswers:
    """ASGI middleware: every answer the application makes leaves signed with the server's
    identity key and bound to the request it answers — its ``liudong-nonce``, method, path, and
    a digest of its Authorization header and of the body as the application read it — whatever
    produced it: a sync, an enrollment, a refusal. The body is signed as sent (compressed).

    Not signed: what never reaches the application — uvicorn's and h11's own answers to
    malformed HTTP, and a 500 from an unhandled error (Starlette answers it outside user
    middleware). The device acts on none of them: it retries a 5xx, and anything else that does
    not verify is no answer."""

    def __init__(self, app: Any, identity: Identity) -> None:
        self.app = app
        self.identity = identity

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(reversed(scope.get("headers", [])))  # the first of a name, as Starlette
        nonce = headers.get(NONCE_HEADER.encode(), b"").decode("latin-1")[:64]
        authorization = headers.get(b"authorization")
        digest = RequestDigest(authorization.decode("latin-1") if authorization else None)
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def reading() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                digest.update(message.get("body", b""))
            return message

        async def signed(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            encoding = dict(start.get("headers", [])).get(b"content-encoding", b"")
            asked = Asked(nonce, scope["method"], scope["path"], digest.value())
            signature = self.identity.sign(asked, int(start["status"]),
                                           encoding.decode("latin-1"), body)
            await send({**start, "headers": [*start.get("headers", []),
                                              (ANSWER_HEADER.encode(), signature.encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, reading, signed)
