"""Pod volumes as the kubelet prepares them: emptyDir, configMap, secret and hostPath.

All containers of a pod share its sandbox's mount namespace here, so a pod's volume mounts are
the union of its containers' ``volumeMounts``, bind-mounted into the sandbox.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from ..._errors import KinsError, NotFound
from ...api.core import ConfigMap, ConfigMapVolumeSource, Pod, Secret, SecretVolumeSource, Volume
from ...runtime.runtime import pod_dir_name
from ...store.base import Store


class PodVolumes:
    def __init__(self, store: Store, state_dir: Path) -> None:
        self.store = store
        self.state_dir = state_dir

    def dir(self, key: str) -> Path:
        return self.state_dir / "pods" / pod_dir_name(key) / "volumes"

    def remove(self, key: str) -> None:
        """The pod's volumes go with it (emptyDir data included); hostPath volumes are never in
        here."""
        shutil.rmtree(self.dir(key), ignore_errors=True)

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
        kind = next((k for k in v.__struct_fields__ if k != "name" and getattr(v, k) is not None), "?")
        raise KinsError(
            f"volume {v.name}: {kind} volumes are not supported (emptyDir, configMap, secret and hostPath are)"
        )

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
            raise KinsError(f'MountVolume.SetUp failed for volume "{v.name}" : {what} not found')
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
                    raise KinsError(f'MountVolume.SetUp failed for volume "{v.name}" : {what} has no key {key!r}')
                out[it.path or key] = (data[key], it.mode or mode)
        for rel in out:
            if not rel or os.path.isabs(rel) or ".." in Path(rel).parts:
                raise KinsError(f"volume {v.name!r}: bad file path {rel!r}")
        return out

    def write_api_volume(self, ns: str, v: Volume, path: Path) -> None:
        """Write (or bring up to date) a configMap or secret volume's files; each file replaced
        at once, so a pod never reads half of one."""
        files = self._api_volume_files(ns, v)
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
