"""TLS certificates for the ingress: check a Secret's pair, make the self-signed default.

The ``cryptography`` package does the work when it is installed; otherwise the ``openssl`` CLI
does (it is part of every base image nginx runs on). Results are cached by content, because a
render checks every referenced Secret each time and Secrets rarely change.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from dataclasses import dataclass

from .._errors import KinsError

# ingress-nginx's generated certificate, so clients see the name they know from real clusters.
FAKE_CN = "Kubernetes Ingress Controller Fake Certificate"
FAKE_ORG = "Acme Co"
FAKE_DNS = "ingress.local"


class CertError(KinsError):
    """A certificate/key pair nginx must not be given."""


@dataclass(frozen=True)
class CertInfo:
    common_name: str | None
    dns_names: tuple[str, ...]

    def covers(self, host: str) -> bool:
        """Whether the certificate is valid for ``host`` (RFC 6125: a ``*`` covers one label;
        the common name counts only when there are no DNS names, as Go's verifier did)."""
        host = host.lower().rstrip(".")
        names = self.dns_names or ((self.common_name,) if self.common_name else ())
        return any(_name_matches(n.lower(), host) for n in names)


def _name_matches(pattern: str, host: str) -> bool:
    if pattern == host:
        return True
    if pattern.startswith("*.") and not host.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return False


def _have_cryptography() -> bool:
    try:
        import cryptography.x509  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=256)
def check_pair(cert_pem: bytes, key_pem: bytes) -> CertInfo:
    """The certificate's names; CertError if either PEM does not parse or the key is not the
    certificate's."""
    if _have_cryptography():
        return _check_crypto(cert_pem, key_pem)
    return _check_openssl(cert_pem, key_pem)


def _check_crypto(cert_pem: bytes, key_pem: bytes) -> CertInfo:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise CertError("tls.crt is not a PEM certificate") from e
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise CertError("tls.key is not a PEM private key (or is encrypted)") from e
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if cert.public_key().public_bytes(enc, fmt) != key.public_key().public_bytes(enc, fmt):
        raise CertError("tls.key does not match the certificate in tls.crt")
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    return CertInfo(cn, dns)


def _openssl(args: list[str], data: bytes) -> str:
    proc = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CertError(lines[0] if lines else f"openssl {args[0]} failed")
    return proc.stdout.decode(errors="replace")


def _check_openssl(cert_pem: bytes, key_pem: bytes) -> CertInfo:
    try:
        cert_pub = _openssl(["x509", "-noout", "-pubkey"], cert_pem)
    except CertError as e:
        raise CertError("tls.crt is not a PEM certificate") from e
    try:
        key_pub = _openssl(["pkey", "-pubout", "-passin", "pass:"], key_pem)
    except CertError as e:
        raise CertError("tls.key is not a PEM private key (or is encrypted)") from e
    if cert_pub.strip() != key_pub.strip():
        raise CertError("tls.key does not match the certificate in tls.crt")
    subject = _openssl(["x509", "-noout", "-subject", "-nameopt", "sep_multiline,sname"], cert_pem)
    cn = next((ln.split("=", 1)[1] for ln in subject.splitlines() if ln.strip().startswith("CN=")), None)
    ext = _openssl(["x509", "-noout", "-ext", "subjectAltName"], cert_pem)
    dns = tuple(p.strip()[4:] for p in ext.replace("\n", ",").split(",") if p.strip().startswith("DNS:"))
    return CertInfo(cn, dns)


def self_signed(
    common_name: str, dns_names: list[str], *, org: str | None = None, days: int = 365
) -> tuple[bytes, bytes]:
    """A fresh RSA-2048 self-signed certificate and its key, both PEM."""
    if _have_cryptography():
        return _self_signed_crypto(common_name, dns_names, org, days)
    return _self_signed_openssl(common_name, dns_names, org, days)


def _self_signed_crypto(cn: str, dns: list[str], org: str | None, days: int) -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    name = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _self_signed_openssl(cn: str, dns: list[str], org: str | None, days: int) -> tuple[bytes, bytes]:
    subj = (f"/O={org}" if org else "") + f"/CN={cn}"
    with tempfile.TemporaryDirectory() as d:
        crt, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt]
        args += ["-days", str(days), "-subj", subj]
        if dns:
            args += ["-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in dns)]
        _openssl(args, b"")
        with open(crt, "rb") as c, open(key, "rb") as k:
            return c.read(), k.read()


def fake_certificate() -> bytes:
    """ingress-nginx's default certificate for hosts without their own: cert then key, PEM."""
    cert, key = self_signed(FAKE_CN, [FAKE_DNS], org=FAKE_ORG)
    return cert + key
