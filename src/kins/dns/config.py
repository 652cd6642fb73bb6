"""Settings of the cluster DNS server (the knobs of CoreDNS's ``kubernetes`` and ``forward``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.config import ClusterConfig

POD_MODES = ("disabled", "insecure", "verified")


def parse_hostport(text: str, default_port: int = 53) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:53``, ``[::1]:53`` -> (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, default_port


@dataclass(frozen=True)
class DnsConfig:
    zone: str = "cluster.local"
    ttl: int = 5  # CoreDNS's default; kubeadm sets 30
    pods: str = "disabled"  # disabled | insecure | verified
    upstream: tuple[tuple[str, int], ...] = ()
    upstream_timeout: float = 1.0  # per upstream server; the whole forward gives up after 2x this
    ns_ips: tuple[str, ...] = ()  # the glue of ns.dns.<zone> (the DNS service IP)
    max_udp: int = 1232  # what we advertise in OPT (the DNS flag day 2020 size)
    cache_size: int = 10_000  # upstream answers kept (CoreDNS: 9984)
    tcp_idle: float = 10.0
    tcp_max_connections: int = 1000
    zone_labels: tuple[bytes, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        zone = self.zone.strip(".").lower()
        if not zone:
            raise ValueError("the cluster zone must not be the root")
        if self.pods not in POD_MODES:
            raise ValueError(f"pods must be one of {', '.join(POD_MODES)}, not {self.pods!r}")
        if not 0 <= self.ttl <= 3600:
            raise ValueError(f"ttl {self.ttl} must be 0..3600")
        object.__setattr__(self, "zone", zone)
        object.__setattr__(self, "zone_labels", tuple(zone.encode().split(b".")))

    @classmethod
    def from_cluster(cls, cluster: ClusterConfig, **kw: object) -> DnsConfig:
        """The cluster's domain, with the DNS service IP as the NS glue."""
        return cls(zone=cluster.services.domain, ns_ips=(cluster.dns_ip,), **kw)  # type: ignore[arg-type]
