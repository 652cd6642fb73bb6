"""kube-webhook-certgen built in: ``create`` makes the admission Secret (a CA and a serving
certificate it signed for the webhook's hosts), ``patch`` puts the CA into the webhook
configuration of ingress-nginx's manifest; both against the API over TLS, as the Jobs run."""

from __future__ import annotations

import base64
import ipaddress
import json
from pathlib import Path
from typing import Any, cast

import pytest
import yaml_rs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from kubectl_bin import NEWEST, tls_api

from kins import certgen
from kins.apiserver.auth import ensure_tls
from kins.store.memory import MemoryStore

MANIFEST = Path(__file__).parents[1] / "data" / "manifests" / "ingress-nginx-baremetal-deploy.yaml"
HOSTS = "ingress-nginx-controller-admission,ingress-nginx-controller-admission.ingress-nginx.svc"


def _docs(*kinds: str) -> str:
    loaded = cast(list[dict[str, Any]], yaml_rs.loads(MANIFEST.read_text(), parse_datetime=False))
    docs = [d for d in loaded if d and d["kind"] in kinds]
    return "\n---\n".join(json.dumps(d) for d in docs)


def test_generate_signs_a_serving_certificate_for_the_hosts() -> None:
    ca_pem, cert_pem, key_pem = certgen.generate(["svc", "svc.ns.svc", "10.0.0.1"])
    ca, cert = x509.load_pem_x509_certificate(ca_pem), x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["svc", "svc.ns.svc"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        certgen.generate([])


def test_create_then_patch_the_manifests_webhook(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=100), tmp_path / "state") as api:
        k = api.kubectl(NEWEST)
        k("create", "namespace", "ingress-nginx")
        token = tmp_path / "token"
        token.write_text(api.token)
        ca_file = str(ensure_tls(tmp_path / "state")[0])
        base = ["--api", api.url, "--token-file", str(token), "--ca-file", ca_file]
        patch = [
            *base,
            "patch",
            "--webhook-name=ingress-nginx-admission",
            "--namespace=ingress-nginx",
            "--patch-mutating=false",
            "--secret-name=ingress-nginx-admission",
            "--patch-failure-policy=Fail",
        ]
        # The patch Job before the secret exists: it fails, and OnFailure runs it again.
        assert certgen.main(patch) == 1
        create = [
            *base,
            "create",
            f"--host={HOSTS}",
            "--namespace=ingress-nginx",
            "--secret-name=ingress-nginx-admission",
        ]
        assert certgen.main(create) == 0
        secret = json.loads(k("get", "secret", "-n", "ingress-nginx", "ingress-nginx-admission", "-o", "json"))
        assert sorted(secret["data"]) == ["ca", "cert", "key"]
        ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca"]))
        cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["cert"]))
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == HOSTS.split(",")
        # A second run keeps the secret (the Job may run again).
        assert certgen.main(create) == 0
        again = json.loads(k("get", "secret", "-n", "ingress-nginx", "ingress-nginx-admission", "-o", "json"))
        assert again["data"] == secret["data"]
        # No webhook configuration yet: an error, not a silent success.
        assert certgen.main(patch) == 1
        k("apply", "-f", "-", input=_docs("ValidatingWebhookConfiguration"))
        assert certgen.main(patch) == 0
        hook = json.loads(k("get", "validatingwebhookconfiguration", "ingress-nginx-admission", "-o", "json"))
        (w,) = hook["webhooks"]
        assert w["clientConfig"]["caBundle"] == secret["data"]["ca"]
        assert w["failurePolicy"] == "Fail"
        assert w["clientConfig"]["service"]["name"] == "ingress-nginx-controller-admission"


def test_bad_arguments_exit_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    with pytest.raises(SystemExit) as e:
        certgen.main(["--api", "unix:/nonexistent", "--token-file", str(token), "patch", "--namespace=x"])
    assert e.value.code == 2
    assert "--secret-name" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        certgen.main(["--api", "unix:/x", "--token-file", str(token), "create", "--host=a", "--namespace=n",
                      "--secret-name=s", "--bogus"])  # fmt: skip
    assert "--bogus" in capsys.readouterr().err
