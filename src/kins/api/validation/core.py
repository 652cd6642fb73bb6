"""The core API group (v1): Service, Pod, Endpoints, Node, Namespace, Secret, ConfigMap.

The Service checks that depend on the cluster (clusterIP inside ``services.cidr``, nodePort inside
the node-port range) run when a ClusterConfig is given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

import msgspec
from msgspec.structs import replace

from ..config import ClusterConfig
from ..core import ConfigMap, Container, Endpoints, Namespace, Node, Pod, PodSpec, Probe, Secret, Service
from ..meta import Object
from .common import (
    PORT_RANGE_MSG,
    PROTOCOLS,
    Check,
    Errors,
    format_value,
    ip_version,
    ipv4_int,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_name,
    parse_cidr,
)

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


# --- Service ---------------------------------------------------------------------------------


def _node_port_range_msg(cfg: ClusterConfig) -> str:
    return f"provided port is not in the valid range. The range of valid ports is {cfg.services.nodePortRange}"


def _service(e: Errors, svc: Service, cfg: ClusterConfig | None) -> None:
    spec = svc.spec
    typ = spec.type
    ports = spec.ports or []
    headless = spec.clusterIP == "None"
    external = typ in ("NodePort", "LoadBalancer")

    if not typ:
        e.required("spec.type")
    elif typ not in _SERVICE_TYPES:
        e.unsupported("spec.type", typ, _SERVICE_TYPES)

    if not ports and not headless and typ != "ExternalName":
        e.required("spec.ports")

    if typ == "ExternalName":
        if spec.clusterIP or spec.clusterIPs:
            e.forbidden("spec.clusterIP", "may not be set for ExternalName services")
        cname = (spec.externalName or "").removesuffix(".")
        if cname:
            e.invalid_each("spec.externalName", cname, is_dns1123_subdomain(cname))
        else:
            e.required("spec.externalName")
    else:
        if headless and external:
            e.invalid("spec.clusterIP", "None", f"may not be set to 'None' for {typ} services")
        _cluster_ip(e, svc, cfg)

    # ports
    names: set[str] = set()
    require_name = len(ports) > 1
    seen: set[tuple[str, int]] = set()
    node_ports: set[tuple[str, int]] = set()
    lo, hi = cfg.node_port_range if cfg is not None else (1, 65535)
    for i, p in enumerate(ports):
        # Paths are only built when something is wrong: this loop is hot.
        pp = f"spec.ports[{i}]"
        if p.name:
            if msgs := is_dns1123_label(p.name):
                e.invalid_each(f"{pp}.name", p.name, msgs)
            if p.name in names:
                e.duplicate(f"{pp}.name", p.name)
            names.add(p.name)
        elif require_name:
            e.required(f"{pp}.name")
        if not 0 < p.port < 65536:
            e.port_num(f"{pp}.port", p.port)
        if p.protocol not in PROTOCOLS:
            e.protocol(f"{pp}.protocol", p.protocol)
        # targetPort 0 or "" is defaulted to port by the API server.
        tp = p.targetPort
        if tp and (is_valid_port_name(tp) if isinstance(tp, str) else not 0 < tp < 65536):
            e.port_num_or_name(f"{pp}.targetPort", tp)
        if p.appProtocol is not None:
            e.invalid_each(f"{pp}.appProtocol", p.appProtocol, is_qualified_name(p.appProtocol))
        if p.nodePort:
            if not external:
                e.forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{typ}'")
            elif not lo <= p.nodePort <= hi:
                if cfg is not None:
                    e.invalid(f"{pp}.nodePort", p.nodePort, _node_port_range_msg(cfg))
                else:
                    e.port_num(f"{pp}.nodePort", p.nodePort)
            key = (p.protocol, p.nodePort)
            if key in node_ports:
                e.duplicate(f"{pp}.nodePort", p.nodePort)
            node_ports.add(key)
        key = (p.protocol, p.port)
        if key in seen:
            # The API server prints its internal port key as JSON, in Go's field order.
            e.add(
                pp,
                f'Duplicate value: {{"Name":"","Protocol":{format_value(p.protocol)},"AppProtocol":null,'
                f'"Port":{p.port},"TargetPort":0,"NodePort":0}}',
            )
        seen.add(key)

    if spec.selector:
        e.labels("spec.selector", spec.selector)

    # session affinity
    affinity = spec.sessionAffinity
    if affinity is not None and affinity not in ("ClientIP", "None"):
        e.unsupported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    cfg_aff = spec.sessionAffinityConfig
    if affinity == "ClientIP":
        timeout = cfg_aff.clientIP.timeoutSeconds if cfg_aff and cfg_aff.clientIP else None
        if timeout is not None and not 0 < timeout <= 86400:
            e.invalid(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                timeout,
                "must be greater than 0 and less than 86400",
            )
    elif cfg_aff is not None and affinity in (None, "None"):
        e.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")

    for i, ip in enumerate(spec.externalIPs or []):
        e.ip(f"spec.externalIPs[{i}]", ip, non_special=True)

    if spec.loadBalancerSourceRanges:
        if typ != "LoadBalancer":
            e.forbidden("spec.loadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'")
        for i, r in enumerate(spec.loadBalancerSourceRanges):
            # Historically space-padded values are accepted.
            e.cidr(f"spec.loadBalancerSourceRanges[{i}]", r.strip())
    if spec.loadBalancerIP and typ == "LoadBalancer":
        e.ip("spec.loadBalancerIP", spec.loadBalancerIP)
    if spec.allocateLoadBalancerNodePorts is not None and typ != "LoadBalancer":
        e.forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
    if spec.loadBalancerClass is not None:
        if typ != "LoadBalancer":
            e.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
        else:
            e.invalid_each("spec.loadBalancerClass", spec.loadBalancerClass, is_qualified_name(spec.loadBalancerClass))

    # traffic policies
    etp = spec.externalTrafficPolicy
    if etp:
        if not (external or (typ == "ClusterIP" and spec.externalIPs)):
            e.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
        elif etp not in ("Cluster", "Local"):
            e.unsupported("spec.externalTrafficPolicy", etp, ("Cluster", "Local"))
    hc = spec.healthCheckNodePort
    if hc:
        if typ != "LoadBalancer" or etp != "Local":
            e.invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            )
        elif not 0 < hc < 65536:
            e.invalid("spec.healthCheckNodePort", hc, PORT_RANGE_MSG)
        elif cfg is not None and not lo <= hc <= hi:
            e.invalid("spec.healthCheckNodePort", hc, _node_port_range_msg(cfg))
    itp = spec.internalTrafficPolicy
    if itp is not None and itp not in ("Cluster", "Local"):
        e.unsupported("spec.internalTrafficPolicy", itp, ("Cluster", "Local"))
    if spec.ipFamilyPolicy is not None and spec.ipFamilyPolicy not in _FAMILY_POLICIES:
        e.unsupported("spec.ipFamilyPolicy", spec.ipFamilyPolicy, _FAMILY_POLICIES)
    for i, fam in enumerate(spec.ipFamilies or []):
        if fam not in ("IPv4", "IPv6"):
            e.unsupported(f"spec.ipFamilies[{i}]", fam, ("IPv4", "IPv6"))
    if spec.trafficDistribution is not None and spec.trafficDistribution not in _TRAFFIC_DISTRIBUTIONS:
        e.unsupported("spec.trafficDistribution", spec.trafficDistribution, _TRAFFIC_DISTRIBUTIONS)


_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
_TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")


def _cluster_ip(e: Errors, svc: Service, cfg: ClusterConfig | None) -> None:
    spec = svc.spec
    ip = spec.clusterIP
    ips = spec.clusterIPs or []
    if ips and ip and ips[0] != ip:
        e.invalid("spec.clusterIPs", ips, "first value must match `clusterIP`")
    if len(ips) > 2:
        e.invalid("spec.clusterIPs", ips, "may only hold up to 2 values")
    for i, extra in enumerate(ips[1:], start=1):
        if extra == "None":
            e.invalid("spec.clusterIPs", ips, "'None' must be the first and only value")
        elif e.ip(f"spec.clusterIPs[{i}]", extra) and cfg is not None:
            _check_in_range(e, f"spec.clusterIPs[{i}]", extra, cfg)
    if not ip or ip == "None":
        return
    if e.ip("spec.clusterIP", ip) and cfg is not None:
        _check_in_range(e, "spec.clusterIP", ip, cfg)


def _check_in_range(e: Errors, field: str, ip: str, cfg: ClusterConfig) -> None:
    if not _in_service_range(ip, cfg.services.cidr):
        e.invalid(
            field,
            ip,
            f"failed to allocate IP {ip}: provided IP is not in the valid range. "
            f"The range of valid IPs is {cfg.services.cidr}",
        )


@lru_cache(maxsize=64)
def _service_range(cidr: str) -> tuple[int, int, int] | ipaddress.IPv6Network | None:
    """services.cidr as (network int, mask int, 4) for a fast containment test."""
    net = parse_cidr(cidr)
    if net is None:
        return None
    if isinstance(net, ipaddress.IPv4Network):
        return int(net.network_address), int(net.netmask), 4
    return net


def _in_service_range(ip: str, cidr: str) -> bool:
    rng = _service_range(cidr)
    if rng is None:
        return True  # the cluster file is checked on its own
    if isinstance(rng, tuple):
        n = ipv4_int(ip)
        return n is not None and n & rng[1] == rng[0]
    return ip_version(ip) == 6 and ipaddress.IPv6Address(ip) in rng


# --- Pod -------------------------------------------------------------------------------------

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PROBE_FIELDS = ("exec", "httpGet", "tcpSocket", "grpc")


def _probe(e: Errors, path: str, probe: Probe) -> None:
    handlers = [h for h in _PROBE_FIELDS if getattr(probe, h) is not None]
    if not handlers:
        e.required(path, "must specify a handler type")
    for extra in handlers[1:]:
        e.forbidden(f"{path}.{extra}", "may not specify more than 1 handler type")
    if probe.httpGet is not None:
        e.port_num_or_name(f"{path}.httpGet.port", probe.httpGet.port)
        scheme = probe.httpGet.scheme
        if scheme is not None and scheme not in ("HTTP", "HTTPS"):
            e.unsupported(f"{path}.httpGet.scheme", scheme, ("HTTP", "HTTPS"))
    if probe.tcpSocket is not None:
        e.port_num_or_name(f"{path}.tcpSocket.port", probe.tcpSocket.port)
    for name in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        val = getattr(probe, name)
        if val is not None and val < 0:
            e.invalid(f"{path}.{name}", val, "must be greater than or equal to 0")


def _container(e: Errors, path: str, c: Container, names: set[str]) -> None:
    if not c.name:
        e.required(f"{path}.name")
    else:
        e.invalid_each(f"{path}.name", c.name, is_dns1123_label(c.name))
        if c.name in names:
            e.duplicate(f"{path}.name", c.name)
        names.add(c.name)
    if not c.image:
        e.required(f"{path}.image")
    port_names: set[str] = set()
    for i, p in enumerate(c.ports or []):
        pp = f"{path}.ports[{i}]"
        if p.name:
            msgs = is_valid_port_name(p.name)
            if msgs:
                e.invalid_each(f"{pp}.name", p.name, msgs)
            elif p.name in port_names:
                e.duplicate(f"{pp}.name", p.name)
            port_names.add(p.name)
        if p.containerPort == 0:
            e.required(f"{pp}.containerPort")
        else:
            e.port_num(f"{pp}.containerPort", p.containerPort)
        if p.hostPort:
            e.port_num(f"{pp}.hostPort", p.hostPort)
        if p.hostIP:
            e.ip(f"{pp}.hostIP", p.hostIP)
        e.protocol(f"{pp}.protocol", p.protocol)
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = getattr(c, probe_name)
        if probe is not None:
            _probe(e, f"{path}.{probe_name}", probe)
    for i, env in enumerate(c.env or []):
        if not env.name:
            e.required(f"{path}.env[{i}].name")
    if c.imagePullPolicy is not None and c.imagePullPolicy not in ("Always", "IfNotPresent", "Never"):
        e.unsupported(f"{path}.imagePullPolicy", c.imagePullPolicy, ("Always", "IfNotPresent", "Never"))


# Container fields an ephemeral container may not set (it joins a pod whose resources and
# ports are settled, and it is never probed or restarted).
_EPHEMERAL_FORBIDDEN = (
    "ports",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resizePolicy",
    "restartPolicy",
)


def _ephemeral_containers(e: Errors, path: str, spec: PodSpec, names: set[str]) -> None:
    targets = {c.name for c in [*spec.containers, *(spec.initContainers or [])]}
    for i, c in enumerate(spec.ephemeralContainers or []):
        cp = f"{path}.ephemeralContainers[{i}]"
        for name in _EPHEMERAL_FORBIDDEN:
            if msgspec.to_builtins(getattr(c, name)) not in (None, {}, [], ""):  # an empty value is unset
                e.forbidden(f"{cp}.{name}", "cannot be set for an Ephemeral Container")
        # Probes and ports are forbidden above: only the common checks remain.
        _container(e, cp, replace(c, ports=None, livenessProbe=None, readinessProbe=None, startupProbe=None), names)
        if c.targetContainerName and c.targetContainerName not in targets:
            e.add(f"{cp}.targetContainerName", f"Not found: {format_value(c.targetContainerName)}")


def pod_spec(e: Errors, path: str, spec: PodSpec, restart_policies: tuple[str, ...] = _RESTART_POLICIES) -> None:
    names: set[str] = set()
    for i, c in enumerate(spec.initContainers or []):
        _container(e, f"{path}.initContainers[{i}]", c, names)
    if not spec.containers:
        e.required(f"{path}.containers")
    for i, c in enumerate(spec.containers):
        _container(e, f"{path}.containers[{i}]", c, names)
    _ephemeral_containers(e, path, spec, names)
    if spec.restartPolicy is not None and spec.restartPolicy not in restart_policies:
        e.unsupported(f"{path}.restartPolicy", spec.restartPolicy, restart_policies)
    if spec.dnsPolicy is not None and spec.dnsPolicy not in _DNS_POLICIES:
        e.unsupported(f"{path}.dnsPolicy", spec.dnsPolicy, _DNS_POLICIES)
    dns = spec.dnsConfig
    if spec.dnsPolicy == "None":
        if dns is None:
            e.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
        elif not dns.nameservers:
            e.required(
                f"{path}.dnsConfig.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
            )
    if dns is not None:
        servers = dns.nameservers or []
        if len(servers) > 3:
            e.invalid(f"{path}.dnsConfig.nameservers", servers, "must not have more than 3 nameservers")
        for i, ns in enumerate(servers):
            e.ip(f"{path}.dnsConfig.nameservers[{i}]", ns, msg="must be a valid IP address")
        searches = dns.searches or []
        if len(searches) > 32:
            e.invalid(f"{path}.dnsConfig.searches", searches, "must not have more than 32 search paths")
        for i, s in enumerate(searches):
            if s != ".":
                e.invalid_each(f"{path}.dnsConfig.searches[{i}]", s, is_dns1123_subdomain(s.removesuffix(".")))
    if spec.hostname:
        e.invalid_each(f"{path}.hostname", spec.hostname, is_dns1123_label(spec.hostname))
    if spec.subdomain:
        e.invalid_each(f"{path}.subdomain", spec.subdomain, is_dns1123_label(spec.subdomain))
    if spec.nodeName:
        e.invalid_each(f"{path}.nodeName", spec.nodeName, is_dns1123_subdomain(spec.nodeName))
    for i, alias in enumerate(spec.hostAliases or []):
        e.ip(f"{path}.hostAliases[{i}].ip", alias.ip, msg="must be valid IP address")
    if spec.terminationGracePeriodSeconds is not None and spec.terminationGracePeriodSeconds < 0:
        e.invalid(
            f"{path}.terminationGracePeriodSeconds",
            spec.terminationGracePeriodSeconds,
            "must be greater than or equal to 0",
        )


def _pod(e: Errors, pod: Pod, cfg: ClusterConfig | None) -> None:
    pod_spec(e, "spec", pod.spec)


# --- Endpoints -------------------------------------------------------------------------------


def _endpoints(e: Errors, ep: Endpoints, cfg: ClusterConfig | None) -> None:
    for i, ss in enumerate(ep.subsets or []):
        sp = f"subsets[{i}]"
        if not ss.addresses and not ss.notReadyAddresses:
            e.required(sp, "must specify `addresses` or `notReadyAddresses`")
        for group in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(getattr(ss, group) or []):
                ap = f"{sp}.{group}[{j}]"
                e.ip(f"{ap}.ip", a.ip, non_special=True, msg="must be a valid IP address")
                if a.hostname:
                    e.invalid_each(f"{ap}.hostname", a.hostname, is_dns1123_label(a.hostname))
                if a.nodeName:
                    e.invalid_each(f"{ap}.nodeName", a.nodeName, is_dns1123_subdomain(a.nodeName))
        ports = ss.ports or []
        for j, p in enumerate(ports):
            pp = f"{sp}.ports[{j}]"
            if p.name:
                e.invalid_each(f"{pp}.name", p.name, is_dns1123_label(p.name))
            elif len(ports) > 1:
                e.required(f"{pp}.name")
            e.port_num(f"{pp}.port", p.port)
            e.protocol(f"{pp}.protocol", p.protocol)


# --- Node, Namespace, Secret, ConfigMap ------------------------------------------------------


def _node(e: Errors, node: Node, cfg: ClusterConfig | None) -> None:
    spec = node.spec
    if spec.podCIDR:
        e.cidr("spec.podCIDR", spec.podCIDR)
    cidrs = spec.podCIDRs or []
    for i, c in enumerate(cidrs):
        e.cidr(f"spec.podCIDRs[{i}]", c)
    if len(cidrs) > 2:
        e.invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family")
    if spec.podCIDR and cidrs and cidrs[0] != spec.podCIDR:
        e.invalid("spec.podCIDRs", cidrs, "first value must match `podCIDR`")
    for i, t in enumerate(spec.taints or []):
        if t.effect not in ("NoExecute", "NoSchedule", "PreferNoSchedule"):
            e.unsupported(f"spec.taints[{i}].effect", t.effect, ("NoExecute", "NoSchedule", "PreferNoSchedule"))
        e.invalid_each(f"spec.taints[{i}].key", t.key, is_qualified_name(t.key))
    for i, a in enumerate((node.status.addresses if node.status else None) or []):
        if a.type in ("InternalIP", "ExternalIP"):
            e.ip(f"status.addresses[{i}].address", a.address)


def _namespace(e: Errors, ns: Namespace, cfg: ClusterConfig | None) -> None:
    pass  # the name is all there is


_SECRET_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
}


def _data_keys(e: Errors, keys: Iterable[str]) -> None:
    for k in keys:
        e.invalid_each(f"data[{k}]", k, is_config_map_key(k))


def _secret(e: Errors, s: Secret, cfg: ClusterConfig | None) -> None:
    # stringData is merged into data before the API server validates.
    keys = {**(s.data or {}), **(s.stringData or {})}
    _data_keys(e, keys)
    for k in _SECRET_KEYS.get(s.type or "", ()):
        if k not in keys:
            e.required(f"data[{k}]")


def _configmap(e: Errors, cm: ConfigMap, cfg: ClusterConfig | None) -> None:
    _data_keys(e, cm.data or {})
    for k in cm.binaryData or {}:
        e.invalid_each(f"binaryData[{k}]", k, is_config_map_key(k))
        if cm.data and k in cm.data:
            e.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")


CHECKS: dict[type[Object], Check] = {
    Service: _service,
    Endpoints: _endpoints,
    Pod: _pod,
    Node: _node,
    Namespace: _namespace,
    Secret: _secret,
    ConfigMap: _configmap,
}
