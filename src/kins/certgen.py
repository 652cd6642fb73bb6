"""``kube-webhook-certgen`` as kins runs it (``registry.k8s.io/ingress-nginx/kube-webhook-certgen``).

    python -m kins.certgen --api URL --token-file F create --host=a,b --namespace=NS --secret-name=S
    python -m kins.certgen --api URL --token-file F patch --webhook-name=W --namespace=NS --secret-name=S

``create`` makes a CA and a serving certificate for the hosts, signed by it, and stores them in
a Secret (keys ``ca``, ``cert``, ``key``, as upstream's certgen names them); a Secret that exists
already is left as it is. ``patch`` puts that CA into the ``caBundle`` of every webhook of the
ValidatingWebhookConfiguration (and the MutatingWebhookConfiguration) named ``--webhook-name``,
and their ``failurePolicy`` when ``--patch-failure-policy`` is given. Errors exit non-zero, so a
Job with ``restartPolicy: OnFailure`` tries again (the configuration may come later).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import logging
import sys
from collections.abc import Sequence

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from msgspec.structs import replace

from ._errors import Conflict, KinsError, NotFound
from .api.admissionregistration import MutatingWebhookConfiguration, ValidatingWebhookConfiguration
from .api.core import Secret
from .api.meta import ObjectMeta
from .client import Client, connect

log = logging.getLogger("kins.certgen")

FAILURE_POLICIES = ("Fail", "Ignore")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate(hosts: Sequence[str], years: int = 100) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, serving certificate, serving key) as PEM: the serving certificate is
    for ``hosts`` (DNS names or IP addresses; the first is its common name), signed by the CA."""
    if not hosts:
        raise ValueError("at least one host is needed")
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # clocks differ a little
    until = now + dt.timedelta(days=365 * years)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nil1")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = _key()
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nil2")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem), cert.public_bytes(pem), _pem_key(key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def create(client: Client, hosts: Sequence[str], namespace: str, secret: str, names: tuple[str, str, str]) -> bool:
    """The Secret with a new CA and serving certificate; False when it exists already."""
    try:
        client.get("Secret", namespace, secret)
        log.info("secret %s/%s already exists: keeping it", namespace, secret)
        return False
    except NotFound:
        pass
    ca, cert, key = generate(hosts)
    ca_name, cert_name, key_name = names
    obj = Secret(
        metadata=ObjectMeta(name=secret, namespace=namespace),
        data={ca_name: _b64(ca), cert_name: _b64(cert), key_name: _b64(key)},
    )
    try:
        client.create(obj)
    except Conflict:
        log.info("secret %s/%s was created meanwhile: keeping it", namespace, secret)
        return False
    log.info("created secret %s/%s for %s", namespace, secret, ", ".join(hosts))
    return True


def patch(
    client: Client,
    webhook: str,
    namespace: str,
    secret: str,
    *,
    validating: bool = True,
    mutating: bool = True,
    failure_policy: str = "",
    ca_name: str = "ca",
) -> list[str]:
    """Set the CA of the Secret into the named webhook configurations; the kinds patched."""
    sec = client.get("Secret", namespace, secret)
    ca = (sec.data or {}).get(ca_name) if isinstance(sec, Secret) else None
    if not ca:
        raise KinsError(f"secret {namespace}/{secret} has no {ca_name!r} key")
    kinds = [
        k
        for k, on in (("ValidatingWebhookConfiguration", validating), ("MutatingWebhookConfiguration", mutating))
        if on
    ]
    done = []
    for kind in kinds:
        cfg = client.get(kind, None, webhook)
        assert isinstance(cfg, ValidatingWebhookConfiguration | MutatingWebhookConfiguration)
        hooks = []
        for w in cfg.webhooks or []:
            cc = w.clientConfig
            assert cc is not None
            w = replace(w, clientConfig=replace(cc, caBundle=ca))
            if failure_policy:
                w = replace(w, failurePolicy=failure_policy)
            hooks.append(w)
        client.update(replace(cfg, webhooks=hooks))
        log.info(
            "patched %s %s: caBundle%s", kind, webhook, f", failurePolicy={failure_policy}" if failure_policy else ""
        )
        done.append(kind)
    return done


def _bool(text: str) -> bool:
    if text.lower() in ("1", "t", "true"):
        return True
    if text.lower() in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, not {text!r}")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kube-webhook-certgen", description=__doc__.split("\n\n")[0])
    ap.add_argument("--api", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--ca-file", default=None)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--log-format", default="text")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="make the CA and serving certificate Secret")
    c.add_argument("--host", required=True, help="comma-separated DNS names or IPs of the webhook")
    c.add_argument("--namespace", required=True)
    c.add_argument("--secret-name", required=True)
    c.add_argument("--cert-name", default="cert")
    c.add_argument("--key-name", default="key")
    c.add_argument("--ca-name", default="ca")
    p = sub.add_parser("patch", help="set the Secret's CA into the webhook configurations")
    p.add_argument("--webhook-name", default="")
    p.add_argument("--namespace", required=True)
    p.add_argument("--secret-name", required=True)
    p.add_argument("--patch-validating", type=_bool, default=True, nargs="?", const=True)
    p.add_argument("--patch-mutating", type=_bool, default=True, nargs="?", const=True)
    p.add_argument("--patch-failure-policy", default="", choices=("", *FAILURE_POLICIES))
    p.add_argument("--apiservice-name", default="")
    p.add_argument("--ca-name", default="ca")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    with open(args.token_file) as f:
        token = f.read().strip()
    try:
        with connect(args.api, token, args.ca_file, token_file=args.token_file) as client:
            if args.command == "create":
                hosts = [h.strip() for h in args.host.split(",") if h.strip()]
                create(client, hosts, args.namespace, args.secret_name, (args.ca_name, args.cert_name, args.key_name))
            else:
                if args.apiservice_name:
                    log.info("--apiservice-name: kins serves the APIService's group itself; not patched")
                if not args.webhook_name and (args.patch_validating or args.patch_mutating):
                    raise KinsError("--webhook-name is required to patch webhook configurations")
                patch(
                    client,
                    args.webhook_name,
                    args.namespace,
                    args.secret_name,
                    validating=args.patch_validating,
                    mutating=args.patch_mutating,
                    failure_policy=args.patch_failure_policy,
                    ca_name=args.ca_name,
                )
    except (KinsError, httpx.HTTPError, OSError, ValueError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
