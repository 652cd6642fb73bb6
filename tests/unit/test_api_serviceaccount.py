"""ServiceAccounts through real kubectl (1.27 and 1.33) and the official Python client: their
tokens (TokenRequest, ``kubectl create token``, legacy token Secrets), who those tokens are, and
what a pod gets when it is created (its ServiceAccount and the ``kube-api-access`` volume)."""

from __future__ import annotations

import base64
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from identity_kit import IdentityApi, apply, claims_of, identity_api
from kubectl_bin import all_versions

from kins.api.core import ConfigMap, Pod, Secret
from kins.api.rbac import ServiceAccount
from kins.apiserver.tokens import SigningKey
from kins.views.describe import describe_pod

SA = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: bot}
"""


def _pod(name: str, spec_line: str) -> str:
    head = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  {spec_line}\n"
    return head + "  containers: [{name: c, image: busybox}]\n"


@pytest.fixture
def ida(tmp_path: Path) -> Iterator[IdentityApi]:
    with identity_api(tmp_path) as a:
        yield a


def _sa(ida: IdentityApi, ns: str, name: str) -> ServiceAccount:
    sa = ida.store.get("ServiceAccount", ns, name)
    assert isinstance(sa, ServiceAccount)
    return sa


@pytest.mark.parametrize("version", all_versions())
def test_create_sa_with_kubectl(ida: IdentityApi, version: str) -> None:
    # kubectl 1.27's typed `create serviceaccount` sends JSON, 1.33's protobuf.
    k = ida.admin(version)
    assert k("create", "sa", "bot") == "serviceaccount/bot created\n"
    assert k("get", "sa", "bot").split("\n")[0].split() == ["NAME", "SECRETS", "AGE"]
    assert k("get", "serviceaccounts", "bot", "-o", "jsonpath={.metadata.name}") == "bot"
    dup = k.run("create", "sa", "bot", check=False)
    assert dup.returncode != 0 and 'serviceaccounts "bot" already exists' in dup.stderr


@pytest.mark.parametrize("version", all_versions())
def test_create_token_and_who_it_is(ida: IdentityApi, version: str) -> None:
    k = ida.admin(version)
    apply(k, SA)
    sa = _sa(ida, "default", "bot")
    token = k("create", "token", "bot").strip()
    claims = claims_of(token)
    assert claims["iss"] == claims["aud"][0] == "https://kubernetes.default.svc.cluster.local"
    assert claims["sub"] == "system:serviceaccount:default:bot"
    assert claims["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "bot", "uid": sa.metadata.uid},
    }
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 60
    longer = claims_of(k("create", "token", "bot", "--duration=2h", "--audience=a", "--audience=b").strip())
    assert longer["exp"] - longer["iat"] == 7200 and longer["aud"] == ["a", "b"]
    short = k.run("create", "token", "bot", "--duration=60s", check=False)
    assert short.returncode != 0
    assert "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes" in short.stderr
    missing = k.run("create", "token", "nobody", check=False)
    assert missing.returncode != 0 and 'serviceaccounts "nobody" not found' in missing.stderr

    bot = ida.as_token(version, token)
    who = bot("auth", "whoami").split("\n")
    assert who[1].split() == ["Username", "system:serviceaccount:default:bot"]
    assert who[2].split() == ["UID", sa.metadata.uid]
    assert who[3].split(None, 1) == [
        "Groups",
        "[system:serviceaccounts system:serviceaccounts:default system:authenticated]",
    ]
    assert ida.admin(version)("auth", "whoami").split("\n")[1].split() == ["Username", "kins-admin"]
    denied = bot.run("get", "pods", check=False)
    assert denied.returncode == 1
    assert denied.stderr == (
        'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:default:bot" cannot list '
        'resource "pods" in API group "" in the namespace "default"\n'
    )


def test_a_token_dies_with_its_service_account(ida: IdentityApi) -> None:
    k = ida.admin("1.33")
    apply(k, SA)
    token = k("create", "token", "bot").strip()
    bot = ida.as_token("1.33", token)
    assert bot("auth", "can-i", "create", "selfsubjectaccessreviews.authorization.k8s.io") == "yes\n"
    k("delete", "sa", "bot")
    apply(k, SA)  # the same name again: a new uid, which the token does not carry
    gone = bot.run("auth", "can-i", "list", "pods", check=False)
    assert gone.returncode != 0 and "Unauthorized" in gone.stderr
    # Tampered or foreign tokens are not anyone either.
    r = httpx.get(f"{ida.api.url}/api/v1/pods", headers={"Authorization": f"Bearer {token[:-4]}AAAA"}, verify=False)
    assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"


def test_a_token_bound_to_a_pod_dies_with_the_pod(ida: IdentityApi) -> None:
    k = ida.admin("1.33")
    apply(k, SA)
    apply(k, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n")
    apply(
        k,
        _pod("p", "serviceAccountName: bot"),
    )
    pod = ida.store.get("Pod", "default", "p")
    token = k("create", "token", "bot", "--bound-object-kind=Pod", "--bound-object-name=p").strip()
    assert claims_of(token)["kubernetes.io"]["pod"] == {"name": "p", "uid": pod.metadata.uid}
    bot = ida.as_token("1.33", token)
    assert (
        bot("auth", "whoami", "-o", "jsonpath={.status.userInfo.extra.authentication\\.kubernetes\\.io/pod-name}")
        == '["p"]'
    )
    wrong = k.run("create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=p", check=False)
    assert "to pod running with different serviceaccount name" in wrong.stderr
    k("delete", "pod", "p", "--grace-period=0", "--force")
    assert "Unauthorized" in bot.run("auth", "whoami", check=False).stderr


def test_controllers_make_default_service_accounts_and_fill_token_secrets(ida: IdentityApi) -> None:
    k = ida.admin("1.33")
    apply(
        k,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
    )
    ida.converge()
    for ns in ("default", "team"):
        assert _sa(ida, ns, "default").metadata.uid
        root_ca = ida.store.get("ConfigMap", ns, "kube-root-ca.crt")
        assert isinstance(root_ca, ConfigMap) and (root_ca.data or {})["ca.crt"] == ida.ca_pem.decode()
    apply(k, SA)
    apply(
        k,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bot-token\n"
        "  annotations: {kubernetes.io/service-account.name: bot}\n"
        "type: kubernetes.io/service-account-token\n",
    )
    ida.converge()
    sec = ida.store.get("Secret", "default", "bot-token")
    assert isinstance(sec, Secret) and sec.data is not None
    assert (sec.metadata.annotations or {})["kubernetes.io/service-account.uid"] == _sa(
        ida, "default", "bot"
    ).metadata.uid
    assert base64.b64decode(sec.data["namespace"]) == b"default"
    assert base64.b64decode(sec.data["ca.crt"]) == ida.ca_pem
    token = base64.b64decode(sec.data["token"]).decode()
    claims = claims_of(token)
    assert claims["iss"] == "kubernetes/serviceaccount" and "exp" not in claims
    assert claims["kubernetes.io/serviceaccount/secret.name"] == "bot-token"
    bot = ida.as_token("1.27", token)
    assert bot("auth", "whoami").split("\n")[1].split() == ["Username", "system:serviceaccount:default:bot"]
    # kubectl describes it as a token Secret.
    assert k("get", "secret", "bot-token").split("\n")[1].split()[1] == "kubernetes.io/service-account-token"
    # The Secret goes with its ServiceAccount, and the token with it.
    k("delete", "sa", "bot")
    ida.converge()
    assert not [s for s in ida.store.list("Secret", "default")[0] if s.name == "bot-token"]
    assert "Unauthorized" in bot.run("auth", "whoami", check=False).stderr
    # A deleted default ServiceAccount comes back.
    k("delete", "sa", "default")
    ida.converge()
    assert _sa(ida, "default", "default")


def test_pods_get_their_service_account_and_the_api_access_volume(ida: IdentityApi) -> None:
    k = ida.admin("1.33")
    apply(
        k,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  containers: [{name: c, image: busybox}, {name: d, image: busybox}]\n",
    )
    pod = ida.store.get("Pod", "default", "p")
    assert isinstance(pod, Pod)
    assert pod.spec.serviceAccountName == pod.spec.serviceAccount == "default"
    (vol,) = pod.spec.volumes or []
    assert vol.name.startswith("kube-api-access-") and len(vol.name) == len("kube-api-access-") + 5
    assert k("get", "pod", "p", "-o", "jsonpath={.spec.volumes[0].projected}") == (
        '{"defaultMode":420,"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},'
        '{"configMap":{"items":[{"key":"ca.crt","path":"ca.crt"}],"name":"kube-root-ca.crt"}},'
        '{"downwardAPI":{"items":[{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"},"path":"namespace"}]}}]}'
    )
    for c in pod.spec.containers:
        assert [(m.name, m.mountPath, m.readOnly) for m in c.volumeMounts or []] == [
            (vol.name, "/var/run/secrets/kubernetes.io/serviceaccount", True)
        ]
    # Opting out, on the pod or on its ServiceAccount.
    apply(
        k,
        _pod("q", "automountServiceAccountToken: false"),
    )
    apply(k, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: quiet}\nautomountServiceAccountToken: false\n")
    apply(
        k,
        _pod("r", "serviceAccount: quiet"),
    )
    for name in ("q", "r"):
        p = ida.store.get("Pod", "default", name)
        assert isinstance(p, Pod) and not p.spec.volumes and not p.spec.containers[0].volumeMounts
    r = ida.store.get("Pod", "default", "r")
    assert isinstance(r, Pod) and r.spec.serviceAccountName == "quiet"


def test_the_python_client_with_a_service_account_token(ida: IdentityApi) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.client.exceptions import ApiException

    k = ida.admin("1.33")
    apply(k, SA)
    apply(
        k,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: cm-reader}\n"
        "rules: [{apiGroups: [''], resources: [configmaps], verbs: [get, list]}]\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: bot-cm}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}\n"
        "subjects: [{kind: ServiceAccount, name: bot, namespace: default}]\n",
    )
    token = k("create", "token", "bot").strip()
    kc = ida.state / "py.kubeconfig"
    ida.as_token("1.33", token, name="py")  # writes py.kubeconfig
    client = kubernetes.config.new_client_from_config(config_file=str(kc))
    v1 = kubernetes.client.CoreV1Api(client)
    assert v1.list_namespaced_config_map("default").items == []
    with pytest.raises(ApiException) as e:
        v1.list_namespaced_secret("default")
    assert e.value.status == 403
    assert json.loads(e.value.body or "{}")["reason"] == "Forbidden"
    with pytest.raises(ApiException) as e:
        v1.list_namespaced_config_map("kube-system")
    assert e.value.status == 403
    review = kubernetes.client.AuthorizationV1Api(client).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "configmaps"}}}
    )
    assert review.status.allowed is True


def _volumes_block(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Volumes:"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" "))
    return lines[start:end]


def test_describe_shows_the_api_access_volume_as_kubectl_does(ida: IdentityApi) -> None:
    k = ida.admin("1.33")
    apply(k, _pod("p", "serviceAccountName: default"))
    pod = ida.store.get("Pod", "default", "p")
    assert isinstance(pod, Pod)
    theirs = _volumes_block(k("describe", "pod", "p"))
    assert theirs[2:] == [
        "    Type:                    Projected (a volume that contains injected data from multiple sources)",
        "    TokenExpirationSeconds:  3607",
        "    ConfigMapName:           kube-root-ca.crt",
        "    Optional:                false",
        "    DownwardAPI:             true",
    ]
    assert _volumes_block(describe_pod(pod)) == theirs


def test_issuer_discovery_lets_others_verify_tokens(ida: IdentityApi) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    k = ida.admin("1.33")
    apply(k, SA)
    token = k("create", "token", "bot").strip()
    auth = {"Authorization": f"Bearer {token}"}
    conf = httpx.get(f"{ida.api.url}/.well-known/openid-configuration", headers=auth, verify=False).json()
    assert conf["issuer"] == claims_of(token)["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert conf["jwks_uri"] == "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
    assert conf["id_token_signing_alg_values_supported"] == ["ES256"]
    (jwk,) = httpx.get(f"{ida.api.url}/openid/v1/jwks", headers=auth, verify=False).json()["keys"]
    head, body, sig = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))) == {"alg": "ES256", "kid": jwk["kid"]}

    def num(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    public = ec.EllipticCurvePublicNumbers(num(jwk["x"]), num(jwk["y"]), ec.SECP256R1()).public_key()
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if it does not verify
    # Without a token: 401, as everything but /healthz.
    assert httpx.get(f"{ida.api.url}/openid/v1/jwks", verify=False).status_code == 401


def test_the_signing_key_is_kept_in_the_state_directory(tmp_path: Path) -> None:
    # A restarted daemon signs (and accepts) with the same key: tokens outlive it.
    first = SigningKey.ensure(tmp_path)
    path = tmp_path / "sa.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SigningKey.ensure(tmp_path)
    assert again.kid == first.kid
    token = first.sign({"sub": "x"})
    assert again.verify(token) == {"sub": "x"}
    assert SigningKey.generate().verify(token) is None
    assert again.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB")) is None
