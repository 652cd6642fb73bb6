"""Pod volumes as the kubelet prepares them: emptyDir, configMap, secret, hostPath, projected
(secrets, configMaps, downward API fields and ServiceAccount tokens: the ``kube-api-access-*``
volume every pod gets), and persistentVolumeClaim and ephemeral (the bound PersistentVolume's
``hostPath`` or ``local`` directory).

A projected token is requested from the API (TokenRequest, bound to the pod) and renewed, like
kubelet's token manager does, once 80% of its life has passed.

All containers of a pod share its sandbox's mount namespace here, so a pod's volume mounts are
the union of its containers' ``volumeMounts``, bind-mounted into the sandbox.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..._errors import KinsError, NotFound
from ...api.core import (
    ConfigMap,
    ConfigMapVolumeSource,
    DownwardAPIVolumeFile,
    KeyToPath,
    Pod,
    Secret,
    SecretVolumeSource,
    ServiceAccountTokenProjection,
    Volume,
)
from ...api.storage import PersistentVolume, PersistentVolumeClaim
from ...client import Client
from ...runtime.runtime import pod_dir_name
from ...store.base import Store

# (pod, projection) -> (token, its expiry as a Unix time): a TokenRequest for the pod.
TokenSource = Callable[[Pod, ServiceAccountTokenProjection], tuple[str, float]]
RENEW_AT = 0.8  # of a token's life, as kubelet's token manager renews
DEFAULT_TOKEN_SECONDS = 3600


class VolumeError(KinsError):
    """A volume that cannot be set up yet (its claim is missing or unbound): the pod waits."""


class PodVolumes:
    def __init__(self, store: Store, state_dir: Path, request_token: TokenSource | None = None) -> None:
        self.store = store
        self.state_dir = state_dir
        self.request_token = request_token
        # pod key -> volume name -> when its token must be renewed (a Unix time)
        self.renew: dict[str, dict[str, float]] = {}

    def dir(self, key: str) -> Path:
        return self.state_dir / "pods" / pod_dir_name(key) / "volumes"

    def remove(self, key: str) -> None:
        """The pod's volumes go with it (emptyDir data included); hostPath volumes are never in
        here."""
        shutil.rmtree(self.dir(key), ignore_errors=True)
        self.renew.pop(key, None)

    def tokens_due(self, pods: Iterable[Pod], submit: Callable[..., None], now: float | None = None) -> None:
        """Projected volumes of running ``pods`` whose token is due for renewal are rewritten."""
        now = time.time() if now is None else now
        for pod in pods:
            due = self.renew.get(pod.key, {})
            for v in pod.spec.volumes or []:
                at = due.get(v.name)
                if v.projected is not None and at is not None and at <= now:
                    due[v.name] = now + 60  # not again while this renewal is under way
                    submit(self.write_projected, pod, v, self.dir(pod.key) / v.name)

    def refresh(
        self,
        pods: Iterable[Pod],
        changed: Collection[tuple[str, str | None, str]],
        submit: Callable[..., None],
    ) -> None:
        """ConfigMaps or Secrets (kind, namespace, name) ``changed``: the volumes of running
        ``pods`` that mount them are rewritten (by ``submit``), so the pods see the new files."""
        for pod in pods:
            for v in pod.spec.volumes or []:
                ref = ("ConfigMap", v.configMap.name) if v.configMap is not None else None
                if v.secret is not None:
                    ref = ("Secret", v.secret.secretName)
                if ref is not None and (ref[0], pod.namespace, ref[1]) in changed:
                    path = self.dir(pod.key) / v.name
                    submit(self.write_api_volume, pod.namespace, v, path)
                if v.projected is not None and any((k, pod.namespace, n) in changed for k, n in _projected_refs(v)):
                    submit(self.write_projected, pod, v, self.dir(pod.key) / v.name)

    def mounts(self, pod: Pod) -> list[tuple[str, str, bool]]:
        """(host path, pod path, read only) for every volumeMount of the pod's containers; their
        volumes are made ready here. The containers share one mount namespace: the union."""
        vols = {v.name: v for v in pod.spec.volumes or []}
        base = self.dir(pod.key)
        sources: dict[str, tuple[Path, bool]] = {}
        out: dict[str, tuple[str, bool]] = {}
        for c in [*(pod.spec.initContainers or []), *pod.spec.containers]:
            for vm in c.volumeMounts or []:
                name, dst = vm.name, vm.mountPath
                v = vols.get(name)
                if v is None:
                    raise KinsError(f"container {c.name}: volumeMount {name!r} names no volume of the pod")
                if name not in sources:
                    sources[name] = self._prepare(pod, v, base / name)
                src, read_only = sources[name]
                sub = vm.subPath
                if sub:
                    if os.path.isabs(sub) or ".." in Path(sub).parts:
                        raise KinsError(
                            f"container {c.name}: subPath {sub!r} must be a relative path inside the volume"
                        )
                    src = src / sub
                    if v.emptyDir is not None:
                        src.mkdir(parents=True, exist_ok=True)  # as kubelet does for a new subPath
                want = (str(src), read_only or bool(vm.readOnly))
                if out.setdefault(os.path.normpath(dst), want) != want:
                    raise KinsError(
                        f"two different volumes at {dst}: kins runs a pod's containers in one mount namespace"
                    )
        return [(src, dst, ro) for dst, (src, ro) in out.items()]

    def _prepare(self, pod: Pod, v: Volume, path: Path) -> tuple[Path, bool]:
        """The host directory (or file) of one volume, and whether it is mounted read-only."""
        if v.emptyDir is not None:
            path.mkdir(parents=True, exist_ok=True)
            return path, False
        if v.hostPath is not None:
            return Path(v.hostPath.path or "/nonexistent"), False
        if v.configMap is not None or v.secret is not None:
            self.write_api_volume(pod.namespace, v, path)
            return path, True  # like kubelet: configMap and secret volumes are read-only
        if v.projected is not None:
            self.write_projected(pod, v, path)
            return path, True
        if v.persistentVolumeClaim is not None:
            return self._claim_dir(pod.namespace, v.persistentVolumeClaim.claimName), bool(
                v.persistentVolumeClaim.readOnly
            )
        if v.ephemeral is not None:  # its claim, made by the ephemeral volume controller
            return self._claim_dir(pod.namespace, f"{pod.name}-{v.name}"), False
        kind = next((k for k in v.__struct_fields__ if k != "name" and getattr(v, k) is not None), "?")
        raise KinsError(
            f"volume {v.name}: {kind} volumes are not supported "
            "(emptyDir, configMap, secret, hostPath, projected, persistentVolumeClaim and ephemeral are)"
        )

    def _claim_dir(self, ns: str, name: str) -> Path:
        """The directory of the volume bound to claim ``ns/name``, in the kubelet's words when
        there is none yet."""
        try:
            pvc = self.store.get("PersistentVolumeClaim", ns, name)
        except NotFound:
            raise VolumeError(f'persistentvolumeclaim "{name}" not found') from None
        assert isinstance(pvc, PersistentVolumeClaim)
        phase = (pvc.status.phase if pvc.status else None) or ""
        if phase != "Bound" or not pvc.spec.volumeName:
            raise VolumeError(
                f"error processing PVC {ns}/{name}: PVC is not bound "
                f'(phase "{phase}", volumeName "{pvc.spec.volumeName or ""}")'
            )
        try:
            pv = self.store.get("PersistentVolume", None, pvc.spec.volumeName)
        except NotFound:
            raise VolumeError(f'persistentvolume "{pvc.spec.volumeName}" not found') from None
        assert isinstance(pv, PersistentVolume)
        if pv.spec.hostPath is not None:
            path = Path(pv.spec.hostPath.path)
            if pv.spec.hostPath.type == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
        elif pv.spec.local is not None:
            path = Path(pv.spec.local.path)
        else:
            kind = next((k for k in ("nfs", "csi", "iscsi", "rbd", "cephfs") if getattr(pv.spec, k) is not None), "?")
            raise KinsError(f"volume {pv.name}: {kind} volumes are not supported (hostPath and local are)")
        if not path.exists():
            raise VolumeError(f"MountVolume.SetUp failed for volume {pv.name!r}: path {path} does not exist")
        return path

    def _api_volume_files(self, ns: str, v: Volume) -> dict[str, tuple[bytes, int]]:
        """A configMap or secret volume's files: relative path -> (content, mode)."""
        data: dict[str, bytes] = {}
        src: ConfigMapVolumeSource | SecretVolumeSource
        if v.configMap is not None:
            src = v.configMap
            what = f'configmap "{src.name}"'
            try:
                cm = self.store.get("ConfigMap", ns, src.name or "")
            except NotFound:
                cm = None
            if isinstance(cm, ConfigMap):
                data = {k: val.encode() for k, val in (cm.data or {}).items()}
                data.update({k: base64.b64decode(val) for k, val in (cm.binaryData or {}).items()})
            found = cm is not None
        else:
            src = v.secret or SecretVolumeSource()
            what = f'secret "{src.secretName}"'
            try:
                sec = self.store.get("Secret", ns, src.secretName or "")
            except NotFound:
                sec = None
            if isinstance(sec, Secret):
                data = {k: base64.b64decode(val) for k, val in (sec.data or {}).items()}
                data.update({k: val.encode() for k, val in (sec.stringData or {}).items()})
            found = sec is not None
        if not found:
            if src.optional:
                return {}
            raise _mount_failed(v.name, f"{what} not found")
        mode = src.defaultMode or 0o644
        items = src.items
        if not items:
            out = {k: (val, mode) for k, val in data.items()}
        else:
            out = {}
            for it in items:
                key = it.key
                if key not in data:
                    if src.optional:
                        continue
                    raise _mount_failed(v.name, f"{what} has no key {key!r}")
                out[it.path or key] = (data[key], it.mode or mode)
        for rel in out:
            if not rel or os.path.isabs(rel) or ".." in Path(rel).parts:
                raise KinsError(f"volume {v.name!r}: bad file path {rel!r}")
        return out

    def write_api_volume(self, ns: str, v: Volume, path: Path) -> None:
        """Write (or bring up to date) a configMap or secret volume's files; each file replaced
        at once, so a pod never reads half of one."""
        _write_files(path, self._api_volume_files(ns, v))

    # --- projected ------------------------------------------------------------------------------

    def write_projected(self, pod: Pod, v: Volume, path: Path) -> None:
        """Write (or bring up to date) a projected volume's files; its token, if it has one,
        freshly requested."""
        assert v.projected is not None
        mode = v.projected.defaultMode if v.projected.defaultMode is not None else 0o644
        files: dict[str, tuple[bytes, int]] = {}
        for src in v.projected.sources or []:
            if src.serviceAccountToken is not None:
                files[src.serviceAccountToken.path] = (self._token(pod, v, src.serviceAccountToken), mode)
            elif src.configMap is not None or src.secret is not None:
                files.update(self._projected_data(pod.namespace, src, mode, v.name))
            elif src.downwardAPI is not None:
                for item in src.downwardAPI.items or []:
                    files[item.path] = (_downward_value(pod, item, v.name).encode(), item.mode or mode)
        for rel in files:
            if not rel or os.path.isabs(rel) or ".." in Path(rel).parts:
                raise KinsError(f"volume {v.name!r}: bad file path {rel!r}")
        _write_files(path, files)

    def _token(self, pod: Pod, v: Volume, proj: ServiceAccountTokenProjection) -> bytes:
        if self.request_token is None:
            raise _mount_failed(v.name, "no API to request a token from")
        try:
            token, exp = self.request_token(pod, proj)
        except KinsError as e:
            raise _mount_failed(v.name, f"failed to fetch token: {e}") from None
        now = time.time()
        self.renew.setdefault(pod.key, {})[v.name] = now + RENEW_AT * max(exp - now, 0)
        return token.encode()

    def _projected_data(self, ns: str, src: Any, mode: int, volume: str) -> dict[str, tuple[bytes, int]]:
        if src.configMap is not None:
            ref, kind = src.configMap, "ConfigMap"
        else:
            ref, kind = src.secret, "Secret"
        try:
            obj = self.store.get(kind, ns, ref.name or "")
        except NotFound:
            if ref.optional:
                return {}
            raise _mount_failed(volume, f'{kind.lower()} "{ref.name}" not found') from None
        data: dict[str, bytes] = {}
        if isinstance(obj, ConfigMap):
            data = {k: val.encode() for k, val in (obj.data or {}).items()}
            data.update({k: base64.b64decode(val) for k, val in (obj.binaryData or {}).items()})
        elif isinstance(obj, Secret):
            data = {k: base64.b64decode(val) for k, val in (obj.data or {}).items()}
            data.update({k: val.encode() for k, val in (obj.stringData or {}).items()})
        items: list[KeyToPath] = ref.items or []
        if not items:
            return {k: (val, mode) for k, val in data.items()}
        out: dict[str, tuple[bytes, int]] = {}
        for it in items:
            if it.key not in data:
                if ref.optional:
                    continue
                raise _mount_failed(volume, f'{kind.lower()} "{ref.name}" has no key "{it.key}"')
            out[it.path or it.key] = (data[it.key], it.mode or mode)
        return out


def request_pod_token(client: Client, pod: Pod, proj: ServiceAccountTokenProjection) -> tuple[str, float]:
    """A TokenRequest for the pod's ServiceAccount, bound to the pod: (token, its expiry)."""
    spec: dict[str, Any] = {
        "expirationSeconds": proj.expirationSeconds or DEFAULT_TOKEN_SECONDS,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod.name, "uid": pod.metadata.uid or ""},
    }
    if proj.audience:
        spec["audiences"] = [proj.audience]
    sa = pod.spec.serviceAccountName or "default"
    path = f"/api/v1/namespaces/{pod.namespace}/serviceaccounts/{sa}/token"
    body = client.raw_post(path, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    status = (body.get("status") if isinstance(body, dict) else None) or {}
    try:
        exp = datetime.strptime(str(status.get("expirationTimestamp")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise KinsError(f"the API answered a TokenRequest without an expiry: {body!r}") from None
    return str(status.get("token", "")), exp.timestamp()


def _projected_refs(v: Volume) -> list[tuple[str, str]]:
    """(kind, name) of the ConfigMaps and Secrets a projected volume reads."""
    out: list[tuple[str, str]] = []
    for src in (v.projected.sources if v.projected is not None else None) or []:
        if src.configMap is not None:
            out.append(("ConfigMap", src.configMap.name or ""))
        if src.secret is not None:
            out.append(("Secret", src.secret.name or ""))
    return out


def _mount_failed(volume: str, detail: str) -> VolumeError:
    """A volume that cannot be set up, in the words of kubelet's FailedMount events."""
    return VolumeError(f'MountVolume.SetUp failed for volume "{volume}" : {detail}')


def _downward_value(pod: Pod, item: DownwardAPIVolumeFile, volume: str) -> str:
    if item.fieldRef is None:
        raise _mount_failed(volume, f"only fieldRef downward API items are supported, not {item.path!r}")
    path = item.fieldRef.fieldPath
    m = pod.metadata
    simple = {
        "metadata.name": m.name,
        "metadata.namespace": pod.namespace,
        "metadata.uid": m.uid or "",
        "spec.nodeName": pod.spec.nodeName or "",
        "spec.serviceAccountName": pod.spec.serviceAccountName or "",
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        values = (m.labels if path == "metadata.labels" else m.annotations) or {}
        return "".join(f'{k}="{val}"\n' for k, val in sorted(values.items())).rstrip("\n")
    raise _mount_failed(volume, f"unsupported fieldPath {path!r}")


def _write_files(path: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Each file replaced at once (a pod never reads half of one); files no longer there go."""
    path.mkdir(parents=True, exist_ok=True)
    before = {str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()}
    for rel, (content, mode) in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and target.read_bytes() == content and target.stat().st_mode & 0o7777 == mode:
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    for rel in before - set(files):
        (path / rel).unlink(missing_ok=True)
