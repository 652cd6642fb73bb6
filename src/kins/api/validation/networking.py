"""The networking API group: Ingress (and its legacy form), IngressClass, NetworkPolicy."""

from __future__ import annotations

from ..config import ClusterConfig
from ..meta import Object
from ..networking import (
    Ingress,
    IngressBackend,
    IngressClass,
    LegacyIngress,
    NetworkPolicy,
    NetworkPolicyPeer,
    NetworkPolicyPort,
)
from .common import (
    Check,
    Errors,
    ip_version,
    is_dns1035_label,
    is_dns1123_subdomain,
    is_valid_port_name,
    is_wildcard_dns1123_subdomain,
)

# --- Ingress ---------------------------------------------------------------------------------

_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_BAD_PATH_PARTS = ("//", "/./", "/../", "%2f", "%2F")
_BAD_PATH_ENDS = ("/..", "/.")


def _ingress_backend(e: Errors, path: str, b: IngressBackend) -> None:
    if b.resource is not None and b.service is not None:
        e.invalid(path, "", "cannot set both resource and service backends")
        return
    if b.resource is not None:
        return
    if b.service is None:
        e.invalid(path, "", "resource or service backend is required")
        return
    svc = b.service
    if not svc.name:
        e.required(f"{path}.service.name")
    else:
        e.invalid_each(f"{path}.service.name", svc.name, is_dns1035_label(svc.name))
    name = svc.port.name if svc.port else None
    number = svc.port.number if svc.port else None
    if name and number:
        e.invalid(path, "", "cannot set both port name & port number")
    elif name:
        e.invalid_each(f"{path}.service.port.name", name, is_valid_port_name(name))
    elif number:
        e.port_num(f"{path}.service.port.number", number)
    else:
        e.required(path, "port name or number is required")


def _host(e: Errors, field: str, host: str, reject_ip: bool) -> None:
    if reject_ip and ip_version(host):
        e.invalid(field, host, "must be a DNS name, not an IP address")
    if "*" in host:
        e.invalid_each(field, host, is_wildcard_dns1123_subdomain(host))
    else:
        e.invalid_each(field, host, is_dns1123_subdomain(host))


def _ingress(e: Errors, ing: Ingress, cfg: ClusterConfig | None) -> None:
    spec = ing.spec
    if not spec.rules and spec.defaultBackend is None:
        e.invalid("spec", spec.rules, "either `defaultBackend` or `rules` must be specified")
    if spec.defaultBackend is not None:
        _ingress_backend(e, "spec.defaultBackend", spec.defaultBackend)
    if spec.ingressClassName is not None:
        e.invalid_each("spec.ingressClassName", spec.ingressClassName, is_dns1123_subdomain(spec.ingressClassName))
    for i, tls in enumerate(spec.tls or []):
        for j, h in enumerate(tls.hosts or []):
            _host(e, f"spec.tls[{i}].hosts[{j}]", h, reject_ip=False)
        if tls.secretName:
            e.invalid_each(f"spec.tls[{i}].secretName", tls.secretName, is_dns1123_subdomain(tls.secretName))
    for i, rule in enumerate(spec.rules or []):
        rp = f"spec.rules[{i}]"
        if rule.host:
            _host(e, f"{rp}.host", rule.host, reject_ip=True)
        if rule.http is None:
            continue
        if not rule.http.paths:
            e.required(f"{rp}.http.paths")
        for j, p in enumerate(rule.http.paths):
            pp = f"{rp}.http.paths[{j}]"
            path = p.path or ""
            if p.pathType is None:
                e.required(f"{pp}.pathType", "pathType must be specified")
                continue
            if p.pathType in ("Exact", "Prefix"):
                if not path.startswith("/"):
                    e.invalid(f"{pp}.path", path, "must be an absolute path")
                for bad in _BAD_PATH_PARTS:
                    if bad in path:
                        e.invalid(f"{pp}.path", path, f"must not contain '{bad}'")
                for bad in _BAD_PATH_ENDS:
                    if path.endswith(bad):
                        e.invalid(f"{pp}.path", path, f"cannot end with '{bad}'")
            elif p.pathType == "ImplementationSpecific":
                if path and not path.startswith("/"):
                    e.invalid(f"{pp}.path", path, "must be an absolute path")
            else:
                e.unsupported(f"{pp}.pathType", p.pathType, _PATH_TYPES)
            _ingress_backend(e, f"{pp}.backend", p.backend)


def _legacy_ingress(e: Errors, ing: LegacyIngress, cfg: ClusterConfig | None) -> None:
    # The API server validates the legacy form after converting it, as the loader does.
    _ingress(e, ing.to_v1(), cfg)


def _ingressclass(e: Errors, ic: IngressClass, cfg: ClusterConfig | None) -> None:
    ctl = ic.spec.controller
    if not ctl:
        e.required("spec.controller")
    elif "/" not in ctl:
        e.invalid("spec.controller", ctl, 'must be a domain-prefixed path (such as "acme.io/foo")')


# --- NetworkPolicy ---------------------------------------------------------------------------


# Listed in this order (not sorted, as for Service ports) by the API server's message.
_NP_PROTOCOLS = ("TCP", "UDP", "SCTP")


def _np_port(e: Errors, path: str, p: NetworkPolicyPort) -> None:
    if p.protocol is not None and p.protocol not in _NP_PROTOCOLS:
        e.unsupported(f"{path}.protocol", p.protocol, _NP_PROTOCOLS)
    # The API server words every endPort error as an invalid endPort value.
    if p.port is None:
        if p.endPort is not None:
            e.invalid(f"{path}.endPort", p.endPort, "may not be specified when `port` is not specified")
    elif isinstance(p.port, int):
        e.port_num(f"{path}.port", p.port)
        if p.endPort is not None:
            if p.endPort < p.port:
                e.invalid(f"{path}.endPort", p.endPort, "must be greater than or equal to `port`")
            e.port_num(f"{path}.endPort", p.endPort)
    else:
        if p.endPort is not None:
            e.invalid(f"{path}.endPort", p.endPort, "may not be specified when `port` is non-numeric")
        e.invalid_each(f"{path}.port", p.port, is_valid_port_name(p.port))


def _np_peer(e: Errors, path: str, peer: NetworkPolicyPeer) -> None:
    count = 0
    if peer.podSelector is not None:
        count += 1
        e.label_selector(f"{path}.podSelector", peer.podSelector)
    if peer.namespaceSelector is not None:
        count += 1
        e.label_selector(f"{path}.namespaceSelector", peer.namespaceSelector)
    if peer.ipBlock is not None:
        count += 1
        ib = peer.ipBlock
        bp = f"{path}.ipBlock"
        if not ib.cidr:
            e.required(f"{bp}.cidr")
        else:
            net = e.cidr(f"{bp}.cidr", ib.cidr)
            if net is not None:
                for i, ex in enumerate(ib.except_ or []):
                    sub = e.cidr(f"{bp}.except[{i}]", ex)
                    if sub is None:
                        continue
                    if sub.version != net.version or sub.network_address not in net or net.prefixlen >= sub.prefixlen:
                        e.invalid(f"{bp}.except[{i}]", ex, "must be a strict subset of `cidr`")
    if count == 0:
        e.required(path, "must specify a peer")
    elif count > 1 and peer.ipBlock is not None:
        e.forbidden(path, "may not specify both ipBlock and another peer")


_POLICY_TYPES = ("Ingress", "Egress")


def _networkpolicy(e: Errors, np: NetworkPolicy, cfg: ClusterConfig | None) -> None:
    spec = np.spec
    e.label_selector("spec.podSelector", spec.podSelector)
    for i, rule in enumerate(spec.ingress or []):
        for j, port in enumerate(rule.ports or []):
            _np_port(e, f"spec.ingress[{i}].ports[{j}]", port)
        for j, peer in enumerate(rule.from_ or []):
            _np_peer(e, f"spec.ingress[{i}].from[{j}]", peer)
    for i, erule in enumerate(spec.egress or []):
        for j, port in enumerate(erule.ports or []):
            _np_port(e, f"spec.egress[{i}].ports[{j}]", port)
        for j, peer in enumerate(erule.to or []):
            _np_peer(e, f"spec.egress[{i}].to[{j}]", peer)
    types = spec.policyTypes or []
    if len(types) > len(_POLICY_TYPES):
        # Then the values are not looked at; duplicates within the limit are accepted.
        e.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")
        return
    for i, t in enumerate(types):
        if t not in _POLICY_TYPES:
            e.unsupported(f"spec.policyTypes[{i}]", t, _POLICY_TYPES)


CHECKS: dict[type[Object], Check] = {
    Ingress: _ingress,
    LegacyIngress: _legacy_ingress,
    IngressClass: _ingressclass,
    NetworkPolicy: _networkpolicy,
}
