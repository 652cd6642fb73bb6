"""Answers of the cluster zone, per the Kubernetes DNS-Based Service Discovery spec (schema 1.1.0).

Pure: ``answer(index, query, cfg)`` reads only the index. Every name of the zone is first turned
into its *node* (does the name exist, and with which records); the qtype then picks records from
the node, and NXDOMAIN vs NODATA is decided in one place (``_finish``) from ``node.exists``.
Names outside the zone (and reverse names the index does not know) are not ours: ``resolve``
marks them ``forward`` and the server hands them to the upstream; ``answer`` alone, having no
upstream, gives SERVFAIL for them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from dnslib import AAAA, CNAME, NS, PTR, QTYPE, RR, SOA, SRV, TXT, A, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from .config import DnsConfig
from .index import DnsIndex, DnsPort, DnsService, endpoint_name, is_v6, published
from .wire import FORMERR, NOERROR, NXDOMAIN, REFUSED, SERVFAIL, Malformed, Query, parse_query

SCHEMA_VERSION = "1.1.0"
VERSION_TTL = 28800  # CoreDNS hard-codes it
T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_TXT, T_AAAA, T_SRV = 1, 2, 5, 6, 12, 16, 28, 33
T_IXFR, T_AXFR, T_ANY = 251, 252, 255
C_IN, C_ANY = 1, 255
MAX_CNAME_DEPTH = 8

Name = tuple[bytes, ...]


@dataclass
class Result:
    rcode: int = NOERROR
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    forward: bool = False  # not our name: ask the upstream
    chase: str = ""  # a CNAME target outside the zone whose records the upstream should add
    authoritative: bool = True


@dataclass
class _Node:
    exists: bool = False
    rrs: list[RR] = field(default_factory=list)
    cname: str = ""  # lowercase target, no trailing dot


def _label(name: Name) -> DNSLabel:
    return DNSLabel(name)


def _ascii(labels: Name) -> tuple[str, ...]:
    return tuple(x.decode("latin-1").lower() for x in labels)


def _to_name(text: str) -> Name:
    return tuple(text.encode("latin-1").split(b".")) if text else ()


class _Ctx:
    def __init__(self, index: DnsIndex, cfg: DnsConfig) -> None:
        self.index = index
        self.cfg = cfg
        self.zone = cfg.zone_labels
        self.ttl = cfg.ttl

    def fqdn(self, rel: tuple[str, ...]) -> Name:
        return tuple(x.encode("latin-1") for x in rel) + self.zone

    def addr(self, owner: Name, ip: str) -> RR:
        if is_v6(ip):
            return RR(_label(owner), T_AAAA, ttl=self.ttl, rdata=AAAA(ip))
        return RR(_label(owner), T_A, ttl=self.ttl, rdata=A(ip))

    def soa(self, owner: Name) -> RR:
        z = self.zone
        return RR(
            _label(owner),
            T_SOA,
            ttl=min(self.ttl, 300),
            rdata=SOA(
                _label((b"ns", b"dns", *z)),
                _label((b"hostmaster", *z)),
                (self.index.serial & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl),
            ),
        )

    # --- the nodes of the zone -------------------------------------------------------------------

    def node(self, owner: Name, rel: tuple[str, ...]) -> _Node:
        n = len(rel)
        idx = self.index
        if n == 0:
            ns_name = _label((b"ns", b"dns", *self.zone))
            return _Node(True, [self.soa(owner), RR(_label(owner), T_NS, ttl=self.ttl, rdata=NS(ns_name))])
        top = rel[-1]
        if n == 1:
            if top == "dns-version":
                return _Node(True, [RR(_label(owner), T_TXT, ttl=VERSION_TTL, rdata=TXT(SCHEMA_VERSION))])
            return _Node(top in ("svc", "pod", "dns"))  # empty non-terminals
        if top == "dns":
            if rel == ("ns", "dns"):
                return _Node(True, [self.addr(owner, ip) for ip in self.cfg.ns_ips])
            return _Node()
        if top == "svc":
            ns = rel[-2]
            if not idx.namespace_exists(ns):
                return _Node()
            if n == 2:
                return _Node(True)
            svc = idx.service(ns, rel[-3])
            if svc is None:
                return _Node()
            if n == 3:
                return self.service_node(owner, svc)
            if svc.type == "ExternalName":
                return _Node()  # nothing lives below an alias
            if n == 4:
                if rel[0].startswith("_"):
                    proto = rel[0][1:]
                    return _Node(any(p.protocol == proto and p.name for p in self.srv_ports(svc)))
                return self.endpoint_node(owner, svc, rel[0])
            if n == 5 and rel[0].startswith("_") and rel[1].startswith("_"):
                return self.srv_node(owner, svc, rel[0][1:], rel[1][1:])
            return _Node()
        if top == "pod":
            return self.pod_node(owner, rel)
        return _Node()

    def srv_ports(self, svc: DnsService) -> list[DnsPort]:
        if not svc.headless:
            return list(svc.ports)
        return [p for ep in self.index.endpoints(svc.namespace, svc.name) for p in ep.ports]

    def service_node(self, owner: Name, svc: DnsService) -> _Node:
        if svc.type == "ExternalName":
            return _Node(True, cname=svc.external_name)
        target = self.fqdn((svc.name, svc.namespace, "svc"))
        if not svc.headless:
            rrs = [self.addr(owner, ip) for ip in svc.cluster_ips]
            # SRV on the bare service name, one per port: a CoreDNS extension the spec allows.
            ports = [p for p in svc.ports if p.port > 0]
            rrs += self.srv_set(owner, [(target, p.port) for p in ports])
            return _Node(True, rrs)
        eps = published(svc, self.index.endpoints(svc.namespace, svc.name))
        rrs = [self.addr(owner, ip) for ep in eps for ip in ep.addresses]
        # Spec §2.4: a headless service without ready endpoints does not exist.
        if not rrs:
            return _Node()
        pairs = [
            (self.fqdn((endpoint_name(ep, ip), svc.name, svc.namespace, "svc")), p.port)
            for ep in eps
            for p in ep.ports
            for ip in ep.addresses
        ]
        return _Node(True, rrs + self.srv_set(owner, pairs))

    def endpoint_node(self, owner: Name, svc: DnsService, host: str) -> _Node:
        eps = published(svc, self.index.endpoints(svc.namespace, svc.name))
        rrs = [self.addr(owner, ip) for ep in eps for ip in ep.addresses if endpoint_name(ep, ip) == host]
        return _Node(bool(rrs), rrs)

    def srv_node(self, owner: Name, svc: DnsService, port: str, proto: str) -> _Node:
        if not port:
            return _Node()
        if not svc.headless:
            target = self.fqdn((svc.name, svc.namespace, "svc"))
            pairs = [(target, p.port) for p in svc.ports if p.name == port and p.protocol == proto]
        else:
            eps = published(svc, self.index.endpoints(svc.namespace, svc.name))
            pairs = [
                (self.fqdn((endpoint_name(ep, ip), svc.name, svc.namespace, "svc")), p.port)
                for ep in eps
                for p in ep.ports
                if p.name == port and p.protocol == proto
                for ip in ep.addresses
            ]
        rrs = self.srv_set(owner, pairs)
        return _Node(bool(rrs), rrs)

    def srv_set(self, owner: Name, pairs: list[tuple[Name, int]]) -> list[RR]:
        """SRV records as CoreDNS writes them: priority 0, the weight 100 split evenly over the
        (target, port) pairs (at least 1), duplicate pairs collapsed."""
        unique = list(dict.fromkeys(pairs))
        if not unique:
            return []
        weight = max(1, 100 // len(pairs))  # CoreDNS splits the weight before collapsing
        return [
            RR(_label(owner), T_SRV, ttl=self.ttl, rdata=SRV(0, weight, port, _label(target)))
            for target, port in unique
        ]

    def pod_node(self, owner: Name, rel: tuple[str, ...]) -> _Node:
        mode = self.cfg.pods
        if mode == "disabled" or len(rel) > 3:
            return _Node()
        ns = rel[-2]
        if not self.index.namespace_exists(ns):
            return _Node()
        if len(rel) == 2:
            return _Node(True)
        ip = _pod_ip(rel[0])
        if ip is None or (mode == "verified" and not self.index.has_pod(ns, ip)):
            return _Node()
        return _Node(True, [self.addr(owner, ip)])

    # --- questions -------------------------------------------------------------------------------

    def zone_answer(self, owner: Name, rel: tuple[str, ...], qtype: int, depth: int = 0) -> Result:
        if qtype in (T_AXFR, T_IXFR):
            return Result(REFUSED)
        node = self.node(owner, rel)
        if node.cname:
            res = Result(answer=[RR(_label(owner), T_CNAME, ttl=self.ttl, rdata=CNAME(_label(_to_name(node.cname))))])
            if qtype == T_CNAME:
                return res
            target = _to_name(node.cname)
            z = len(self.zone)
            if target[-z:] == self.zone and depth < MAX_CNAME_DEPTH:
                inner = self.zone_answer(target, _ascii(target[: len(target) - z]), qtype, depth + 1)
                res.answer += inner.answer
                res.authority, res.additional, res.rcode, res.chase = (
                    inner.authority,
                    inner.additional,
                    inner.rcode,
                    inner.chase,
                )
            else:
                res.chase = node.cname
            return res
        if qtype == T_ANY:
            rrs = list(node.rrs)
        elif qtype == T_SOA and rel:
            rrs = []  # SOA lives only at the apex
        else:
            rrs = [rr for rr in node.rrs if rr.rtype == qtype]
        return self.finish(node.exists, rrs, self.zone)

    def finish(self, exists: bool, rrs: list[RR], soa_owner: Name) -> Result:
        if rrs:
            res = Result(answer=rrs)
            res.additional = self.glue(rrs)
            return res
        return Result(NOERROR if exists else NXDOMAIN, authority=[self.soa(soa_owner)])

    def glue(self, rrs: list[RR]) -> list[RR]:
        """The A/AAAA records of SRV targets (and of ns.dns.<zone> for NS)."""
        out: list[RR] = []
        seen: set[Name] = set()
        z = len(self.zone)
        for rr in rrs:
            if rr.rtype not in (T_SRV, T_NS):
                continue
            target = tuple(x.lower() for x in rr.rdata.target.label) if rr.rtype == T_SRV else None
            if target is None:
                target = tuple(x.lower() for x in rr.rdata.label.label)
            if target in seen or target[-z:] != self.zone:
                continue
            seen.add(target)
            node = self.node(target, _ascii(target[: len(target) - z]))
            out += [r for r in node.rrs if r.rtype in (T_A, T_AAAA)]
        return out

    def reverse(self, owner: Name, low: tuple[str, ...], qtype: int) -> Result:
        ip = _reverse_ip(low)
        names = self.index.reverse(ip) if ip else ()
        if not names:
            return Result(SERVFAIL, forward=True)  # unknown here: fall through to the upstream
        if qtype not in (T_PTR, T_ANY):
            return Result(authority=[self.soa(tuple(x.encode() for x in low[-2:]))])
        return Result(answer=[RR(_label(owner), T_PTR, ttl=self.ttl, rdata=PTR(_label(self.fqdn(n)))) for n in names])


def _pod_ip(label: str) -> str | None:
    """``10-0-0-1`` -> ``10.0.0.1``; IPv6 with dashes for colons (CoreDNS's rule: exactly three
    dashes and no ``--`` is IPv4)."""
    text = label.replace("-", ".") if label.count("-") == 3 and "--" not in label else label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _reverse_ip(low: tuple[str, ...]) -> str | None:
    if low[-2:] == ("in-addr", "arpa") and len(low) == 6:
        try:
            return str(ipaddress.IPv4Address(".".join(reversed(low[:4]))))
        except ValueError:
            return None
    if low[-2:] == ("ip6", "arpa") and len(low) == 34:
        nibbles = low[:32]
        if not all(len(x) == 1 and x in "0123456789abcdef" for x in nibbles):
            return None
        digits = "".join(reversed(nibbles))
        return str(ipaddress.IPv6Address(int(digits, 16)))
    return None


def resolve(index: DnsIndex, qname: Name, qtype: int, cfg: DnsConfig, qclass: int = C_IN) -> Result:
    """The records for one question; ``qname`` as labels in the query's case (owner names keep it)."""
    low = _ascii(qname)
    zone = cfg.zone_labels
    z = len(zone)
    in_zone = tuple(x.encode("latin-1") for x in low[-z:]) == zone if len(low) >= z else False
    is_reverse = low[-2:] in (("in-addr", "arpa"), ("ip6", "arpa"))
    if not (in_zone or is_reverse):
        return Result(SERVFAIL, forward=True, authoritative=False)
    if qclass not in (C_IN, C_ANY):
        return Result(REFUSED, authoritative=False)
    ctx = _Ctx(index, cfg)
    if in_zone:
        if not index.synced:
            return Result(SERVFAIL, authoritative=False)  # CoreDNS: not synced yet
        return ctx.zone_answer(qname, low[: len(low) - z], qtype)
    return ctx.reverse(qname, low, qtype)


def _record(q: Query, res: Result, ra: bool) -> DNSRecord:
    rd = 1 if q.flags & 0x0100 else 0
    hdr = DNSHeader(id=q.id, qr=1, aa=1 if res.authoritative else 0, rd=rd, ra=1 if ra else 0, rcode=res.rcode)
    rec = DNSRecord(hdr, q=DNSQuestion(_label(q.labels()), q.qtype, q.qclass))
    for rr in res.answer:
        rec.add_answer(rr)
    for rr in res.authority:
        rec.add_auth(rr)
    for rr in res.additional:
        rec.add_ar(rr)
    return rec


def _query_of(rec: DNSRecord) -> Query:
    data = bytes(DNSRecord(DNSHeader(id=rec.header.id, rd=rec.header.rd), q=rec.q).pack())
    return parse_query(data)


def answer(index: DnsIndex, query: bytes | DNSRecord, cfg: DnsConfig) -> DNSRecord:
    """The reply to ``query`` from the index alone (no upstream: names outside the zone SERVFAIL)."""
    try:
        q = parse_query(bytes(query)) if isinstance(query, bytes | bytearray) else _query_of(query)
    except Malformed as e:
        hdr = DNSHeader(id=e.qid, qr=1, rcode=e.rcode if e.rcode is not None else FORMERR)
        return DNSRecord(hdr)
    res = resolve(index, q.labels(), q.qtype, cfg, q.qclass)
    return _record(q, res, ra=False)


__all__ = ["QTYPE", "Result", "answer", "resolve"]
