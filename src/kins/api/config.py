"""The cluster file (``kind: Cluster``, ``apiVersion: kins/v1alpha1``).

It says what the "machines" are: the underlay, the nodes and their pod subnets, the outside
hosts, the pod network (flannel's net-conf), the Service ranges and kube-proxy's settings.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterator
from importlib import resources
from pathlib import Path

import msgspec

from .._errors import MultiValidationError, ValidationError
from .meta import Base

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Underlay(Base):
    cidr: str = "192.168.0.0/24"
    mtu: int = 1500
    gateway: str | None = None  # default: the first address; nothing answers there (no uplink)


class NodeConfig(Base):
    name: str
    ip: str | None = None
    podCIDR: str | None = None
    labels: dict[str, str] | None = None


class HostConfig(Base):
    name: str
    ip: str
    serve: list[int] | None = None  # TCP ports the daemon answers on from this host (an outside service)


class PodNetwork(Base):
    cidr: str = "172.30.0.0/16"
    subnetLength: int = 24
    bridge: str = "docker0"
    backend: str = "vxlan"
    vni: int = 1
    port: int = 8472
    mtu: int | None = None


class Services(Base):
    cidr: str = "10.254.0.0/16"
    nodePortRange: str = "30000-32767"
    dnsIP: str | None = None
    domain: str = "cluster.local"


class IPTablesConfig(Base):
    masqueradeAll: bool = False
    masqueradeBit: int = 14
    localhostNodePorts: bool = True
    minSyncPeriod: str | None = None
    syncPeriod: str | None = None


class KubeProxy(Base):
    mode: str = "iptables"
    clusterCIDR: str | None = None
    iptables: IPTablesConfig = msgspec.field(default_factory=IPTablesConfig)
    nodePortAddresses: list[str] = msgspec.field(default_factory=list)


class LoadBalancerPool(Base):
    addresses: list[str] = msgspec.field(default_factory=list)


_LOG_LIMIT = re.compile(r"^[1-9][0-9]*/(second|minute|hour|day)$")
AGENT_MODES = ("in-process", "process")


class AgentsConfig(Base):
    # in-process: the daemon runs every node's agents itself; process: one ``kins agent``
    # process per node, started and restarted by the daemon. Either way agents use only the API.
    mode: str = "in-process"


NETWORK_POLICY_PROVIDERS = ("kube-router", "none")


class NetworkPolicyConfig(Base):
    # kube-router: k3s' pairing of flannel with kube-router's policy controller enforces
    # NetworkPolicy; none: flannel alone, policies are stored and ignored.
    provider: str = "kube-router"
    # kube-router limits its NFLOG rule (``-m limit``, e.g. "10/minute"); unset logs every denied packet.
    logLimit: str | None = None


class ClusterConfig(Base):
    kind: str = "Cluster"
    apiVersion: str = "kins/v1alpha1"
    name: str = "demo"
    underlay: Underlay = msgspec.field(default_factory=Underlay)
    nodes: list[NodeConfig] = msgspec.field(default_factory=list)
    hosts: list[HostConfig] = msgspec.field(default_factory=list)
    podNetwork: PodNetwork = msgspec.field(default_factory=PodNetwork)
    services: Services = msgspec.field(default_factory=Services)
    kubeProxy: KubeProxy = msgspec.field(default_factory=KubeProxy)
    loadBalancer: LoadBalancerPool | None = None
    agents: AgentsConfig | None = None
    networkPolicy: NetworkPolicyConfig | None = None

    @property
    def policy_provider(self) -> str:
        return self.networkPolicy.provider if self.networkPolicy else "kube-router"

    @property
    def agents_mode(self) -> str:
        return self.agents.mode if self.agents else "in-process"

    # --- derived values (kept derived, never stored) ---
    @property
    def pod_mtu(self) -> int:
        """flannel: the VXLAN device MTU is the underlay MTU minus the 50-byte encapsulation."""
        return self.podNetwork.mtu or self.underlay.mtu - 50

    @property
    def underlay_gateway(self) -> str:
        if self.underlay.gateway:
            return self.underlay.gateway
        return str(ipaddress.IPv4Network(self.underlay.cidr).network_address + 1)

    @property
    def cluster_cidr(self) -> str:
        return self.kubeProxy.clusterCIDR or self.podNetwork.cidr

    @property
    def dns_ip(self) -> str:
        if self.services.dnsIP:
            return self.services.dnsIP
        net = ipaddress.ip_network(self.services.cidr)
        return str(net.network_address + 10)

    @property
    def node_port_range(self) -> tuple[int, int]:
        lo, _, hi = self.services.nodePortRange.partition("-")
        return int(lo), int(hi or lo)

    @property
    def masquerade_mark(self) -> str:
        return hex(1 << self.kubeProxy.iptables.masqueradeBit)

    def node(self, name: str) -> NodeConfig:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


def _ipv4(value: str, path: str, errors: list[ValidationError], where: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        errors.append(ValidationError(where, path, f"{value} is not an IPv4 address"))
        return None


def _net(value: str, path: str, errors: list[ValidationError], where: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as e:
        errors.append(ValidationError(where, path, f"{value} is not an IPv4 CIDR ({e})"))
        return None


def _any_net(value: str, path: str, errors: list[ValidationError], where: str) -> None:
    """An IPv4 or IPv6 CIDR (kube-proxy takes both; each proxier keeps its own family's)."""
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        errors.append(ValidationError(where, path, f"{value} is not an IPv4 or IPv6 CIDR ({e})"))


def _free_subnets(cfg: ClusterConfig, taken: Collection[ipaddress.IPv4Network]) -> Iterator[ipaddress.IPv4Network]:
    """Pod subnets free of ``taken`` (read as the iteration goes), in the order flannel's subnet
    manager leases them: the first subnet of the network is never handed out."""
    subnets = ipaddress.IPv4Network(cfg.podNetwork.cidr).subnets(new_prefix=cfg.podNetwork.subnetLength)
    next(subnets, None)
    return (s for s in subnets if not any(s.overlaps(t) for t in taken))


def _free_ips(cfg: ClusterConfig, taken: Collection[str]) -> Iterator[str]:
    """Underlay addresses free of ``taken`` (read as the iteration goes), lowest first."""
    hosts = (str(a) for a in ipaddress.IPv4Network(cfg.underlay.cidr).hosts())
    # .1 stays free for a would-be gateway; start at .21 like the article's numbering.
    return (a for a in hosts if a not in taken and int(a.rsplit(".", 1)[1]) >= 21)


def free_pod_subnet(cfg: ClusterConfig, taken: Collection[ipaddress.IPv4Network]) -> ipaddress.IPv4Network | None:
    """The pod subnet a node without one is leased next; None when the network is full."""
    return next(_free_subnets(cfg, taken), None)


def free_node_ip(cfg: ClusterConfig, taken: Collection[str]) -> str | None:
    """The underlay address a node without one is given next; None when none is left."""
    return next(_free_ips(cfg, taken), None)


def _lease_subnets(cfg: ClusterConfig) -> None:
    """Give nodes without a podCIDR the next free subnet."""
    taken = {ipaddress.IPv4Network(n.podCIDR) for n in cfg.nodes if n.podCIDR}
    free = _free_subnets(cfg, taken)
    for n in cfg.nodes:
        if n.podCIDR:
            continue
        s = next(free, None)
        if s is None:
            raise MultiValidationError(
                [ValidationError("Cluster", "podNetwork.cidr", f"no free /{cfg.podNetwork.subnetLength} left")]
            )
        n.podCIDR = str(s)
        taken.add(s)


def _lease_ips(cfg: ClusterConfig) -> None:
    taken = {n.ip for n in cfg.nodes if n.ip} | {h.ip for h in cfg.hosts}
    free = _free_ips(cfg, taken)
    for n in cfg.nodes:
        if n.ip:
            continue
        n.ip = next(free, None)
        if n.ip is None:
            break
        taken.add(n.ip)


def validate_cluster(cfg: ClusterConfig) -> list[ValidationError]:
    errs: list[ValidationError] = []
    w = "Cluster"
    if cfg.kind != "Cluster":
        errs.append(ValidationError(w, "kind", f"must be Cluster, not {cfg.kind!r}"))
    if cfg.apiVersion != "kins/v1alpha1":
        errs.append(ValidationError(w, "apiVersion", f"must be kins/v1alpha1, not {cfg.apiVersion!r}"))
    if not _DNS1123_LABEL.match(cfg.name) or len(cfg.name) > 20:
        errs.append(ValidationError(w, "name", f"{cfg.name!r} must be a DNS-1123 label of at most 20 characters"))
    underlay = _net(cfg.underlay.cidr, "underlay.cidr", errs, w)
    if cfg.underlay.gateway is not None:
        gw = _ipv4(cfg.underlay.gateway, "underlay.gateway", errs, w)
        if gw and underlay and gw not in underlay:
            errs.append(ValidationError(w, "underlay.gateway", f"{gw} is outside underlay.cidr {underlay}"))
    podnet = _net(cfg.podNetwork.cidr, "podNetwork.cidr", errs, w)
    svcnet = _net(cfg.services.cidr, "services.cidr", errs, w)
    if not cfg.nodes:
        errs.append(ValidationError(w, "nodes", "at least one node is required"))
    if not 68 <= cfg.underlay.mtu <= 65535:
        errs.append(ValidationError(w, "underlay.mtu", f"{cfg.underlay.mtu} is not a valid MTU"))
    pn = cfg.podNetwork
    if podnet and not podnet.prefixlen < pn.subnetLength <= 30:
        errs.append(
            ValidationError(w, "podNetwork.subnetLength", f"{pn.subnetLength} must be in /{podnet.prefixlen + 1}..30")
        )
    if cfg.agents is not None and cfg.agents.mode not in AGENT_MODES:
        modes = " or ".join(AGENT_MODES)
        errs.append(ValidationError(w, "agents.mode", f"unsupported mode {cfg.agents.mode!r} ({modes})"))
    npc = cfg.networkPolicy
    if npc is not None:
        if npc.provider not in NETWORK_POLICY_PROVIDERS:
            known = " or ".join(NETWORK_POLICY_PROVIDERS)
            errs.append(
                ValidationError(w, "networkPolicy.provider", f"unsupported provider {npc.provider!r} ({known})")
            )
        if npc.logLimit is not None and not _LOG_LIMIT.match(npc.logLimit):
            errs.append(
                ValidationError(w, "networkPolicy.logLimit", f"{npc.logLimit!r} must be N/second|minute|hour|day")
            )
    if pn.backend != "vxlan":
        errs.append(ValidationError(w, "podNetwork.backend", f"unsupported backend {pn.backend!r} (vxlan)"))
    if not 0 < pn.vni < 1 << 24:
        errs.append(ValidationError(w, "podNetwork.vni", f"{pn.vni} must be 1..16777215"))
    if not 0 < pn.port < 65536:
        errs.append(ValidationError(w, "podNetwork.port", f"{pn.port} must be 1..65535"))
    if not pn.bridge or len(pn.bridge) > 15:
        errs.append(ValidationError(w, "podNetwork.bridge", f"{pn.bridge!r} is not a valid interface name"))
    names: set[str] = set()
    ips: dict[str, str] = {}
    for i, n in enumerate(cfg.nodes):
        p = f"nodes[{i}]"
        if not _DNS1123_LABEL.match(n.name):
            errs.append(ValidationError(w, f"{p}.name", f"{n.name!r} must be a DNS-1123 label"))
        if n.name in names:
            errs.append(ValidationError(w, f"{p}.name", f"duplicate node name {n.name!r}"))
        names.add(n.name)
        if n.ip is not None:
            ip = _ipv4(n.ip, f"{p}.ip", errs, w)
            if ip and underlay and str(ip) == (cfg.underlay.gateway or str(underlay.network_address + 1)):
                errs.append(ValidationError(w, f"{p}.ip", f"{n.ip} is the underlay's gateway address"))
            if ip and underlay and ip not in underlay:
                errs.append(ValidationError(w, f"{p}.ip", f"{n.ip} is outside underlay.cidr {underlay}"))
            if n.ip in ips:
                errs.append(ValidationError(w, f"{p}.ip", f"{n.ip} is already used by {ips[n.ip]}"))
            ips[n.ip] = n.name
        if n.podCIDR is not None:
            sub = _net(n.podCIDR, f"{p}.podCIDR", errs, w)
            if sub and podnet and not sub.subnet_of(podnet):
                errs.append(ValidationError(w, f"{p}.podCIDR", f"{sub} is outside podNetwork.cidr {podnet}"))
            for j, m in enumerate(cfg.nodes[:i]):
                if sub and m.podCIDR:
                    try:
                        if sub.overlaps(ipaddress.IPv4Network(m.podCIDR)):
                            errs.append(
                                ValidationError(w, f"{p}.podCIDR", f"{sub} overlaps nodes[{j}].podCIDR {m.podCIDR}")
                            )
                    except ValueError:
                        pass
    for i, h in enumerate(cfg.hosts):
        p = f"hosts[{i}]"
        if not _DNS1123_LABEL.match(h.name):
            errs.append(ValidationError(w, f"{p}.name", f"{h.name!r} must be a DNS-1123 label"))
        if h.name in names:
            errs.append(ValidationError(w, f"{p}.name", f"duplicate name {h.name!r}"))
        names.add(h.name)
        ip = _ipv4(h.ip, f"{p}.ip", errs, w)
        if ip and underlay and ip not in underlay:
            errs.append(ValidationError(w, f"{p}.ip", f"{h.ip} is outside underlay.cidr {underlay}"))
        if h.ip in ips:
            errs.append(ValidationError(w, f"{p}.ip", f"{h.ip} is already used by {ips[h.ip]}"))
        ips[h.ip] = h.name
        for j, port in enumerate(h.serve or []):
            if not 0 < port < 65536:
                errs.append(ValidationError(w, f"{p}.serve[{j}]", f"{port} must be 1..65535"))
    if svcnet and podnet and svcnet.overlaps(podnet):
        errs.append(ValidationError(w, "services.cidr", f"{svcnet} overlaps podNetwork.cidr {podnet}"))
    if cfg.services.dnsIP is not None:
        dns = _ipv4(cfg.services.dnsIP, "services.dnsIP", errs, w)
        if dns and svcnet and dns not in svcnet:
            errs.append(ValidationError(w, "services.dnsIP", f"{dns} is outside services.cidr {svcnet}"))
    rng = re.fullmatch(r"(\d+)-(\d+)", cfg.services.nodePortRange)
    if not rng or not (0 < int(rng.group(1)) <= int(rng.group(2)) < 65536):
        errs.append(
            ValidationError(w, "services.nodePortRange", f"{cfg.services.nodePortRange!r} must be LOW-HIGH in 1..65535")
        )
    kp = cfg.kubeProxy
    if kp.mode != "iptables":
        errs.append(ValidationError(w, "kubeProxy.mode", f"unsupported mode {kp.mode!r} (iptables)"))
    if kp.clusterCIDR:
        _net(kp.clusterCIDR, "kubeProxy.clusterCIDR", errs, w)
    if not 0 <= kp.iptables.masqueradeBit <= 31:
        errs.append(ValidationError(w, "kubeProxy.iptables.masqueradeBit", "must be 0..31"))
    for i, a in enumerate(kp.nodePortAddresses):
        if a != "primary":
            _any_net(a, f"kubeProxy.nodePortAddresses[{i}]", errs, w)
    if cfg.loadBalancer:
        for i, a in enumerate(cfg.loadBalancer.addresses):
            p = f"loadBalancer.addresses[{i}]"
            if "-" in a:
                lo, _, hi = a.partition("-")
                _ipv4(lo.strip(), p, errs, w)
                _ipv4(hi.strip(), p, errs, w)
            else:
                _net(a, p, errs, w)
    return errs


def parse_cluster(data: object, source: str = "cluster file") -> ClusterConfig:
    """Typed, validated, with free pod subnets and node IPs leased. Raises MultiValidationError."""
    from .load import convert  # local: load imports the registry, which imports this module

    if not isinstance(data, dict):
        raise MultiValidationError([ValidationError(source, "", "the cluster file must be a YAML mapping")])
    cfg = convert(data, ClusterConfig, "Cluster")
    errs = validate_cluster(cfg)
    if errs:
        raise MultiValidationError(errs)
    _lease_ips(cfg)
    _lease_subnets(cfg)
    return cfg


def load_cluster(path: str | Path | None = None) -> ClusterConfig:
    """Read a cluster file, or the embedded default (the article's cluster) when ``path`` is None."""
    if path is None:
        text = resources.files("kins").joinpath("data/default-cluster.yaml").read_text()
        src = "default cluster"
    else:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise MultiValidationError([ValidationError(str(p), "", f"cannot read: {e.strerror}")]) from e
        src = str(p)
    return cluster_from_text(text, src)


def cluster_from_text(text: str, src: str) -> ClusterConfig:
    """A cluster file's text (YAML or JSON) read and checked."""
    from .load import parse_text

    docs = parse_text(text, src)
    if len(docs) != 1:
        raise MultiValidationError([ValidationError(src, "", "expected exactly one Cluster document")])
    return parse_cluster(docs[0], src)


def default_cluster() -> ClusterConfig:
    return load_cluster(None)
