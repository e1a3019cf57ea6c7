"""Make the private CA and the loopback server certificate the emulator serves HTTPS with."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_NAME = "Image Factory Local Azure CA"
SERVER_NAME = "localhost"
#: Certificates are regenerated when they expire within this margin.
RENEW_MARGIN = dt.timedelta(days=1)
VALIDITY = dt.timedelta(days=365)
#: Every flag of the X.509 key usage extension, and the ones the CA's key has (it only signs).
_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)
_CA_USAGES = frozenset({"digital_signature", "key_cert_sign", "crl_sign"})


@dataclass(frozen=True)
class CertPaths:
    """PEM files of the private CA and of the server certificate (with its key)."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_certificates(directory: Path) -> CertPaths:
    """Create (or reuse when present and valid) a private CA and a server cert for 127.0.0.1/localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = CertPaths(ca_pem=directory / "ca.pem", cert_pem=directory / "server.pem", key_pem=directory / "server.key")
    if _reusable(paths):
        log.debug("Reusing certificates in %s", directory)
        return paths
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key, now)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(key, ca_key, ca_cert.subject, now)
    paths.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths.key_pem.chmod(0o600)
    log.info("Created a private CA and a server certificate in %s", directory)
    return paths


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, now: dt.datetime
) -> x509.CertificateBuilder:
    """Start a certificate for ``key``, valid from a few minutes ago (clock skew) for ``VALIDITY``."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _ca_certificate(ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    """Build the self-signed CA certificate (it may sign server certificates only)."""
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    return (
        _builder(ca_subject, ca_subject, ca_key, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**{usage: usage in _CA_USAGES for usage in _KEY_USAGES}), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey, ca_subject: x509.Name, now: dt.datetime
) -> x509.Certificate:
    """Build the server certificate for ``localhost`` and 127.0.0.1, signed by the CA."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    return (
        _builder(subject, ca_subject, key, now)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _reusable(paths: CertPaths) -> bool:
    """Tell whether the files exist, chain to each other, cover the loopback names and are not expiring."""
    if not (paths.ca_pem.is_file() and paths.cert_pem.is_file() and paths.key_pem.is_file()):
        return False
    try:
        ca = x509.load_pem_x509_certificate(paths.ca_pem.read_bytes())
        cert = x509.load_pem_x509_certificate(paths.cert_pem.read_bytes())
        key = serialization.load_pem_private_key(paths.key_pem.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound, OSError) as exc:
        log.info("Certificates in %s are not reusable: %s", paths.ca_pem.parent, exc)
        return False
    deadline = dt.datetime.now(dt.UTC) + RENEW_MARGIN
    if min(ca.not_valid_after_utc, cert.not_valid_after_utc) < deadline:
        return False
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    cert_public = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        public == cert_public
        and ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
        and SERVER_NAME in san.get_values_for_type(x509.DNSName)
    )
