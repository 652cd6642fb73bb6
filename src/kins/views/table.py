"""``kubectl get`` tables: the same columns, cell texts and spacing as kubectl's printers.

Each kind has a row function returning the normal cells followed by the ``-o wide`` cells;
``format_table`` adds the NAMESPACE column for ``-A`` and aligns everything the way kubectl's
tabwriter does (minimum width 6, 3 spaces of padding, last column unpadded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..api.apps import DaemonSet, Deployment, ReplicaSet, StatefulSet
from ..api.batch import CronJob, Job
from ..api.core import (
    ConfigMap,
    Container,
    ContainerState,
    Endpoints,
    Event,
    Namespace,
    Node,
    NodeSystemInfo,
    Pod,
    Secret,
    Service,
    ServicePort,
)
from ..api.discovery import EndpointSlice
from ..api.meta import Condition, Object
from ..api.networking import Ingress, NetworkPolicy
from ..api.policy import ClusterNetworkPolicy
from ..api.registry import STORED
from .common import (
    age,
    escape_terminal,
    format_label_selector,
    format_labels,
    human_duration,
    join_host_port,
    parse_time,
    selector_string,
    tabwrite,
)
from .events import format_events
from .rbac import COLUMNS as RBAC_COLUMNS
from .table_kinds import COLUMNS as KIND_COLUMNS
from .table_kinds import custom_layout

_MIN_WIDTH = 6
_PADDING = 3
_NONE = "<none>"


class NoResources(str):
    """The message kubectl prints on stderr when a list is empty (no trailing newline)."""

    __slots__ = ()


# --- pods -------------------------------------------------------------------------------------


def _has_condition(conditions: list[Condition] | None, type_: str) -> bool:
    return any(c.type == type_ and c.status == "True" for c in conditions or [])


def pod_status(pod: Pod, now: datetime) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) cells computed exactly as kubectl's pod printer does."""
    st = pod.status
    phase = (st.phase if st else None) or ""
    reason = phase
    if st and st.reason:
        reason = st.reason
    for c in (st.conditions if st else None) or []:
        if c.type == "PodScheduled" and c.reason == "SchedulingGated":
            reason = "SchedulingGated"
    total = len(pod.spec.containers)
    ready = 0
    restarts = 0
    last_restart: datetime | None = None

    def note_restart(cs_last: ContainerState | None) -> None:
        nonlocal last_restart
        term = cs_last.terminated if cs_last else None
        if term is not None:
            t = parse_time(term.finishedAt)
            if t is not None and (last_restart is None or t > last_restart):
                last_restart = t

    init_specs = pod.spec.initContainers or []
    initializing = False
    for i, cs in enumerate((st.initContainerStatuses if st else None) or []):
        restarts += cs.restartCount
        note_restart(cs.lastState)
        term = cs.state.terminated if cs.state else None
        waiting = cs.state.waiting if cs.state else None
        if term is not None and not term.exitCode:
            continue
        if term is not None:
            if not term.reason:
                if term.signal:
                    reason = f"Init:Signal:{term.signal}"
                else:
                    reason = f"Init:ExitCode:{term.exitCode or 0}"
            else:
                reason = "Init:" + term.reason
        elif waiting is not None and waiting.reason and waiting.reason != "PodInitializing":
            reason = "Init:" + waiting.reason
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _has_condition(st.conditions if st else None, "Initialized"):
        # Sidecar (restartable init) containers are not modelled, so their restarts are not kept.
        restarts = 0
        last_restart = None
        has_running = False
        for cs in reversed((st.containerStatuses if st else None) or []):
            restarts += cs.restartCount
            note_restart(cs.lastState)
            waiting = cs.state.waiting if cs.state else None
            term = cs.state.terminated if cs.state else None
            if waiting is not None and waiting.reason:
                reason = waiting.reason
            elif term is not None and term.reason:
                reason = term.reason
            elif term is not None:
                if term.signal:
                    reason = f"Signal:{term.signal}"
                else:
                    reason = f"ExitCode:{term.exitCode or 0}"
            elif cs.ready and cs.state is not None and cs.state.running is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(st.conditions if st else None, "Ready") else "NotReady"

    if pod.metadata.deletionTimestamp and st and st.reason == "NodeLost":
        reason = "Unknown"
    elif pod.metadata.deletionTimestamp and phase not in ("Failed", "Succeeded"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_text = f"{restarts} ({age(last_restart.isoformat(), now)} ago)"
    return f"{ready}/{total}", reason, restarts_text


def _pod_row(pod: Pod, now: datetime) -> list[str]:
    ready, status, restarts = pod_status(pod, now)
    st = pod.status
    ip = ""
    if st and st.podIPs:
        ip = st.podIPs[0].ip
    elif st and st.podIP:
        ip = st.podIP
    gates = _NONE
    if pod.spec.readinessGates:
        conditions = (st.conditions if st else None) or []
        true = 0
        for g in pod.spec.readinessGates:
            for c in conditions:
                if c.type == g.conditionType:
                    true += c.status == "True"
                    break
        gates = f"{true}/{len(pod.spec.readinessGates)}"
    nominated = (st.nominatedNodeName if st else None) or _NONE
    return [
        pod.name,
        ready,
        status,
        restarts,
        age(pod.metadata.creationTimestamp, now),
        ip or _NONE,
        pod.spec.nodeName or _NONE,
        nominated,
        gates,
    ]


# --- services and endpoints ----------------------------------------------------------------


def _dedup(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def service_external_ip(svc: Service) -> str:
    """EXTERNAL-IP: externalIPs, LB ingress addresses, ``<pending>`` or the external name."""
    spec = svc.spec
    ext = spec.externalIPs or []
    if spec.type in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else _NONE
    if spec.type == "LoadBalancer":
        ing = svc.status.loadBalancer.ingress if svc.status and svc.status.loadBalancer else None
        lb = _dedup([i.ip or i.hostname or "" for i in ing or [] if i.ip or i.hostname])
        if ext:
            return ",".join([*lb, *ext])
        return ",".join(lb) if lb else "<pending>"
    if spec.type == "ExternalName":
        return spec.externalName or ""
    return "<unknown>"


def service_ports(ports: Sequence[ServicePort] | None) -> str:
    """PORT(S): ``80/TCP`` or ``80:30799/TCP`` when a node port is allocated."""
    pieces = []
    for p in ports or []:
        if p.nodePort:
            pieces.append(f"{p.port}:{p.nodePort}/{p.protocol}")
        else:
            pieces.append(f"{p.port}/{p.protocol}")
    return ",".join(pieces)


def _service_row(svc: Service, now: datetime) -> list[str]:
    ips = svc.spec.clusterIPs or ([svc.spec.clusterIP] if svc.spec.clusterIP else [])
    return [
        svc.name,
        svc.spec.type,
        ips[0] if ips else _NONE,
        service_external_ip(svc),
        service_ports(svc.spec.ports) or _NONE,
        age(svc.metadata.creationTimestamp, now),
        format_labels(svc.spec.selector),
    ]


def format_endpoints(ep: Endpoints | None, port_names: set[str] | None = None) -> str:
    """kubectl's Endpoints summary: the first 3 ``ip:port`` then ``+ N more...``.

    ``port_names`` restricts the ports shown (describe passes the service port's name).
    """
    if ep is None or not ep.subsets:
        return _NONE
    items: list[str] = []
    limit = 3
    more = False
    count = 0
    for ss in ep.subsets:
        addresses = ss.addresses or []
        if not ss.ports:
            # Headless services may have no ports at all.
            count += len(addresses)
            for a in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(a.ip)
            continue
        for port in ss.ports:
            if port_names is None or (port.name or "") in port_names:
                count += len(addresses)
                for a in addresses:
                    if len(items) == limit:
                        more = True
                        break
                    items.append(join_host_port(a.ip, port.port))
    text = ",".join(items)
    return f"{text} + {count - limit} more..." if more else text


def _endpoints_row(ep: Endpoints, now: datetime) -> list[str]:
    return [ep.name, format_endpoints(ep), age(ep.metadata.creationTimestamp, now)]


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def _endpointslice_row(eps: EndpointSlice, now: datetime) -> list[str]:
    limit = 3
    ports: list[str] = []
    more = False
    count = 0
    for p in eps.ports or []:
        if len(ports) < limit:
            ports.append(str(p.port) if p.port is not None else p.name if p.name is not None else "*")
        elif len(ports) == limit:
            more = True
        count += 1
    port_text = _list_with_more(ports, more, count, limit)
    addrs: list[str] = []
    more = False
    count = 0
    for e in eps.endpoints or []:
        for a in e.addresses:
            if len(addrs) < limit:
                addrs.append(a)
            elif len(addrs) == limit:
                more = True
            count += 1
    return [
        eps.name,
        eps.addressType,
        port_text,
        _list_with_more(addrs, more, count, limit),
        age(eps.metadata.creationTimestamp, now),
    ]


# --- nodes, namespaces, config ----------------------------------------------------------------


def _node_roles(node: Node) -> list[str]:
    roles = set()
    for k, v in node.labels.items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k.removeprefix("node-role.kubernetes.io/")
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return sorted(roles)


def node_status(node: Node) -> str:
    status = []
    for c in (node.status.conditions if node.status else None) or []:
        if c.type == "Ready":
            status = ["Ready" if c.status == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if node.spec.unschedulable:
        status.append("SchedulingDisabled")
    return ",".join(status)


def _node_address(node: Node, type_: str) -> str:
    for a in (node.status.addresses if node.status else None) or []:
        if a.type == type_:
            return a.address
    return _NONE


def _node_row(node: Node, now: datetime) -> list[str]:
    info = (node.status.nodeInfo if node.status else None) or NodeSystemInfo()
    return [
        node.name,
        node_status(node),
        ",".join(_node_roles(node)) or _NONE,
        age(node.metadata.creationTimestamp, now),
        info.kubeletVersion or "",
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.osImage or "<unknown>",
        info.kernelVersion or "<unknown>",
        info.containerRuntimeVersion or "<unknown>",
    ]


def _namespace_row(ns: Namespace, now: datetime) -> list[str]:
    # The API server always sets a phase; objects that were never stored get its default.
    phase = ns.status.phase if ns.status and ns.status.phase else None
    if phase is None:
        phase = "Terminating" if ns.metadata.deletionTimestamp else "Active"
    return [ns.name, phase, age(ns.metadata.creationTimestamp, now)]


def _configmap_row(cm: ConfigMap, now: datetime) -> list[str]:
    n = len(cm.data or {}) + len(cm.binaryData or {})
    return [cm.name, str(n), age(cm.metadata.creationTimestamp, now)]


def _secret_row(s: Secret, now: datetime) -> list[str]:
    # stringData is merged into data by the API server.
    keys = set(s.data or {}) | set(s.stringData or {})
    return [s.name, s.type or "Opaque", str(len(keys)), age(s.metadata.creationTimestamp, now)]


# --- workloads --------------------------------------------------------------------------------


def _containers(containers: list[Container]) -> tuple[str, str]:
    return ",".join(c.name for c in containers), ",".join(c.image or "" for c in containers)


def _deployment_row(d: Deployment, now: datetime) -> list[str]:
    st = d.status
    # spec.replicas defaults to 1 in the API server.
    desired = d.spec.replicas if d.spec.replicas is not None else 1
    names, images = _containers(d.spec.template.spec.containers)
    return [
        d.name,
        f"{(st.readyReplicas if st else None) or 0}/{desired}",
        str((st.updatedReplicas if st else None) or 0),
        str((st.availableReplicas if st else None) or 0),
        age(d.metadata.creationTimestamp, now),
        names,
        images,
        selector_string(d.spec.selector),
    ]


def _replicaset_row(rs: ReplicaSet, now: datetime) -> list[str]:
    st = rs.status
    desired = rs.spec.replicas if rs.spec.replicas is not None else 1
    names, images = _containers(rs.spec.template.spec.containers)
    return [
        rs.name,
        str(desired),
        str(st.replicas if st else 0),
        str((st.readyReplicas if st else None) or 0),
        age(rs.metadata.creationTimestamp, now),
        names,
        images,
        format_label_selector(rs.spec.selector),
    ]


def _statefulset_row(sts: StatefulSet, now: datetime) -> list[str]:
    desired = sts.spec.replicas if sts.spec.replicas is not None else 1
    names, images = _containers(sts.spec.template.spec.containers)
    ready = (sts.status.readyReplicas if sts.status else None) or 0
    return [sts.name, f"{ready}/{desired}", age(sts.metadata.creationTimestamp, now), names, images]


def _daemonset_row(ds: DaemonSet, now: datetime) -> list[str]:
    st = ds.status
    names, images = _containers(ds.spec.template.spec.containers)
    return [
        ds.name,
        str(st.desiredNumberScheduled if st else 0),
        str(st.currentNumberScheduled if st else 0),
        str(st.numberReady if st else 0),
        str((st.updatedNumberScheduled if st else None) or 0),
        str((st.numberAvailable if st else None) or 0),
        format_labels(ds.spec.template.spec.nodeSelector),
        age(ds.metadata.creationTimestamp, now),
        names,
        images,
        format_label_selector(ds.spec.selector),
    ]


def job_status(job: Job) -> str:
    """kubectl 1.31's STATUS cell of a Job."""
    true = {c.type for c in (job.status.conditions if job.status else None) or [] if c.status == "True"}
    if "Complete" in true:
        return "Complete"
    if "Failed" in true:
        return "Failed"
    if job.metadata.deletionTimestamp:
        return "Terminating"
    for t in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if t in true:
            return t
    return "Running"


def job_completions(job: Job) -> str:
    succeeded = (job.status.succeeded if job.status else None) or 0
    spec = job.spec
    if spec.completions is not None:
        return f"{succeeded}/{spec.completions}"
    if spec.parallelism is None:
        return f"{succeeded}/1"  # the API server's default completions
    return f"{succeeded}/1 of {spec.parallelism}" if spec.parallelism > 1 else f"{succeeded}/1"


def job_selector(job: Job) -> str:
    """The selector the API server generates when the Job names none."""
    if job.spec.selector is not None:
        return format_label_selector(job.spec.selector)
    return f"batch.kubernetes.io/controller-uid={job.metadata.uid or ''}"


def job_duration(job: Job, now: datetime) -> str:
    st = job.status
    start = parse_time(st.startTime if st else None)
    if start is None:
        return ""
    end = parse_time(st.completionTime if st else None) or now
    return human_duration(end - start)


def _job_row(job: Job, now: datetime) -> list[str]:
    names, images = _containers(job.spec.template.spec.containers)
    return [
        job.name,
        job_status(job),
        job_completions(job),
        job_duration(job, now),
        age(job.metadata.creationTimestamp, now),
        names,
        images,
        job_selector(job),
    ]


def _cronjob_row(cj: CronJob, now: datetime) -> list[str]:
    st = cj.status
    last = st.lastScheduleTime if st else None
    tmpl = cj.spec.jobTemplate.spec
    names, images = _containers(tmpl.template.spec.containers)
    return [
        cj.name,
        cj.spec.schedule,
        cj.spec.timeZone if cj.spec.timeZone is not None else _NONE,
        "True" if cj.spec.suspend else "False",
        str(len((st.active if st else None) or [])),
        age(last, now) if last else _NONE,
        age(cj.metadata.creationTimestamp, now),
        names,
        images,
        format_label_selector(tmpl.selector),
    ]


# --- networking -------------------------------------------------------------------------------


def ingress_hosts(ing: Ingress) -> str:
    rules = ing.spec.rules or []
    hosts: list[str] = []
    limit = 3
    more = False
    for r in rules:
        if len(hosts) == limit:
            more = True
        if not more and r.host:
            hosts.append(r.host)
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - limit} more..." if more else text


def _ingress_row(ing: Ingress, now: datetime) -> list[str]:
    lb = ing.status.loadBalancer.ingress if ing.status and ing.status.loadBalancer else None
    address = ",".join(_dedup([i.ip or i.hostname or "" for i in lb or [] if i.ip or i.hostname]))
    return [
        ing.name,
        ing.spec.ingressClassName or _NONE,
        ingress_hosts(ing),
        address,
        "80, 443" if ing.spec.tls else "80",
        age(ing.metadata.creationTimestamp, now),
    ]


def _netpol_row(np: NetworkPolicy, now: datetime) -> list[str]:
    return [np.name, format_label_selector(np.spec.podSelector), age(np.metadata.creationTimestamp, now)]


def _cnp_row(cnp: ClusterNetworkPolicy, now: datetime) -> list[str]:
    # The CRD's printer columns: .spec.tier, .spec.priority (a string column), the age.
    priority = "" if cnp.spec.priority is None else str(cnp.spec.priority)
    return [cnp.name, cnp.spec.tier, priority, age(cnp.metadata.creationTimestamp, now)]


# --- the table --------------------------------------------------------------------------------

Row = Callable[[Any, datetime], list[str]]

# kind -> (columns, how many of them are -o wide only, row function)
COLUMNS: dict[str, tuple[tuple[str, ...], int, Row]] = {
    "Pod": (
        ("NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"),
        4,
        _pod_row,
    ),
    "Service": (("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"), 1, _service_row),
    "Endpoints": (("NAME", "ENDPOINTS", "AGE"), 0, _endpoints_row),
    "EndpointSlice": (("NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"), 0, _endpointslice_row),
    "Node": (
        (
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME",
        ),
        5,
        _node_row,
    ),
    "Deployment": (
        ("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"),
        3,
        _deployment_row,
    ),
    "ReplicaSet": (
        ("NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"),
        3,
        _replicaset_row,
    ),
    "CronJob": (
        (
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
        ),
        3,
        _cronjob_row,
    ),
    "StatefulSet": (("NAME", "READY", "AGE", "CONTAINERS", "IMAGES"), 2, _statefulset_row),
    "DaemonSet": (
        (
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE SELECTOR",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
        ),
        3,
        _daemonset_row,
    ),
    "Job": (
        ("NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"),
        3,
        _job_row,
    ),
    "Ingress": (("NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"), 0, _ingress_row),
    "NetworkPolicy": (("NAME", "POD-SELECTOR", "AGE"), 0, _netpol_row),
    "ClusterNetworkPolicy": (("NAME", "TIER", "PRIORITY", "AGE"), 0, _cnp_row),
    "Namespace": (("NAME", "STATUS", "AGE"), 0, _namespace_row),
    "ConfigMap": (("NAME", "DATA", "AGE"), 0, _configmap_row),
    "Secret": (("NAME", "TYPE", "DATA", "AGE"), 0, _secret_row),
    **KIND_COLUMNS,
    **RBAC_COLUMNS,
}


def layout(kind: str) -> tuple[tuple[str, ...], int, Row] | None:
    """The columns, how many are ``-o wide`` only, and the row function of ``kind``'s table
    (a custom resource's come from its definition); None for kinds kubectl has no table for."""
    return COLUMNS.get(kind) or custom_layout(kind)


def _namespaced(kind: str) -> bool:
    cls = STORED.get(kind)
    return cls.NAMESPACED if cls is not None else True


def no_resources(kind: str, *, all_namespaces: bool, namespace: str = "default") -> NoResources:
    """kubectl's stderr note for an empty result."""
    if all_namespaces or not _namespaced(kind):
        return NoResources("No resources found")
    return NoResources(f"No resources found in {namespace} namespace.")


def format_table(
    kind: str,
    objs: Sequence[Object],
    *,
    wide: bool,
    all_namespaces: bool,
    now: datetime,
    related: dict[str, Any] | None = None,
    namespace: str = "default",
    name_prefix: str = "",
) -> str:
    """The ``kubectl get <kind> [-o wide] [-A]`` text for objects in the order given.
    ``name_prefix`` (``service/``) is what kubectl puts before names when several resource
    types are listed at once.

    An empty list returns a :class:`NoResources` (a ``str``) meant for stderr. ``related`` is
    accepted for callers that gather extra objects; kubectl's tables need only the objects
    themselves.
    """
    del related
    if kind == "Event" and objs:
        evs = [o for o in objs if isinstance(o, Event)]
        return format_events(evs, wide=wide, all_namespaces=all_namespaces, now=now)
    found = layout(kind)
    if found is None and kind != "Event":
        raise KeyError(f"no table layout for kind {kind!r}")
    if not objs:
        return no_resources(kind, all_namespaces=all_namespaces, namespace=namespace)
    assert found is not None
    columns, n_wide, row = found
    keep = len(columns) if wide else len(columns) - n_wide
    show_ns = all_namespaces and _namespaced(kind)
    header = (["NAMESPACE"] if show_ns else []) + list(columns[:keep])
    lines = ["\t".join(header)]
    for obj in objs:
        cells = row(obj, now)[:keep]
        if name_prefix:
            cells = [name_prefix + cells[0], *cells[1:]]
        if show_ns:
            cells = [obj.namespace, *cells]
        lines.append("\t".join(escape_terminal(c).replace("\t", " ").replace("\n", " ") for c in cells))
    return tabwrite("\n".join(lines) + "\n", minwidth=_MIN_WIDTH, padding=_PADDING)
