"""answer() against a fixed index: one case per record type and rule of the Kubernetes DNS spec
(schema 1.1.0), CoreDNS-style (qname, qtype, rcode, expected records as zone-file lines)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from dnslib import RR, DNSRecord

from kins.api.core import Namespace, Pod, PodStatus, Service, ServicePort, ServiceSpec
from kins.api.discovery import Endpoint, EndpointConditions, EndpointSlice, EndpointSlicePort
from kins.api.meta import Object, ObjectMeta
from kins.dns.answer import answer
from kins.dns.config import DnsConfig
from kins.dns.index import MemoryDnsIndex

NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
SVC_LABEL = "kubernetes.io/service-name"


def svc(
    name: str,
    ips: list[str] | None,
    ports: list[ServicePort] | None = None,
    ns: str = "testns",
    **spec: object,
) -> Service:
    http = [ServicePort(port=80, name="http", protocol="TCP")]
    if ips is None:  # headless
        s = ServiceSpec(clusterIP="None", ports=http if ports is None else ports, **spec)  # type: ignore[arg-type]
    else:
        s = ServiceSpec(
            clusterIP=ips[0] if ips else None, clusterIPs=ips, ports=http if ports is None else ports, **spec
        )  # type: ignore[arg-type]
    return Service(metadata=ObjectMeta(name=name, namespace=ns), spec=s)


def ep(addr: str, hostname: str | None = None, ready: bool | None = True) -> Endpoint:
    cond = EndpointConditions(ready=ready) if ready is not None else None
    return Endpoint(addresses=[addr], hostname=hostname, conditions=cond)


def eps(
    service: str,
    endpoints: list[Endpoint],
    ports: list[EndpointSlicePort] | None = None,
    suffix: str = "a",
    ns: str = "testns",
    family: str = "IPv4",
) -> EndpointSlice:
    return EndpointSlice(
        metadata=ObjectMeta(name=f"{service}-{suffix}", namespace=ns, labels={SVC_LABEL: service}),
        addressType=family,
        endpoints=endpoints,
        ports=[EndpointSlicePort(name="http", port=80, protocol="TCP")] if ports is None else ports,
    )


def f1_objects() -> list[Object]:
    """CoreDNS's main handler fixture (namespace testns), plus a few readiness cases."""
    return [
        Namespace(metadata=ObjectMeta(name="testns")),
        Namespace(metadata=ObjectMeta(name="other")),
        svc("svc1", ["10.0.0.1"]),
        eps("svc1", [ep("172.0.0.1", "ep1a")]),
        svc("svcempty", ["10.0.0.1"]),
        svc("svc6", ["1234:abcd::1"]),
        svc("svc-dual-stack", ["10.0.0.3", "10::3"]),
        svc("hdls1", None),
        eps("hdls1", [ep("172.0.0.2"), ep("172.0.0.3"), ep("172.0.0.4", "dup-name"), ep("172.0.0.5", "dup-name")]),
        eps("hdls1", [ep("5678:abcd::1"), ep("5678:abcd::2")], suffix="v6", family="IPv6"),
        svc("hdlsprtls", None, ports=[]),
        eps("hdlsprtls", [ep("172.0.0.20")], ports=[]),
        svc("external", [], type="ExternalName", externalName="ext.interwebs.test"),
        svc("external-to-service", [], type="ExternalName", externalName="svc1.testns.svc.cluster.local."),
        svc("notready", None),
        eps("notready", [ep("172.0.1.1", ready=False)]),
        svc("nilready", None),
        eps("nilready", [ep("172.0.1.2", ready=None)]),
        svc("pubnotready", None, publishNotReadyAddresses=True),
        eps("pubnotready", [ep("172.0.1.3", ready=False)]),
        svc("hdlsempty", None),
        svc(
            "multi",
            ["10.0.0.9"],
            ports=[
                ServicePort(port=53, name="dns", protocol="UDP"),
                ServicePort(port=53, name="dns-tcp", protocol="TCP"),
                ServicePort(port=9153, protocol="TCP"),
            ],
        ),
        svc("other-svc", ["10.0.0.50"], ns="other"),
        Pod(metadata=ObjectMeta(name="p1", namespace="testns"), status=PodStatus(podIP="172.0.0.9")),
    ]


@pytest.fixture(scope="module")
def index() -> MemoryDnsIndex:
    return MemoryDnsIndex.from_objects(f1_objects())


SOA = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. <serial> 7200 1800 86400 5"
Z = "svc.cluster.local."


@dataclass
class Case:
    qname: str
    qtype: str
    rcode: int
    answer: list[str] = field(default_factory=list)
    additional: list[str] = field(default_factory=list)
    soa: bool = False  # the zone SOA in the authority section

    def __str__(self) -> str:
        return f"{self.qname}/{self.qtype}"


def zone_lines(rrs: list[RR]) -> list[str]:
    out = []
    for rr in rrs:
        words = rr.toZone().split()
        if rr.rtype == 6:
            words[6] = "<serial>"
        out.append(" ".join(words))
    return out


F1 = [
    # §2.2 schema version
    Case("dns-version.cluster.local.", "TXT", NOERROR, ['dns-version.cluster.local. 28800 IN TXT "1.1.0"']),
    Case("dns-version.cluster.local.", "A", NOERROR, soa=True),
    # §2.3 ClusterIP services: A/AAAA by family, even without endpoints
    Case("svc1.testns.svc.cluster.local.", "A", NOERROR, [f"svc1.testns.{Z} 5 IN A 10.0.0.1"]),
    Case("svcempty.testns.svc.cluster.local.", "A", NOERROR, [f"svcempty.testns.{Z} 5 IN A 10.0.0.1"]),
    Case("svc6.testns.svc.cluster.local.", "AAAA", NOERROR, [f"svc6.testns.{Z} 5 IN AAAA 1234:abcd::1"]),
    Case("svc6.testns.svc.cluster.local.", "A", NOERROR, soa=True),
    Case("svc-dual-stack.testns.svc.cluster.local.", "A", NOERROR, [f"svc-dual-stack.testns.{Z} 5 IN A 10.0.0.3"]),
    Case("svc-dual-stack.testns.svc.cluster.local.", "AAAA", NOERROR, [f"svc-dual-stack.testns.{Z} 5 IN AAAA 10::3"]),
    Case("svc1.testns.svc.cluster.local.", "AAAA", NOERROR, soa=True),
    Case("svc1.testns.svc.cluster.local.", "TXT", NOERROR, soa=True),
    Case("svc1.testns.svc.cluster.local.", "HINFO", NOERROR, soa=True),
    Case("svc1.testns.svc.cluster.local.", "SOA", NOERROR, soa=True),
    # case-insensitive match, the question's case kept in the owner name
    Case("SvC1.TeStNs.SvC.cLuStEr.LoCaL.", "A", NOERROR, ["SvC1.TeStNs.SvC.cLuStEr.LoCaL. 5 IN A 10.0.0.1"]),
    # SRV per named port (priority 0, weight 100), target's A in additional
    Case(
        "_http._tcp.svc1.testns.svc.cluster.local.",
        "SRV",
        NOERROR,
        [f"_http._tcp.svc1.testns.{Z} 5 IN SRV 0 100 80 svc1.testns.{Z}"],
        [f"svc1.testns.{Z} 5 IN A 10.0.0.1"],
    ),
    Case(
        "_HTTP._TCP.svc1.testns.svc.cluster.local.",
        "SRV",
        NOERROR,
        [f"_HTTP._TCP.svc1.testns.{Z} 5 IN SRV 0 100 80 svc1.testns.{Z}"],
        [f"svc1.testns.{Z} 5 IN A 10.0.0.1"],
    ),
    Case(
        "_dns._udp.multi.testns.svc.cluster.local.",
        "SRV",
        NOERROR,
        [f"_dns._udp.multi.testns.{Z} 5 IN SRV 0 100 53 multi.testns.{Z}"],
        [f"multi.testns.{Z} 5 IN A 10.0.0.9"],
    ),
    Case("_dns._tcp.multi.testns.svc.cluster.local.", "SRV", NXDOMAIN, soa=True),  # dns is the UDP port
    Case("_http._udp.svc1.testns.svc.cluster.local.", "SRV", NXDOMAIN, soa=True),
    Case("_https._tcp.svc1.testns.svc.cluster.local.", "SRV", NXDOMAIN, soa=True),
    Case("_http._tcp.svc1.testns.svc.cluster.local.", "A", NOERROR, soa=True),
    Case("_tcp.svc1.testns.svc.cluster.local.", "A", NOERROR, soa=True),  # empty non-terminal
    Case("_sctp.svc1.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    # bare-name SRV (CoreDNS extension): one per port, unnamed ones included
    Case(
        "multi.testns.svc.cluster.local.",
        "SRV",
        NOERROR,
        [
            f"multi.testns.{Z} 5 IN SRV 0 33 53 multi.testns.{Z}",
            f"multi.testns.{Z} 5 IN SRV 0 33 9153 multi.testns.{Z}",
        ],
        [f"multi.testns.{Z} 5 IN A 10.0.0.9"],
    ),
    # endpoint names resolve under ClusterIP services too
    Case("ep1a.svc1.testns.svc.cluster.local.", "A", NOERROR, [f"ep1a.svc1.testns.{Z} 5 IN A 172.0.0.1"]),
    # §2.4 headless: one A/AAAA per ready endpoint
    Case(
        "hdls1.testns.svc.cluster.local.",
        "A",
        NOERROR,
        [
            f"hdls1.testns.{Z} 5 IN A 172.0.0.2",
            f"hdls1.testns.{Z} 5 IN A 172.0.0.3",
            f"hdls1.testns.{Z} 5 IN A 172.0.0.4",
            f"hdls1.testns.{Z} 5 IN A 172.0.0.5",
        ],
    ),
    Case(
        "hdls1.testns.svc.cluster.local.",
        "AAAA",
        NOERROR,
        [
            f"hdls1.testns.{Z} 5 IN AAAA 5678:abcd::1",
            f"hdls1.testns.{Z} 5 IN AAAA 5678:abcd::2",
        ],
    ),
    Case(
        "dup-name.hdls1.testns.svc.cluster.local.",
        "A",
        NOERROR,
        [
            f"dup-name.hdls1.testns.{Z} 5 IN A 172.0.0.4",
            f"dup-name.hdls1.testns.{Z} 5 IN A 172.0.0.5",
        ],
    ),
    Case("172-0-0-2.hdls1.testns.svc.cluster.local.", "A", NOERROR, [f"172-0-0-2.hdls1.testns.{Z} 5 IN A 172.0.0.2"]),
    Case(
        "5678-abcd--1.hdls1.testns.svc.cluster.local.",
        "AAAA",
        NOERROR,
        [f"5678-abcd--1.hdls1.testns.{Z} 5 IN AAAA 5678:abcd::1"],
    ),
    Case("5678-abcd--1.hdls1.testns.svc.cluster.local.", "A", NOERROR, soa=True),
    Case("bogusendpoint.hdls1.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    Case(
        "_http._tcp.hdls1.testns.svc.cluster.local.",
        "SRV",
        NOERROR,
        [
            f"_http._tcp.hdls1.testns.{Z} 5 IN SRV 0 16 80 172-0-0-2.hdls1.testns.{Z}",
            f"_http._tcp.hdls1.testns.{Z} 5 IN SRV 0 16 80 172-0-0-3.hdls1.testns.{Z}",
            f"_http._tcp.hdls1.testns.{Z} 5 IN SRV 0 16 80 dup-name.hdls1.testns.{Z}",
            f"_http._tcp.hdls1.testns.{Z} 5 IN SRV 0 16 80 5678-abcd--1.hdls1.testns.{Z}",
            f"_http._tcp.hdls1.testns.{Z} 5 IN SRV 0 16 80 5678-abcd--2.hdls1.testns.{Z}",
        ],
        [
            f"172-0-0-2.hdls1.testns.{Z} 5 IN A 172.0.0.2",
            f"172-0-0-3.hdls1.testns.{Z} 5 IN A 172.0.0.3",
            f"dup-name.hdls1.testns.{Z} 5 IN A 172.0.0.4",
            f"dup-name.hdls1.testns.{Z} 5 IN A 172.0.0.5",
            f"5678-abcd--1.hdls1.testns.{Z} 5 IN AAAA 5678:abcd::1",
            f"5678-abcd--2.hdls1.testns.{Z} 5 IN AAAA 5678:abcd::2",
        ],
    ),
    Case("hdlsprtls.testns.svc.cluster.local.", "A", NOERROR, [f"hdlsprtls.testns.{Z} 5 IN A 172.0.0.20"]),
    Case("_http._tcp.hdlsprtls.testns.svc.cluster.local.", "SRV", NXDOMAIN, soa=True),
    # readiness: not-ready endpoints are left out unless publishNotReadyAddresses; nil means ready
    Case("notready.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    Case("nilready.testns.svc.cluster.local.", "A", NOERROR, [f"nilready.testns.{Z} 5 IN A 172.0.1.2"]),
    Case("pubnotready.testns.svc.cluster.local.", "A", NOERROR, [f"pubnotready.testns.{Z} 5 IN A 172.0.1.3"]),
    Case("hdlsempty.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),  # spec: no ready endpoints
    # §2.5 ExternalName: CNAME first, an in-zone target's records follow
    Case("external.testns.svc.cluster.local.", "A", NOERROR, [f"external.testns.{Z} 5 IN CNAME ext.interwebs.test."]),
    Case(
        "external.testns.svc.cluster.local.", "CNAME", NOERROR, [f"external.testns.{Z} 5 IN CNAME ext.interwebs.test."]
    ),
    Case(
        "external-to-service.testns.svc.cluster.local.",
        "A",
        NOERROR,
        [
            f"external-to-service.testns.{Z} 5 IN CNAME svc1.testns.{Z}",
            f"svc1.testns.{Z} 5 IN A 10.0.0.1",
        ],
    ),
    Case("x.external.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    # PTR for ClusterIPs (two services share 10.0.0.1) and endpoint IPs
    Case(
        "1.0.0.10.in-addr.arpa.",
        "PTR",
        NOERROR,
        [
            f"1.0.0.10.in-addr.arpa. 5 IN PTR svc1.testns.{Z}",
            f"1.0.0.10.in-addr.arpa. 5 IN PTR svcempty.testns.{Z}",
        ],
    ),
    Case("1.0.0.172.in-addr.arpa.", "PTR", NOERROR, [f"1.0.0.172.in-addr.arpa. 5 IN PTR ep1a.svc1.testns.{Z}"]),
    Case("2.0.0.172.in-addr.arpa.", "PTR", NOERROR, [f"2.0.0.172.in-addr.arpa. 5 IN PTR 172-0-0-2.hdls1.testns.{Z}"]),
    Case(
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.8.7.6.5.ip6.arpa.",
        "PTR",
        NOERROR,
        [
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.8.7.6.5.ip6.arpa. 5 IN PTR "
            f"5678-abcd--1.hdls1.testns.{Z}"
        ],
    ),
    Case("1.1.0.172.in-addr.arpa.", "PTR", SERVFAIL),  # not-ready endpoint: not ours, no upstream
    Case("4.3.2.1.in-addr.arpa.", "PTR", SERVFAIL),
    # empty non-terminals and namespaces
    Case("svc.cluster.local.", "A", NOERROR, soa=True),
    Case("pod.cluster.local.", "A", NOERROR, soa=True),
    Case("testns.svc.cluster.local.", "A", NOERROR, soa=True),
    Case("nons.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    Case("svc1.nons.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    Case("svc0.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    Case("a.b.c.svc1.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    Case("foo.cluster.local.", "NS", NXDOMAIN, soa=True),
    Case("*.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),  # no wildcards (CoreDNS 1.9+)
    Case("any.testns.svc.cluster.local.", "A", NXDOMAIN, soa=True),
    # the apex
    Case("cluster.local.", "SOA", NOERROR, [SOA]),
    Case("cluster.local.", "NS", NOERROR, ["cluster.local. 5 IN NS ns.dns.cluster.local."]),
    Case("cluster.local.", "A", NOERROR, soa=True),
    Case("cluster.local.", "AXFR", REFUSED),
    # pods disabled by default
    Case("10-0-0-1.testns.pod.cluster.local.", "A", NXDOMAIN, soa=True),
    # outside the zone, no upstream
    Case("example.com.", "A", SERVFAIL),
]


def check(idx: MemoryDnsIndex, cfg: DnsConfig, c: Case) -> None:
    reply = answer(idx, DNSRecord.question(c.qname, c.qtype), cfg)
    assert reply.header.rcode == c.rcode, reply
    assert reply.header.qr == 1
    assert str(reply.q.qname) == c.qname  # the question echoed as asked
    assert sorted(zone_lines(reply.rr)) == sorted(c.answer)
    if c.additional:
        assert sorted(zone_lines(reply.ar)) == sorted(c.additional)
    else:
        assert reply.ar == []
    if c.soa:
        assert zone_lines(reply.auth) == [SOA]
    else:
        assert reply.auth == []
    if c.rcode in (NOERROR, NXDOMAIN):
        assert reply.header.aa == 1


@pytest.mark.parametrize("case", F1, ids=str)
def test_f1(index: MemoryDnsIndex, case: Case) -> None:
    check(index, DnsConfig(), case)


def test_answers_keep_the_query_id_and_rd(index: MemoryDnsIndex) -> None:
    q = DNSRecord.question("svc1.testns.svc.cluster.local", "A")
    q.header.id = 4321
    q.header.rd = 0
    r = answer(index, q.pack(), DnsConfig())
    assert (r.header.id, r.header.rd, r.header.qr) == (4321, 0, 1)


def test_ttl_is_configurable(index: MemoryDnsIndex) -> None:
    cfg = DnsConfig(ttl=30)
    r = answer(index, DNSRecord.question("svc1.testns.svc.cluster.local", "A"), cfg)
    assert [rr.ttl for rr in r.rr] == [30]
    neg = answer(index, DNSRecord.question("nope.testns.svc.cluster.local", "A"), cfg)
    soa = neg.auth[0]
    assert soa.ttl == 30 and soa.rdata.times[1:] == (7200, 1800, 86400, 30)
    assert answer(index, DNSRecord.question("dns-version.cluster.local", "TXT"), cfg).rr[0].ttl == 28800


def test_ns_glue(index: MemoryDnsIndex) -> None:
    cfg = DnsConfig(ns_ips=("10.254.0.10",))
    r = answer(index, DNSRecord.question("cluster.local", "NS"), cfg)
    assert zone_lines(r.ar) == ["ns.dns.cluster.local. 5 IN A 10.254.0.10"]
    a = answer(index, DNSRecord.question("ns.dns.cluster.local", "A"), cfg)
    assert zone_lines(a.rr) == ["ns.dns.cluster.local. 5 IN A 10.254.0.10"]


POD_CASES = {
    "insecure": [
        Case(
            "10-0-0-1.testns.pod.cluster.local.", "A", NOERROR, ["10-0-0-1.testns.pod.cluster.local. 5 IN A 10.0.0.1"]
        ),
        Case("10-0-0-1.testns.pod.cluster.local.", "AAAA", NOERROR, soa=True),
        Case(
            "1234-abcd--1.testns.pod.cluster.local.",
            "AAAA",
            NOERROR,
            ["1234-abcd--1.testns.pod.cluster.local. 5 IN AAAA 1234:abcd::1"],
        ),
        Case("blah.testns.pod.cluster.local.", "A", NXDOMAIN, soa=True),
        Case("10-0-0-1.nons.pod.cluster.local.", "A", NXDOMAIN, soa=True),
        Case("testns.pod.cluster.local.", "A", NOERROR, soa=True),
        Case("nons.pod.cluster.local.", "A", NXDOMAIN, soa=True),
    ],
    "verified": [
        Case(
            "172-0-0-9.testns.pod.cluster.local.",
            "A",
            NOERROR,
            ["172-0-0-9.testns.pod.cluster.local. 5 IN A 172.0.0.9"],
        ),
        Case("172-0-0-8.testns.pod.cluster.local.", "A", NXDOMAIN, soa=True),
        Case("172-0-0-9.other.pod.cluster.local.", "A", NXDOMAIN, soa=True),  # the pod lives in testns
    ],
    "disabled": [
        Case("172-0-0-9.testns.pod.cluster.local.", "A", NXDOMAIN, soa=True),
        Case("testns.pod.cluster.local.", "A", NXDOMAIN, soa=True),
    ],
}


@pytest.mark.parametrize(("mode", "case"), [(m, c) for m, cs in POD_CASES.items() for c in cs], ids=lambda x: str(x))
def test_pod_records(index: MemoryDnsIndex, mode: str, case: Case) -> None:
    check(index, DnsConfig(pods=mode), case)


def test_other_zone_name(index: MemoryDnsIndex) -> None:
    cfg = DnsConfig(zone="kins.test")
    ok = answer(index, DNSRecord.question("svc1.testns.svc.kins.test", "A"), cfg)
    assert zone_lines(ok.rr) == ["svc1.testns.svc.kins.test. 5 IN A 10.0.0.1"]
    assert answer(index, DNSRecord.question("svc1.testns.svc.cluster.local", "A"), cfg).header.rcode == SERVFAIL


def test_not_synced_is_servfail() -> None:
    idx = MemoryDnsIndex()
    r = answer(idx, DNSRecord.question("svc1.testns.svc.cluster.local", "A"), DnsConfig())
    assert r.header.rcode == SERVFAIL


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x00\x01",
        b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
    ],
)
def test_malformed_bytes_give_formerr(index: MemoryDnsIndex, packet: bytes) -> None:
    r = answer(index, packet, DnsConfig())
    assert r.header.rcode == 1 and r.header.qr == 1
