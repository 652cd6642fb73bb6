"""The ServiceAccount admission a pod passes on creation, as the API server's plugin does it.

The pod runs as ``spec.serviceAccountName`` (``default`` when it names none; the deprecated
``serviceAccount`` mirrors it), and unless the pod or its ServiceAccount opts out
(``automountServiceAccountToken: false``) it gets the ``kube-api-access-<rand>`` projected
volume (a token bound to the pod, the cluster's CA certificate, its namespace) mounted read-only
at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container.
"""

from __future__ import annotations

import random

from msgspec.structs import replace

from .._errors import NotFound
from ..api.core import (
    ConfigMapProjection,
    Container,
    DownwardAPIProjection,
    DownwardAPIVolumeFile,
    FieldSelector,
    KeyToPath,
    Pod,
    ProjectedVolumeSource,
    ServiceAccountTokenProjection,
    Volume,
    VolumeMount,
    VolumeProjection,
)
from ..api.rbac import ServiceAccount
from ..store.base import Store, random_suffix

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# An hour plus a little, so that a pod's first token is told apart from ones kubelet renews.
TOKEN_EXPIRATION = 3607
DEFAULT_MODE = 0o644

_RNG = random.Random()


def api_access_volume(name: str) -> Volume:
    return Volume(
        name=name,
        projected=ProjectedVolumeSource(
            defaultMode=DEFAULT_MODE,
            sources=[
                VolumeProjection(
                    serviceAccountToken=ServiceAccountTokenProjection(expirationSeconds=TOKEN_EXPIRATION, path="token")
                ),
                VolumeProjection(
                    configMap=ConfigMapProjection(
                        name=ROOT_CA_CONFIGMAP, items=[KeyToPath(key="ca.crt", path="ca.crt")]
                    )
                ),
                VolumeProjection(
                    downwardAPI=DownwardAPIProjection(
                        items=[
                            DownwardAPIVolumeFile(
                                path="namespace",
                                fieldRef=FieldSelector(apiVersion="v1", fieldPath="metadata.namespace"),
                            )
                        ]
                    )
                ),
            ],
        ),
    )


def _mounted(c: Container) -> bool:
    return any(vm.mountPath.rstrip("/") == MOUNT_PATH for vm in c.volumeMounts or [])


def _with_mount(c: Container, volume: str) -> Container:
    if _mounted(c):
        return c
    vm = VolumeMount(name=volume, readOnly=True, mountPath=MOUNT_PATH)
    return replace(c, volumeMounts=[*(c.volumeMounts or []), vm])


def admit_pod(store: Store, pod: Pod) -> Pod:
    """``pod`` as admission leaves it on creation (the same object when nothing changes)."""
    spec = pod.spec
    name = spec.serviceAccountName or spec.serviceAccount or "default"
    if spec.serviceAccountName != name or spec.serviceAccount != name:
        spec = replace(spec, serviceAccountName=name, serviceAccount=name)
    automount = spec.automountServiceAccountToken
    if automount is None:
        try:
            sa = store.get("ServiceAccount", pod.namespace, name)
            if isinstance(sa, ServiceAccount) and sa.automountServiceAccountToken is False:
                automount = False
        except NotFound:
            pass
    has_volume = any(v.name.startswith(VOLUME_PREFIX) and v.projected is not None for v in spec.volumes or [])
    if automount is not False and not has_volume:
        taken = {v.name for v in spec.volumes or []}
        vol = VOLUME_PREFIX + random_suffix(_RNG)
        while vol in taken:
            vol = VOLUME_PREFIX + random_suffix(_RNG)
        spec = replace(
            spec,
            volumes=[*(spec.volumes or []), api_access_volume(vol)],
            containers=[_with_mount(c, vol) for c in spec.containers],
            initContainers=[_with_mount(c, vol) for c in spec.initContainers] if spec.initContainers else None,
        )
    return pod if spec is pod.spec else replace(pod, spec=spec)
