"""The offline kubelet: starts every pod bound to a node, on paper.

It does what the kubelet and the CNI plugin report for a pod that came up: an address from the
node's subnet (lowest free, see ipam), phase Running, all conditions True, a running status per
container, hostIP and startTime. Only pods that never started are touched, so a status written
later (a pod marked unready, say) stays as written. ``kins render`` uses this; the live kubelet
reports real state instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec.structs import replace

from .._errors import AllocationError, NotFound
from ..api.core import ContainerState, ContainerStateRunning, ContainerStatus, Node, Pod, PodIP, PodStatus
from ..api.meta import Condition
from ..store.base import DELETED, Clock, Store, WatchEvent
from .base import merge_conditions
from .ipam import allocate_pod_ip, held_pod_ip

_READY_TYPES = ("Initialized", "Ready", "ContainersReady", "PodScheduled")


def started(p: Pod) -> bool:
    return p.status is not None and p.status.startTime is not None


def running_status(pod: Pod, host_ip: str | None, pod_ip: str, now: str) -> PodStatus:
    old = pod.status or PodStatus()
    conds = merge_conditions(old.conditions, [Condition(type=t, status="True") for t in _READY_TYPES], now)
    containers = [
        ContainerStatus(
            name=c.name,
            ready=True,
            restartCount=0,
            image=c.image,
            imageID="",
            containerID=f"kins://{pod.metadata.uid}/{c.name}",
            started=True,
            state=ContainerState(running=ContainerStateRunning(startedAt=now)),
        )
        for c in pod.spec.containers
    ]
    return replace(
        old,
        phase="Running",
        conditions=conds,
        hostIP=host_ip,
        hostIPs=[PodIP(ip=host_ip)] if host_ip else None,
        podIP=pod_ip,
        podIPs=[PodIP(ip=pod_ip)],
        startTime=now,
        containerStatuses=containers or None,
        qosClass=old.qosClass or "BestEffort",
        reason=None,
        message=None,
    )


class KubeletSim:
    name = "kubelet-sim"
    kinds = frozenset({"Pod", "Node"})

    def __init__(self, store: Store) -> None:
        self.store = store
        self._clock = Clock()

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Node):
            return () if ev.type == DELETED else (o.name,)
        assert isinstance(o, Pod)
        if ev.type == DELETED or not o.spec.nodeName or started(o) or o.terminating:
            return ()
        return (o.spec.nodeName,)

    def start_keys(self) -> Iterable[str]:
        return ()

    def reconcile(self, key: str) -> bool:
        try:
            node = self.store.get("Node", None, key)
        except NotFound:
            return False
        assert isinstance(node, Node)
        pods = [p for p in self.store.list("Pod")[0] if isinstance(p, Pod) and p.spec.nodeName == key]
        used = {ip for p in pods if (ip := held_pod_ip(p))}
        todo = sorted(
            (p for p in pods if not started(p) and not p.terminating),
            key=lambda p: (p.metadata.creationTimestamp or "", int(p.metadata.resourceVersion or 0), p.key),
        )
        host_ip = node.internal_ip
        now = self._clock.now()
        changed = False
        for p in todo:
            if p.spec.hostNetwork:
                ip = host_ip or ""
            elif not node.spec.podCIDR:
                continue
            else:
                try:
                    ip = allocate_pod_ip(node.spec.podCIDR, used, key)
                except AllocationError as e:
                    st = p.status or PodStatus(phase="Pending")
                    if st.message != str(e):
                        self.store.update(
                            replace(p, status=replace(st, reason="FailedCreatePodSandBox", message=str(e)))
                        )
                        changed = True
                    continue
                used.add(ip)
            self.store.update(replace(p, status=running_status(p, host_ip, ip, now)))
            changed = True
        return changed
