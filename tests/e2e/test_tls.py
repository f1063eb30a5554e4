"""TLS with a self-signed certificate (DESIGN §3.4): the enrollment code carries the
certificate's fingerprint; the device pins that certificate and refuses any other."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sync.protocol import cert_fingerprint
from tests.e2e.conftest import Server
from tests.e2e.test_county import as_json, laptop, run


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_pinned_certificate_and_no_other(db_url: str, tmp_path: Path) -> None:
    real = self_signed(tmp_path, "county")
    impostor = self_signed(tmp_path, "impostor")
    server = Server(db_url, tmp_path, tls=real)
    try:
        org = as_json(run("admin", "org", "add", "--name", "城关村党支部", "--kind", "branch",
                          "--json", db=db_url))["id"]
        made = as_json(run("admin", "enroll-code", "--org", org, "--server-url", server.url,
                           "--tls-cert", str(real[0]), "--json", db=db_url))
        assert made["fingerprint"] and made["server_url"].startswith("https://")
        store = laptop(tmp_path, "a")
        run("enroll", "--code", made["code"], store=store)
        run("member", "add", "--name", "张三", store=store)
        assert "sent 1 op(s)" in run("sync", store=store).stdout
        # a code naming another certificate than the server's is refused before anything is sent
        wrong = as_json(run("admin", "enroll-code", "--org", org, "--server-url", server.url,
                            "--tls-cert", str(impostor[0]), "--json", db=db_url))
        refused = run("enroll", "--code", wrong["code"], store=laptop(tmp_path, "b"),
                      check=False)
        assert refused.returncode != 0 and "pinned" in refused.stderr
    finally:
        server.stop()
    # someone else answers at the same address with another certificate
    fake = Server(db_url, tmp_path, tls=impostor, port=server.port)
    try:
        run("member", "add", "--name", "李四", store=store)
        refused = run("sync", store=store, check=False)
        assert refused.returncode != 0 and "impostor" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        fake.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_speaks_tls_unless_told_it_is_insecure(db_url: str, tmp_path: Path) -> None:
    """Before: `serve` spoke plain HTTP unless given a certificate, and `enroll-code` printed an
    http:// address. Now it makes a certificate on its first run and keeps it; plain HTTP only
    behind a flag that says it is insecure, with a warning."""
    server = Server(db_url, tmp_path)
    try:
        assert server.url.startswith("https://")
        with pytest.raises(httpx.HTTPError):  # nothing answers in the clear
            httpx.get(f"http://127.0.0.1:{server.port}/v1/health", timeout=5)
        org = as_json(run("admin", "org", "add", "--name", "城关村党支部", "--kind", "branch",
                          "--json", db=db_url))["id"]
        made = as_json(run("admin", "enroll-code", "--org", org, "--json", db=db_url))
        assert made["server_url"].startswith("https://") and made["fingerprint"]
        served = ssl.get_server_certificate(("127.0.0.1", server.port))
        assert made["fingerprint"] == cert_fingerprint(ssl.PEM_cert_to_DER_cert(served))
    finally:
        server.stop()
    again = Server(db_url, tmp_path, port=server.port)  # the same certificate after a restart
    try:
        assert ssl.get_server_certificate(("127.0.0.1", again.port)) == served
    finally:
        again.stop()
    plain = Server(db_url, tmp_path, insecure=True)
    try:
        assert httpx.get(f"{plain.url}/v1/health", timeout=5).json()["ok"]
    finally:
        plain.stop()
    assert "insecure" in Path(plain.log.name).read_text().lower()
