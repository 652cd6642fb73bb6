"""The kubelet's side of ``kube-api-access-*``: the projected volume's files written from a real
API (a TokenRequest bound to the pod, the root CA ConfigMap, the namespace), the token renewed
once 80% of its life has passed, and the CA file rewritten when its ConfigMap changes."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from identity_kit import IdentityApi, apply, claims_of, identity_api
from msgspec.structs import replace

from kins._errors import KinsError
from kins.agents.kubelet.volumes import PodVolumes, request_pod_token
from kins.api.core import ConfigMap, Pod, ServiceAccountTokenProjection
from kins.client import Client

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: team}
spec:
  containers: [{name: c, image: busybox}]
"""


@pytest.fixture
def ida(tmp_path: Path) -> Iterator[IdentityApi]:
    with identity_api(tmp_path) as a:
        apply(a.admin("1.33"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n")
        a.converge()  # team/default and team/kube-root-ca.crt
        apply(a.admin("1.33"), POD)
        yield a


def test_projected_files_and_renewal(ida: IdentityApi, tmp_path: Path) -> None:
    pod = ida.store.get("Pod", "team", "web")
    assert isinstance(pod, Pod)
    (vol,) = pod.spec.volumes or []
    client = Client(ida.api.url, ida.api.token, ca_file=ida.state / "apiserver.crt")
    requested: list[float] = []

    def token_source(p: Pod, proj: ServiceAccountTokenProjection) -> tuple[str, float]:
        requested.append(time.time())
        return request_pod_token(client, p, proj)

    volumes = PodVolumes(ida.store, tmp_path / "kubelet", token_source)
    ((src, dst, read_only),) = volumes.mounts(pod)
    assert dst == "/var/run/secrets/kubernetes.io/serviceaccount" and read_only
    files = Path(src)
    assert sorted(p.name for p in files.iterdir()) == ["ca.crt", "namespace", "token"]
    assert (files / "namespace").read_text() == "team"
    assert (files / "ca.crt").read_bytes() == ida.ca_pem
    assert stat.S_IMODE((files / "token").stat().st_mode) == 0o644
    first = (files / "token").read_text()
    claims = claims_of(first)
    assert claims["sub"] == "system:serviceaccount:team:default"
    assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": pod.metadata.uid}
    assert claims["exp"] - claims["iat"] == 3607
    # The token is who the pod is, while the pod exists.
    who = ida.as_token("1.33", first)("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert who == "system:serviceaccount:team:default"

    # Not due yet: nothing is requested. Past 80% of its life: a new token.
    ran: list[object] = []
    volumes.tokens_due([pod], lambda fn, *args: ran.append(fn(*args)))
    assert ran == [] and len(requested) == 1
    volumes.tokens_due([pod], lambda fn, *args: ran.append(fn(*args)), now=time.time() + 0.81 * 3607)
    assert len(ran) == 1 and len(requested) == 2
    second = (files / "token").read_text()
    assert second != first and claims_of(second)["jti"] != claims["jti"]

    # The root CA ConfigMap changes: the volume's ca.crt follows.
    cm = ida.store.get("ConfigMap", "team", "kube-root-ca.crt")
    assert isinstance(cm, ConfigMap)
    ida.store.update(replace(cm, data={"ca.crt": "rotated\n"}))
    volumes.refresh([pod], {("ConfigMap", "team", "kube-root-ca.crt")}, lambda fn, *args: fn(*args))
    assert (files / "ca.crt").read_text() == "rotated\n"
    assert vol.name in volumes.renew[pod.key]
    volumes.remove(pod.key)
    assert not files.exists() and pod.key not in volumes.renew
    client.close()


def test_a_token_for_a_missing_service_account_fails_the_volume(ida: IdentityApi, tmp_path: Path) -> None:
    apply(
        ida.admin("1.33"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: lost, namespace: team}\n"
        "spec:\n  serviceAccountName: ghost\n  containers: [{name: c, image: busybox}]\n",
    )
    pod = ida.store.get("Pod", "team", "lost")
    assert isinstance(pod, Pod)
    client = Client(ida.api.url, ida.api.token, ca_file=ida.state / "apiserver.crt")
    volumes = PodVolumes(ida.store, tmp_path / "kubelet", lambda p, proj: request_pod_token(client, p, proj))
    failed = r'MountVolume.SetUp failed for volume "kube-api-access-\w{5}" : failed to fetch token: '
    with pytest.raises(KinsError, match=failed + r'.*serviceaccounts "ghost" not found'):
        volumes.mounts(pod)
    client.close()
