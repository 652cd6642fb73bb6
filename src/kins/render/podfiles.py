"""The files kubelet (with the container runtime) writes into every pod: resolv.conf and hosts.

resolv.conf follows kubelet's ``GetPodDNS`` (policy -> servers, searches, options; then the
pod's ``dnsConfig``; then the limits), written the way the runtime formats it:

- containerd (the runtime of current clusters) writes ``search``, then ``nameserver`` lines,
  then ``options``;
- dockershim (Docker clusters up to Kubernetes 1.23, like the reference article's) wrote the
  ``nameserver`` lines first, then ``search`` and ``options``.

kins' nodes are laid out like the article's (a ``docker0`` bridge), so the dockershim order is the
default and a pod's resolv.conf reads exactly as the article shows it.

The nodes here have no upstream resolver: kubelet runs as with ``--resolv-conf=""``, for which
policy ``Default`` yields ``nameserver 127.0.0.1`` and ``search .`` and ``ClusterFirst`` adds no
host search domains.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from ..api.config import ClusterConfig
from ..api.core import Pod

Runtime = Literal["containerd", "docker"]

MAX_NAMESERVERS = 3  # glibc's MAXNS; kubelet drops the rest
MAX_SEARCH_PATHS = 32  # since ExpandedDNSConfig (GA in 1.28)
MAX_SEARCH_CHARS = 2048
MAX_DOMAIN_LEN = 253  # longer search domains are dropped (glibc aborts on them)
HOSTNAME_MAX = 63


@dataclass(frozen=True, slots=True)
class HostDNS:
    """The node's resolver settings (kubelet ``--resolv-conf``). Empty means the flag is ``""``."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.nameservers or self.searches or self.options)


@dataclass(slots=True)
class DNSConfig:
    """What kubelet hands the runtime (CRI ``DNSConfig``)."""

    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def _dedup(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def dns_type(pod: Pod) -> Literal["cluster", "host", "none"]:
    """kubelet's ``getPodDNSType``: ClusterFirst falls back to the node's settings for
    hostNetwork pods; only ClusterFirstWithHostNet keeps cluster DNS there."""
    policy = pod.spec.dnsPolicy or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst" and not pod.spec.hostNetwork:
        return "cluster"
    return "host"


def _merge_options(existing: list[str], pod_options: list[tuple[str, str | None]]) -> list[str]:
    """kubelet's ``mergeDNSOptions``: a pod option replaces one of the same name. kubelet goes
    through a Go map, so its order is random; here existing options keep their place and new
    ones follow in the pod's order."""
    merged: dict[str, str] = {}
    for op in existing:
        name, sep, value = op.partition(":")
        merged[name] = value if sep else ""
    for name, pod_value in pod_options:
        merged[name] = pod_value or ""
    return [f"{k}:{v}" if v else k for k, v in merged.items()]


def _fit_searches(searches: list[str]) -> list[str]:
    """kubelet's ``formDNSSearchFitsLimits``."""
    out = searches[:MAX_SEARCH_PATHS]
    out = [s for s in out if len(s) <= MAX_DOMAIN_LEN]
    line = len(" ".join(out))
    if line > MAX_SEARCH_CHARS:
        cut = 0
        while out and line - cut > MAX_SEARCH_CHARS:
            cut += len(out.pop()) + 1
    return out


def pod_dns_config(pod: Pod, cfg: ClusterConfig, host: HostDNS | None = None) -> DNSConfig:
    """kubelet's ``GetPodDNS`` for ``pod`` on a node whose resolver settings are ``host``."""
    host = host or HostDNS()
    kind = dns_type(pod)
    domain = cfg.services.domain
    if kind == "none":
        conf = DNSConfig()
    elif kind == "cluster":
        cluster_search = [f"{pod.namespace}.svc.{domain}", f"svc.{domain}", domain]
        conf = DNSConfig(
            servers=[cfg.dns_ip],
            searches=_dedup(cluster_search + list(host.searches)),
            options=["ndots:5"],
        )
    elif host.configured:
        conf = DNSConfig(list(host.nameservers), list(host.searches), list(host.options))
    else:
        # --resolv-conf="": "nameserver on the local machine", and no search list.
        conf = DNSConfig(servers=["127.0.0.1"], searches=["."])
    dc = pod.spec.dnsConfig
    if dc is not None:
        conf.servers = _dedup(conf.servers + list(dc.nameservers or []))
        conf.searches = _dedup(conf.searches + list(dc.searches or []))
        conf.options = _merge_options(conf.options, [(o.name, o.value) for o in dc.options or []])
    conf.servers = conf.servers[:MAX_NAMESERVERS]
    conf.searches = _fit_searches(conf.searches)
    return conf


def render_resolv_conf(pod: Pod, cfg: ClusterConfig, host: HostDNS | None = None, runtime: Runtime = "docker") -> str:
    """The pod's /etc/resolv.conf, byte for byte as the runtime writes it."""
    conf = pod_dns_config(pod, cfg, host)
    ns = [f"nameserver {s}\n" for s in conf.servers]
    search = [f"search {' '.join(conf.searches)}\n"] if conf.searches else []
    opts = [f"options {' '.join(conf.options)}\n"] if conf.options else []
    lines = search + ns + opts if runtime == "containerd" else ns + search + opts
    return "".join(lines)


def pod_hostname(pod: Pod, cfg: ClusterConfig) -> tuple[str, str]:
    """kubelet's ``GeneratePodHostNameAndDomain``: (hostname, domain). The hostname is
    ``spec.hostname`` or the pod name cut to 63 characters without a trailing ``-``/``.``; the
    domain is ``<subdomain>.<ns>.svc.<cluster domain>`` when a subdomain is set."""
    hostname = pod.spec.hostname or pod.name
    if len(hostname) > HOSTNAME_MAX:
        hostname = hostname[:HOSTNAME_MAX].rstrip("-.")
    domain = f"{pod.spec.subdomain}.{pod.namespace}.svc.{cfg.services.domain}" if pod.spec.subdomain else ""
    return hostname, domain


def pod_ips(pod: Pod) -> list[str]:
    st = pod.status
    if st is None:
        return []
    if st.podIPs:
        return [p.ip for p in st.podIPs]
    return [st.podIP] if st.podIP else []


def render_hosts_file(pod: Pod, cfg: ClusterConfig) -> str:
    """The pod's /etc/hosts, byte for byte as kubelet's ``managedHostsFileContent`` writes it."""
    lines: list[str] = []
    if pod.spec.hostNetwork:
        # kubelet copies the node's own /etc/hosts here; the node's is the plain localhost file.
        lines += ["# Kubernetes-managed hosts file (host network).\n", "127.0.0.1\tlocalhost\n"]
    else:
        hostname, domain = pod_hostname(pod, cfg)
        lines += [
            "# Kubernetes-managed hosts file.\n",
            "127.0.0.1\tlocalhost\n",
            "::1\tlocalhost ip6-localhost ip6-loopback\n",
            "fe00::0\tip6-localnet\n",
            "fe00::0\tip6-mcastprefix\n",
            "fe00::1\tip6-allnodes\n",
            "fe00::2\tip6-allrouters\n",
        ]
        for ip in pod_ips(pod):
            ipaddress.ip_address(ip)  # a malformed IP must not reach the file
            lines.append(f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n")
    aliases = pod.spec.hostAliases or []
    if aliases:
        lines += ["\n", "# Entries added by HostAliases.\n"]
        # One line per alias entry, its hostnames tab-separated.
        lines += ["\t".join([a.ip, *(a.hostnames or [])]) + "\n" for a in aliases]
    return "".join(lines)
