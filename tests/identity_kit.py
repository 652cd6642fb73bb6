"""What the ServiceAccount and RBAC tests share: an API over TLS whose tokens a test can also
sign, kubeconfigs that carry a ServiceAccount's token, and the identity controllers run to a
standstill on the store."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubectl_bin import Kubectl, TlsApi, kubectl_for, tls_api

from kins.apiserver.auth import CERT_FILE
from kins.apiserver.bootstrap import ensure_bootstrap_policy
from kins.apiserver.kubeconfig import render_kubeconfig
from kins.apiserver.tokens import SigningKey, legacy_claims
from kins.control.base import Controller, run_until_stable
from kins.control.clusterroles import ClusterRoleAggregation
from kins.control.serviceaccounts import ServiceAccountController
from kins.store.memory import MemoryStore


@dataclass
class IdentityApi:
    api: TlsApi
    key: SigningKey
    state: Path

    @property
    def store(self) -> MemoryStore:
        assert isinstance(self.api.store, MemoryStore)
        return self.api.store

    @property
    def ca_pem(self) -> bytes:
        return (self.state / CERT_FILE).read_bytes()

    def admin(self, version: str) -> Kubectl:
        return self.api.kubectl(version)

    def as_token(self, version: str, token: str, name: str = "sa") -> Kubectl:
        """kubectl with a kubeconfig whose user is ``token`` (a ServiceAccount's)."""
        kc = self.state / f"{name}.kubeconfig"
        kc.write_text(render_kubeconfig(name, self.api.url, self.ca_pem, token))
        kc.chmod(0o600)
        return kubectl_for(version, kc)

    def converge(self) -> None:
        """The ServiceAccount, root CA, token Secret and aggregation controllers, to a standstill."""

        def sign(ns: str, secret: str, sa: str, uid: str) -> str:
            return self.key.sign(legacy_claims(ns, secret, sa, uid))

        ctrls: list[Controller] = [
            ServiceAccountController(self.store, self.ca_pem, sign),
            ClusterRoleAggregation(self.store),
        ]
        run_until_stable(self.store, ctrls)


@contextmanager
def identity_api(tmp_path: Path) -> Iterator[IdentityApi]:
    key = SigningKey.generate()
    state = tmp_path / "state"
    store = MemoryStore(history=1000)
    ensure_bootstrap_policy(store)  # as the daemon does before it serves
    with tls_api(store, state, signing_key=key) as api:
        yield IdentityApi(api, key, state)


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims (not verified: the API does that)."""
    part = token.split(".")[1]
    doc = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(doc, dict)
    return doc


def apply(k: Kubectl, text: str) -> str:
    """``kubectl create -f -``."""
    return k("create", "-f", "-", input=text)
