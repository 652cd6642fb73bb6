"""``kubectl describe`` pages for Service, Pod, Node and Deployment.

kubectl writes each page as indented, tab-separated lines and aligns them with
text/tabwriter (padding 2); :func:`~kins.views.common.tabwrite` reproduces that, so the label
column width follows the same block rules (a line without a tab starts a new block).
Timestamps are printed in UTC in Go's RFC1123Z layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from ..api.apps import Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment
from ..api.core import (
    Container,
    ContainerState,
    ContainerStatus,
    Endpoints,
    Node,
    NodeSystemInfo,
    Pod,
    PodTemplateSpec,
    Probe,
    ProjectedVolumeSource,
    Quantity,
    ResourceRequirements,
    Service,
    Toleration,
    Volume,
)
from ..api.discovery import EndpointSlice
from ..api.meta import Object
from .common import age, escape_terminal, format_label_selector, format_labels, join_host_port, rfc1123z, tabwrite
from .events import EventRow
from .table import format_endpoints

_MAX_ANNOTATION_LEN = 140
_SKIP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration"}


class _Page:
    """kubectl's PrefixWriter: every level indents two spaces."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def w(self, level: int, text: str) -> None:
        self.parts.append("  " * level + escape_terminal(text))

    def text(self) -> str:
        return tabwrite("".join(self.parts), minwidth=0, padding=2)


def _labels(p: _Page, title: str, labels: Mapping[str, str] | None) -> None:
    p.w(0, f"{title}:\t")
    if not labels:
        p.w(0, "<none>\n")
        return
    for i, k in enumerate(sorted(labels)):
        if i:
            p.w(0, "\t")
        p.w(0, f"{k}={labels[k]}\n")


def _shorten(s: str, n: int) -> str:
    return s[:n] + "..." if len(s) > n else s


def _annotations(p: _Page, annotations: Mapping[str, str] | None, title: str = "Annotations") -> None:
    p.w(0, f"{title}:\t")
    keys = sorted(k for k in annotations or {} if k not in _SKIP_ANNOTATIONS)
    if not keys or annotations is None:
        p.w(0, "<none>\n")
        return
    for i, k in enumerate(keys):
        if i:
            p.w(0, "\t")
        value = annotations[k].removesuffix("\n")
        if len(value) + len(k) + 2 > _MAX_ANNOTATION_LEN or "\n" in value:
            p.w(0, f"{k}:\n")
            for s in value.split("\n"):
                p.w(0, f"\t  {_shorten(s, _MAX_ANNOTATION_LEN - 2)}\n")
        else:
            p.w(0, f"{k}: {value}\n")


def _events(p: _Page, events: Sequence[EventRow] | None, now: datetime) -> None:
    if events is None:
        return
    if not events:
        p.w(0, "Events:\t<none>\n")
        return
    p.w(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    p.w(1, "----\t------\t----\t----\t-------\n")
    for e in events:
        first = age(e.first_timestamp, now)
        interval = f"{age(e.last_timestamp, now)} (x{e.count} over {first})" if e.count > 1 else first
        p.w(1, f"{e.type}\t{e.reason}\t{interval}\t{e.source}\t{e.message.strip()}\n")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _controller(obj: Object) -> str:
    for ref in obj.metadata.ownerReferences or []:
        if ref.controller:
            return f"{ref.kind}/{ref.name}"
    return ""


# --- Service ----------------------------------------------------------------------------------


def format_endpoint_slices(slices: Sequence[EndpointSlice], port_names: set[str] | None = None) -> str:
    """kubectl's summary of a service's ready endpoints from its EndpointSlices."""
    if not slices:
        return "<none>"
    items: list[str] = []
    limit = 3
    more = False
    count = 0
    for s in slices:
        endpoints = s.endpoints or []
        if not s.ports:
            for e in endpoints:
                if len(items) == limit:
                    more = True
                if e.conditions is not None and e.conditions.ready is False:
                    continue
                if not more:
                    items.append(e.addresses[0])
                count += 1
            continue
        for port in s.ports:
            if port_names is not None and (port.name or "") not in port_names:
                continue
            for e in endpoints:
                if len(items) == limit:
                    more = True
                if e.conditions is not None and e.conditions.ready is False:
                    continue
                if not more:
                    items.append(join_host_port(e.addresses[0], port.port if port.port is not None else ""))
                count += 1
    text = ",".join(items)
    return f"{text} + {count - limit} more..." if more else text


def describe_service(
    svc: Service,
    endpoints: Endpoints | Sequence[EndpointSlice] | None,
    events: Sequence[EventRow] | None = (),
    *,
    now: datetime | None = None,
) -> str:
    """``kubectl describe service``. ``endpoints`` is the service's Endpoints object or its
    EndpointSlices; ``events=None`` leaves the Events section out (``--show-events=false``)."""
    spec = svc.spec
    p = _Page()
    p.w(0, f"Name:\t{svc.name}\n")
    p.w(0, f"Namespace:\t{svc.namespace}\n")
    _labels(p, "Labels", svc.metadata.labels)
    _annotations(p, svc.metadata.annotations)
    p.w(0, f"Selector:\t{format_labels(spec.selector)}\n")
    p.w(0, f"Type:\t{spec.type}\n")
    if spec.ipFamilyPolicy is not None:
        p.w(0, f"IP Family Policy:\t{spec.ipFamilyPolicy}\n")
    p.w(0, f"IP Families:\t{','.join(spec.ipFamilies) if spec.ipFamilies else '<none>'}\n")
    p.w(0, f"IP:\t{spec.clusterIP or ''}\n")
    ips = spec.clusterIPs or ([spec.clusterIP] if spec.clusterIP else [])
    p.w(0, f"IPs:\t{','.join(ips) if ips else '<none>'}\n")
    if spec.externalIPs:
        p.w(0, f"External IPs:\t{','.join(spec.externalIPs)}\n")
    if spec.loadBalancerIP:
        p.w(0, f"Desired LoadBalancer IP:\t{spec.loadBalancerIP}\n")
    if spec.externalName:
        p.w(0, f"External Name:\t{spec.externalName}\n")
    lb = svc.status.loadBalancer.ingress if svc.status and svc.status.loadBalancer else None
    if lb:
        shown = []
        for i in lb:
            if i.ip:
                shown.append(i.ip + (f" ({i.ipMode})" if i.ipMode else ""))
            else:
                shown.append(i.hostname or "")
        p.w(0, f"LoadBalancer Ingress:\t{', '.join(shown)}\n")
    for sp in spec.ports or []:
        name = sp.name or "<unset>"
        p.w(0, f"Port:\t{name}\t{sp.port}/{sp.protocol}\n")
        target = sp.targetPort if sp.targetPort is not None else sp.port
        p.w(0, f"TargetPort:\t{target}/{sp.protocol}\n")
        if sp.appProtocol is not None:
            p.w(0, f"AppProtocol:\t{sp.appProtocol}\n")
        if sp.nodePort:
            p.w(0, f"NodePort:\t{name}\t{sp.nodePort}/{sp.protocol}\n")
        names = {sp.name or ""}
        if isinstance(endpoints, Endpoints) or endpoints is None:
            shown_eps = format_endpoints(endpoints, names)
        else:
            shown_eps = format_endpoint_slices(list(endpoints), names)
        p.w(0, f"Endpoints:\t{shown_eps}\n")
    # The API server defaults sessionAffinity to None.
    p.w(0, f"Session Affinity:\t{spec.sessionAffinity or 'None'}\n")
    if spec.externalTrafficPolicy:
        p.w(0, f"External Traffic Policy:\t{spec.externalTrafficPolicy}\n")
    if spec.internalTrafficPolicy is not None:
        p.w(0, f"Internal Traffic Policy:\t{spec.internalTrafficPolicy}\n")
    if spec.healthCheckNodePort:
        p.w(0, f"HealthCheck NodePort:\t{spec.healthCheckNodePort}\n")
    if spec.loadBalancerSourceRanges:
        p.w(0, f"LoadBalancer Source Ranges:\t{','.join(spec.loadBalancerSourceRanges)}\n")
    if spec.trafficDistribution is not None:
        p.w(0, f"Traffic Distribution:\t{spec.trafficDistribution}\n")
    _events(p, events, _now(now))
    return p.text()


# --- Pod --------------------------------------------------------------------------------------


def _ports(c: Container, host: bool) -> str:
    out = []
    for cp in c.ports or []:
        text = f"{(cp.hostPort or 0) if host else cp.containerPort}/{cp.protocol}"
        out.append(f"{text} ({cp.name})" if cp.name else text)
    return ", ".join(out)


def _probe(probe: Probe) -> str:
    attrs = (
        f"delay={probe.initialDelaySeconds or 0}s timeout={probe.timeoutSeconds or 1}s "
        f"period={probe.periodSeconds or 10}s #success={probe.successThreshold or 1} "
        f"#failure={probe.failureThreshold or 3}"
    )
    if probe.exec is not None:
        return f"exec [{' '.join(probe.exec.command or [])}] {attrs}"
    if probe.httpGet is not None:
        g = probe.httpGet
        scheme = (g.scheme or "HTTP").lower()
        return f"http-get {scheme}://{join_host_port(g.host or '', g.port)}{g.path or ''} {attrs}"
    if probe.tcpSocket is not None:
        return f"tcp-socket {probe.tcpSocket.host or ''}:{probe.tcpSocket.port} {attrs}"
    return f"unknown {attrs}"


def _container_state(p: _Page, title: str, state: ContainerState | None) -> None:
    state = state or ContainerState()
    if state.running is not None:
        p.w(2, f"{title}:\tRunning\n")
        p.w(3, f"Started:\t{rfc1123z(state.running.startedAt)}\n")
    elif state.waiting is not None:
        p.w(2, f"{title}:\tWaiting\n")
        if state.waiting.reason:
            p.w(3, f"Reason:\t{state.waiting.reason}\n")
    elif state.terminated is not None:
        t = state.terminated
        p.w(2, f"{title}:\tTerminated\n")
        if t.reason:
            p.w(3, f"Reason:\t{t.reason}\n")
        if t.message:
            p.w(3, f"Message:\t{t.message}\n")
        p.w(3, f"Exit Code:\t{t.exitCode or 0}\n")
        if t.signal:
            p.w(3, f"Signal:\t{t.signal}\n")
        p.w(3, f"Started:\t{rfc1123z(t.startedAt)}\n")
        p.w(3, f"Finished:\t{rfc1123z(t.finishedAt)}\n")
    else:
        p.w(2, f"{title}:\tWaiting\n")


def _containers(
    p: _Page, label: str, containers: list[Container], statuses: list[ContainerStatus], space: str = ""
) -> None:
    """``space`` indents the section inside a pod template (kubectl's describeContainers)."""
    by_name = {s.name: s for s in statuses}
    p.w(0, f"{space}{label}:{'' if containers else ' <none>'}\n")
    for c in containers:
        st = by_name.get(c.name)
        p.w(1, f"{' ' if space else ''}{c.name}:\n")
        if st is not None:
            p.w(2, f"Container ID:\t{st.containerID or ''}\n")
        p.w(2, f"Image:\t{c.image or ''}\n")
        if st is not None:
            p.w(2, f"Image ID:\t{st.imageID or ''}\n")
        ports = _ports(c, host=False)
        p.w(2, f"Ports:\t{ports}\n" if "," in ports else f"Port:\t{ports or '<none>'}\n")
        host_ports = _ports(c, host=True)
        p.w(2, f"Host Ports:\t{host_ports}\n" if "," in host_ports else f"Host Port:\t{host_ports or '<none>'}\n")
        for title, items in (("Command", c.command), ("Args", c.args)):
            if items:
                p.w(2, f"{title}:\n")
                for item in items:
                    for line in item.split("\n"):
                        p.w(3, f"{line}\n")
        if st is not None:
            _container_state(p, "State", st.state)
            if st.lastState is not None and st.lastState.terminated is not None:
                _container_state(p, "Last State", st.lastState)
            p.w(2, f"Ready:\t{'True' if st.ready else 'False'}\n")
            p.w(2, f"Restart Count:\t{st.restartCount}\n")
        for title, probe in (("Liveness", c.livenessProbe), ("Readiness", c.readinessProbe)):
            if probe is not None:
                p.w(2, f"{title}:\t{_probe(probe)}\n")
        if c.startupProbe is not None:
            p.w(2, f"Startup:\t{_probe(c.startupProbe)}\n")
        p.w(2, f"Environment:{'' if c.env else chr(9) + '<none>'}\n")
        for e in c.env or []:
            if e.valueFrom is None:
                for i, line in enumerate((e.value or "").split("\n")):
                    p.w(3, f"{e.name}:\t{line}\n" if i == 0 else f"\t{line}\n")
            elif e.valueFrom.secretKeyRef is not None:
                r = e.valueFrom.secretKeyRef
                opt = "true" if r.optional else "false"
                p.w(3, f"{e.name}:\t<set to the key '{r.key}' in secret '{r.name or ''}'>\tOptional: {opt}\n")
            elif e.valueFrom.configMapKeyRef is not None:
                r = e.valueFrom.configMapKeyRef
                opt = "true" if r.optional else "false"
                p.w(3, f"{e.name}:\t<set to the key '{r.key}' of config map '{r.name or ''}'>\tOptional: {opt}\n")
            elif e.valueFrom.fieldRef is not None:
                f = e.valueFrom.fieldRef
                p.w(3, f"{e.name}:\t ({f.apiVersion or 'v1'}:{f.fieldPath})\n")
        mounts = sorted(c.volumeMounts or [], key=lambda m: m.mountPath)
        p.w(2, f"Mounts:{'' if mounts else chr(9) + '<none>'}\n")
        for m in mounts:
            flags = ["ro" if m.readOnly else "rw"]
            if m.subPath:
                flags.append(f'path="{m.subPath}"')
            p.w(3, f"{m.mountPath} from {m.name} ({','.join(flags)})\n")


def _volumes(p: _Page, volumes: list[Volume] | None, space: str = "") -> None:
    if not volumes:
        p.w(0, f"{space}Volumes:\t<none>\n")
        return
    p.w(0, f"{space}Volumes:\n")
    for v in volumes:
        p.w(1, f"{' ' if space else ''}{v.name}:\n")
        if v.configMap is not None:
            p.w(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
            p.w(2, f"Name:\t{v.configMap.name or ''}\n")
            p.w(2, f"Optional:\t{'true' if v.configMap.optional else 'false'}\n")
        elif v.secret is not None:
            p.w(2, "Type:\tSecret (a volume populated by a Secret)\n")
            p.w(2, f"SecretName:\t{v.secret.secretName or ''}\n")
            p.w(2, f"Optional:\t{'true' if v.secret.optional else 'false'}\n")
        elif v.emptyDir is not None:
            p.w(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
            p.w(2, f"Medium:\t{v.emptyDir.medium or ''}\n")
            limit = v.emptyDir.sizeLimit
            p.w(2, f"SizeLimit:\t{limit if limit else '<unset>'}\n")
        elif v.persistentVolumeClaim is not None:
            p.w(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n")
            p.w(2, f"ClaimName:\t{v.persistentVolumeClaim.claimName}\n")
            p.w(2, f"ReadOnly:\t{'true' if v.persistentVolumeClaim.readOnly else 'false'}\n")
        elif v.hostPath is not None:
            p.w(2, "Type:\tHostPath (bare host directory volume)\n")
            p.w(2, f"Path:\t{v.hostPath.path}\n")
            p.w(2, f"HostPathType:\t{v.hostPath.type or ''}\n")
        elif v.projected is not None:
            _projected(p, v.projected)
        else:
            p.w(1, "<unknown>\n")


def _projected(p: _Page, projected: ProjectedVolumeSource) -> None:
    """kubectl's lines for a projected volume (a pod's ``kube-api-access-*`` among them), as 1.33
    prints them (up to 1.32 a configMap source's line read ``ConfigMapOptional: <nil>``)."""
    p.w(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
    for src in projected.sources or []:
        if src.secret is not None:
            p.w(2, f"SecretName:\t{src.secret.name or ''}\n")
            p.w(2, f"Optional:\t{'true' if src.secret.optional else 'false'}\n")
        elif src.downwardAPI is not None:
            p.w(2, "DownwardAPI:\ttrue\n")
        elif src.configMap is not None:
            p.w(2, f"ConfigMapName:\t{src.configMap.name or ''}\n")
            p.w(2, f"Optional:\t{'true' if src.configMap.optional else 'false'}\n")
        elif src.serviceAccountToken is not None:
            p.w(2, f"TokenExpirationSeconds:\t{src.serviceAccountToken.expirationSeconds or 0}\n")


def _qos(pod: Pod) -> str:
    if pod.status and pod.status.qosClass:
        return pod.status.qosClass
    requests: list[dict[str, Quantity]] = []
    limits: list[dict[str, Quantity]] = []
    for c in [*pod.spec.containers, *(pod.spec.initContainers or [])]:
        res = c.resources or ResourceRequirements()
        requests.append(res.requests or {})
        limits.append(res.limits or {})
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        {"cpu", "memory"} <= set(lim) and all(req.get(k, lim[k]) == lim[k] for k in ("cpu", "memory"))
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _tolerations(p: _Page, tolerations: list[Toleration] | None, title: str = "Tolerations") -> None:
    p.w(0, f"{title}:\t")
    if not tolerations:
        p.w(0, "<none>\n")
        return
    for i, t in enumerate(tolerations):
        if i:
            p.w(0, "\t")
        text = t.key or ""
        if t.value:
            text += f"={t.value}"
        if t.effect:
            text += f":{t.effect}"
        if t.operator == "Exists" and not t.value:
            text += " op=Exists" if t.key or t.effect else "op=Exists"
        if t.tolerationSeconds is not None:
            text += f" for {t.tolerationSeconds}s"
        p.w(0, text + "\n")


def describe_pod(pod: Pod, events: Sequence[EventRow] | None = (), *, now: datetime | None = None) -> str:
    """``kubectl describe pod`` (volumes, tolerations and probes in a reduced form)."""
    st = pod.status
    spec = pod.spec
    p = _Page()
    p.w(0, f"Name:\t{pod.name}\n")
    p.w(0, f"Namespace:\t{pod.namespace}\n")
    if spec.priority is not None:
        p.w(0, f"Priority:\t{spec.priority}\n")
    if spec.priorityClassName:
        p.w(0, f"Priority Class Name:\t{spec.priorityClassName}\n")
    if spec.serviceAccountName:
        p.w(0, f"Service Account:\t{spec.serviceAccountName}\n")
    if spec.nodeName:
        p.w(0, f"Node:\t{spec.nodeName}/{(st.hostIP if st else None) or ''}\n")
    else:
        p.w(0, "Node:\t<none>\n")
    if st and st.startTime:
        p.w(0, f"Start Time:\t{rfc1123z(st.startTime)}\n")
    _labels(p, "Labels", pod.metadata.labels)
    _annotations(p, pod.metadata.annotations)
    phase = (st.phase if st else None) or ""
    if pod.metadata.deletionTimestamp and phase not in ("Failed", "Succeeded"):
        p.w(0, f"Status:\tTerminating (lasts {age(pod.metadata.deletionTimestamp, _now(now))})\n")
        p.w(0, f"Termination Grace Period:\t{pod.metadata.deletionGracePeriodSeconds or 0}s\n")
    else:
        p.w(0, f"Status:\t{phase}\n")
    if st and st.reason:
        p.w(0, f"Reason:\t{st.reason}\n")
    if st and st.message:
        p.w(0, f"Message:\t{st.message}\n")
    p.w(0, f"IP:\t{(st.podIP if st else None) or ''}\n")
    pod_ips = [i.ip for i in (st.podIPs if st else None) or []] or ([st.podIP] if st and st.podIP else [])
    if pod_ips:
        p.w(0, "IPs:\n")
        for ip in pod_ips:
            p.w(1, f"IP:\t{ip}\n")
    else:
        p.w(0, "IPs:\t<none>\n")
    controlled_by = _controller(pod)
    if controlled_by:
        p.w(0, f"Controlled By:\t{controlled_by}\n")
    if st and st.nominatedNodeName:
        p.w(0, f"NominatedNodeName:\t{st.nominatedNodeName}\n")
    if spec.initContainers:
        _containers(p, "Init Containers", spec.initContainers, (st.initContainerStatuses if st else None) or [])
    _containers(p, "Containers", spec.containers, (st.containerStatuses if st else None) or [])
    conditions = (st.conditions if st else None) or []
    if spec.readinessGates:
        p.w(0, "Readiness Gates:\n  Type\tStatus\n")
        for g in spec.readinessGates:
            status = next((c.status for c in conditions if c.type == g.conditionType), "<none>")
            p.w(1, f"{g.conditionType or ''} \t{status} \n")
    if conditions:
        p.w(0, "Conditions:\n  Type\tStatus\n")
        for c in conditions:
            p.w(1, f"{c.type} \t{c.status} \n")
    _volumes(p, spec.volumes)
    p.w(0, f"QoS Class:\t{_qos(pod)}\n")
    _labels(p, "Node-Selectors", spec.nodeSelector)
    _tolerations(p, spec.tolerations)
    _events(p, events, _now(now))
    return p.text()


# --- Node -------------------------------------------------------------------------------------

_SYSTEM_INFO = (
    ("machineID", "Machine ID"),
    ("systemUUID", "System UUID"),
    ("bootID", "Boot ID"),
    ("kernelVersion", "Kernel Version"),
    ("osImage", "OS Image"),
    ("operatingSystem", "Operating System"),
    ("architecture", "Architecture"),
    ("containerRuntimeVersion", "Container Runtime Version"),
    ("kubeletVersion", "Kubelet Version"),
    ("kubeProxyVersion", "Kube-Proxy Version"),
)


def _resources(p: _Page, title: str, values: Mapping[str, str] | None) -> None:
    if not values:
        return
    p.w(0, f"{title}:\n")
    for k in sorted(values):
        p.w(1, f"{k}:\t{values[k]}\n")


def describe_node(
    node: Node, events: Sequence[EventRow] | None = (), *, pods: Iterable[Pod] = (), now: datetime | None = None
) -> str:
    """``kubectl describe node`` (without resource accounting). ``pods`` are the node's
    non-terminated pods, listed like kubectl's "Non-terminated Pods" section."""
    st = node.status
    p = _Page()
    p.w(0, f"Name:\t{node.name}\n")
    roles = sorted(
        {k.removeprefix("node-role.kubernetes.io/") for k in node.labels if k.startswith("node-role.kubernetes.io/")}
        - {""}
    )
    p.w(0, f"Roles:\t{','.join(roles) if roles else '<none>'}\n")
    _labels(p, "Labels", node.metadata.labels)
    _annotations(p, node.metadata.annotations)
    p.w(0, f"CreationTimestamp:\t{rfc1123z(node.metadata.creationTimestamp)}\n")
    p.w(0, "Taints:\t")
    taints = node.spec.taints or []
    if not taints:
        p.w(0, "<none>\n")
    for i, t in enumerate(taints):
        if i:
            p.w(0, "\t")
        p.w(0, f"{t.key}={t.value}:{t.effect}\n" if t.value else f"{t.key}:{t.effect}\n")
    p.w(0, f"Unschedulable:\t{'true' if node.spec.unschedulable else 'false'}\n")
    conditions = (st.conditions if st else None) or []
    if conditions:
        p.w(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        p.w(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            p.w(
                1,
                f"{c.type} \t{c.status} \t{rfc1123z(c.lastHeartbeatTime)} \t{rfc1123z(c.lastTransitionTime)} "
                f"\t{c.reason or ''} \t{c.message or ''}\n",
            )
    addresses = (st.addresses if st else None) or []
    p.w(0, "Addresses:\n")
    for a in addresses:
        p.w(1, f"{a.type}:\t{a.address}\n")
    _resources(p, "Capacity", st.capacity if st else None)
    _resources(p, "Allocatable", st.allocatable if st else None)
    info = st.nodeInfo if st else None
    if info is not None and info != NodeSystemInfo():
        p.w(0, "System Info:\n")
        for key, title in _SYSTEM_INFO:
            value = getattr(info, key)
            if value is not None:
                p.w(1, f"{title}:\t{value}\n")
    if node.spec.podCIDR:
        p.w(0, f"PodCIDR:\t{node.spec.podCIDR}\n")
    if node.spec.podCIDRs:
        p.w(0, f"PodCIDRs:\t{','.join(node.spec.podCIDRs)}\n")
    if node.spec.providerID:
        p.w(0, f"ProviderID:\t{node.spec.providerID}\n")
    listed = list(pods)
    if listed:
        p.w(0, f"Non-terminated Pods:\t({len(listed)} in total)\n")
        p.w(1, "Namespace\tName\n")
        p.w(1, "---------\t----\n")
        for pod in listed:
            p.w(1, f"{pod.namespace}\t{pod.name}\n")
    _events(p, events, _now(now))
    return p.text()


# --- Deployment -------------------------------------------------------------------------------


def _pod_template(p: _Page, t: PodTemplateSpec) -> None:
    """kubectl's DescribePodTemplate."""
    p.w(0, "Pod Template:\n")
    _labels(p, "  Labels", t.metadata.labels)
    if t.metadata.annotations:
        _annotations(p, t.metadata.annotations, "  Annotations")
    if t.spec.serviceAccountName:
        p.w(1, f"Service Account:\t{t.spec.serviceAccountName}\n")
    if t.spec.initContainers:
        _containers(p, "Init Containers", t.spec.initContainers, [], space="  ")
    _containers(p, "Containers", t.spec.containers, [], space="  ")
    _volumes(p, t.spec.volumes, space="  ")
    if t.spec.priorityClassName:
        p.w(1, f"Priority Class Name:\t{t.spec.priorityClassName}\n")
    _labels(p, "  Node-Selectors", t.spec.nodeSelector)
    _tolerations(p, t.spec.tolerations, "  Tolerations")


def _same_template(a: PodTemplateSpec, b: PodTemplateSpec) -> bool:
    """kubectl's FindNewReplicaSet test: equal templates, the pod-template-hash label aside."""
    la = {k: v for k, v in (a.metadata.labels or {}).items() if k != "pod-template-hash"}
    lb = {k: v for k, v in (b.metadata.labels or {}).items() if k != "pod-template-hash"}
    return la == lb and a.spec == b.spec


def _replica_sets(sets: Sequence[ReplicaSet]) -> str:
    if not sets:
        return "<none>"
    return ", ".join(
        f"{rs.name} ({rs.status.replicas if rs.status else 0}/"
        f"{rs.spec.replicas if rs.spec.replicas is not None else 1} replicas created)"
        for rs in sets
    )


def describe_deployment(
    d: Deployment,
    replica_sets: Sequence[ReplicaSet] = (),
    events: Sequence[EventRow] | None = (),
    *,
    now: datetime | None = None,
) -> str:
    """``kubectl describe deployment``. ``replica_sets`` are the ones it owns (the one whose
    template hash matches is the new one, the others with replicas are the old ones)."""
    st = d.status
    spec = d.spec
    p = _Page()
    p.w(0, f"Name:\t{d.name}\n")
    p.w(0, f"Namespace:\t{d.namespace}\n")
    p.w(0, f"CreationTimestamp:\t{rfc1123z(d.metadata.creationTimestamp)}\n")
    _labels(p, "Labels", d.metadata.labels)
    _annotations(p, d.metadata.annotations)
    p.w(0, f"Selector:\t{format_label_selector(spec.selector)}\n")
    replicas = spec.replicas if spec.replicas is not None else 1
    p.w(
        0,
        f"Replicas:\t{replicas} desired | {(st.updatedReplicas if st else None) or 0} updated | "
        f"{(st.replicas if st else None) or 0} total | {(st.availableReplicas if st else None) or 0} available | "
        f"{(st.unavailableReplicas if st else None) or 0} unavailable\n",
    )
    strategy = spec.strategy or DeploymentStrategy()
    kind = strategy.type or "RollingUpdate"  # the API server's default
    p.w(0, f"StrategyType:\t{kind}\n")
    p.w(0, f"MinReadySeconds:\t{spec.minReadySeconds or 0}\n")
    if kind == "RollingUpdate":
        ru = strategy.rollingUpdate or RollingUpdateDeployment()
        max_unavailable = "25%" if ru.maxUnavailable is None else ru.maxUnavailable
        max_surge = "25%" if ru.maxSurge is None else ru.maxSurge
        p.w(0, f"RollingUpdateStrategy:\t{max_unavailable} max unavailable, {max_surge} max surge\n")
    _pod_template(p, spec.template)
    conditions = (st.conditions if st else None) or []
    if conditions:
        p.w(0, "Conditions:\n  Type\tStatus\tReason\n")
        p.w(1, "----\t------\t------\n")
        for c in conditions:
            p.w(1, f"{c.type} \t{c.status}\t{c.reason or ''}\n")
    new = [rs for rs in replica_sets if _same_template(rs.spec.template, spec.template)][:1]
    old = [
        rs
        for rs in replica_sets
        if rs not in new and ((rs.spec.replicas or 0) > 0 or (rs.status.replicas if rs.status else 0) > 0)
    ]
    if replica_sets:
        p.w(0, f"OldReplicaSets:\t{_replica_sets(old)}\n")
        p.w(0, f"NewReplicaSet:\t{_replica_sets(new)}\n")
    _events(p, events, _now(now))
    return p.text()


__all__ = [
    "describe_deployment",
    "describe_node",
    "describe_pod",
    "describe_service",
    "format_endpoint_slices",
]
