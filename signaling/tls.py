"""HTTPS and WSS built in: the server's TLS context, certificates for a LAN rehearsal, reloads.

Browsers give a page the camera and microphone only in a secure context (HTTPS, or localhost),
so a real deployment serves everything over TLS: pages, Socket.IO (WSS) and the HTTP API. With
`server.tls_cert` / `server.tls_key` set, `hallbridge serve` speaks TLS only on its port (a
plain-HTTP request there fails the handshake). SIGHUP reads the two files again: new connections
get the new certificate, live ones (every site's WebSocket and media) are not touched.

`hallbridge cert --host NAME --host IP` writes a self-signed certificate (a SAN per name and
address) and its key for a rehearsal without a CA, and prints the fingerprints operators compare.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_DAYS = 90


@dataclass(frozen=True, slots=True)
class Fingerprints:
    sha256: str  # of the certificate, "AB:CD:…" (what browsers show)
    spki_sha256: str  # base64 of the public key's SHA-256 (Chromium's --ignore-certificate-errors-spki-list)


def make_certificate(hosts: list[str], days: int = DEFAULT_DAYS,
                     not_before: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) for these names and addresses, and its key (PEM)."""
    if not hosts:
        raise ValueError("name at least one host (a DNS name or an IP address)")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hallbridge")])
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def fingerprints(cert_pem: bytes) -> Fingerprints:
    cert = x509.load_pem_x509_certificate(cert_pem)
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return Fingerprints(":".join(digest[i:i + 2] for i in range(0, len(digest), 2)),
                        base64.b64encode(hashlib.sha256(spki).digest()).decode())


def write_certificate(folder: Path, hosts: list[str], days: int = DEFAULT_DAYS) -> tuple[Path, Path]:
    """cert.pem and key.pem (the key readable by its owner only) in `folder`."""
    cert_pem, key_pem = make_certificate(hosts, days)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    cert_path.write_bytes(cert_pem)
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS 1.2+ for the server; `load_cert_chain` again on it (SIGHUP) swaps the certificate for
    new connections."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
