"""Cluster DNS on a live cluster, asked from inside pods the way applications ask it.

kube-system/kube-dns (kins' DNS server in two pods) sits behind the Service IP 10.254.0.2 that
every pod's resolv.conf names. Queries go through that IP (kube-proxy DNATs each one to one of
the two pods) with ``dig`` and through the pods' own resolver (``nslookup``, ``getent``,
``ping``, and business-manager's own lookup of ``data-product``), and to each DNS pod's IP.

One cluster serves the module.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources

import pytest
from e2e_helpers import DATA_PRODUCT_IP, KINS, Cluster, poll, running_cluster

pytestmark = pytest.mark.root

DNS_IP = "10.254.0.2"
ZONE = "cluster.local"
TTL = 5
ARTICLE = resources.files("kins").joinpath("data/article")
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"


def _db_pod(name: str) -> str:
    # StatefulSet-like: spec.hostname + spec.subdomain naming the headless Service.
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {{app: db}}}}
spec:
  hostname: {name}
  subdomain: db
  containers:
  - {{name: pause, image: {AGNHOST}, args: [pause]}}
"""


EXTRA = (
    f"""
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: default}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports:
  - {{name: mysql, port: 3306, protocol: TCP}}
  - {{name: stats, port: 9104, protocol: UDP}}
---
apiVersion: v1
kind: Service
metadata: {{name: ext, namespace: default}}
spec:
  type: ExternalName
  externalName: www.example.com
---
apiVersion: v1
kind: Service
metadata: {{name: hl, namespace: default}}
spec:
  clusterIP: None
  selector: {{app: hl}}
  ports: [{{name: http, port: 80}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hl, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: hl}}}}
  template:
    metadata: {{labels: {{app: hl}}}}
    spec:
      containers:
      - {{name: pause, image: {AGNHOST}, args: [pause]}}
---"""
    + _db_pod("db-0")
    + "---"
    + _db_pod("db-1")
)


# --- dig, parsed ---------------------------------------------------------------------------------


@dataclass
class Record:
    name: str
    ttl: int
    type: str
    data: str


@dataclass
class Reply:
    status: str
    flags: set[str]
    msec: int
    answer: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)

    def data(self, rtype: str) -> list[str]:
        return sorted(r.data for r in self.answer if r.type == rtype)


def parse_dig(text: str) -> Reply:
    """One ``dig +noall +comments +answer +authority +additional +stats`` output."""
    status = re.search(r"status: (\w+)", text)
    flags = re.search(r";; flags: ([a-z ]+);", text)
    msec = re.search(r";; Query time: (\d+) msec", text)
    assert status and flags and msec, f"not a dig answer:\n{text}"
    reply = Reply(status[1], set(flags[1].split()), int(msec[1]))
    section: list[Record] | None = None
    for line in text.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            section = reply.answer
        elif line.startswith(";; AUTHORITY SECTION"):
            section = reply.authority
        elif line.startswith(";; ADDITIONAL SECTION"):
            section = reply.additional
        elif line.startswith(";") or not line.strip():
            if not line.strip():
                section = None
        elif section is not None:
            name, ttl, _cls, rtype, *data = line.split()
            section.append(Record(name.lower(), int(ttl), rtype, " ".join(data)))
    return reply


def dig(c: Cluster, pod: str, *questions: str, server: str = DNS_IP, tcp: bool = False) -> list[Reply]:
    """Each question ("NAME TYPE") asked by dig inside ``pod``, all in one exec."""
    opts = "+noall +comments +answer +authority +additional +stats +tries=1 +time=2" + (" +tcp" if tcp else "")
    script = "; echo '#####'; ".join(f"dig {opts} @{server} {q}" for q in questions)
    out = c.exec(pod, "sh", "-c", script).stdout
    parts = out.split("#####\n")
    assert len(parts) == len(questions), out
    return [parse_dig(p) for p in parts]


def ask(c: Cluster, pod: str, question: str, **kw: object) -> Reply:
    return dig(c, pod, question, **kw)[0]  # type: ignore[arg-type]


def svc(name: str, ns: str = "default") -> str:
    return f"{name}.{ns}.svc.{ZONE}."


def rev(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def assert_soa(reply: Reply) -> None:
    """A negative answer carries the zone's SOA (TTL and minimum = the zone's TTL)."""
    assert not reply.answer, reply
    assert [r.type for r in reply.authority] == ["SOA"], reply
    soa = reply.authority[0]
    assert soa.name == f"{ZONE}." and soa.ttl == TTL
    mname, rname, _serial, refresh, retry, expire, minimum = soa.data.split()
    assert (mname, rname) == (f"ns.dns.{ZONE}.", f"hostmaster.{ZONE}.")
    assert (refresh, retry, expire, minimum) == ("7200", "1800", "86400", str(TTL))


# --- the cluster -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The article's apps, cluster DNS, and the Services these tests ask about."""
    with running_cluster() as c:
        dns = [str(ARTICLE.joinpath(f)) for f in ("kube-dns.yaml", "kube-dns-service.yaml")]
        c.kins("apply", *(a for f in dns for a in ("-f", f)))
        c.apply_text(EXTRA)
        c.wait_ready("kube-dns", 2, ns="kube-system")
        c.wait_ready("db-", 2)
        c.wait_ready("hl", 2)
        poll(lambda: len(c.endpoint_ips("kube-dns", "kube-system")) == 2, 10, "kube-dns's 2 endpoints")
        poll(lambda: len(c.endpoint_ips("db")) == 2, 10, "db's 2 endpoints")
        c.wait_rules_synced()
        yield c


@pytest.fixture(scope="module")
def client_pod(cluster: Cluster) -> str:
    return cluster.ready_pods("business-manager")[0].name


# --- records ---------------------------------------------------------------------------------------


def test_pods_get_the_cluster_resolver(cluster: Cluster, client_pod: str) -> None:
    conf = cluster.exec(client_pod, "cat", "/etc/resolv.conf").stdout.split("\n")
    assert f"nameserver {DNS_IP}" in conf
    assert f"search default.svc.{ZONE} svc.{ZONE} {ZONE}" in conf
    assert "options ndots:5" in conf


def test_clusterip_service_a_srv_ptr(cluster: Cluster, client_pod: str) -> None:
    ep_ips = sorted(cluster.endpoint_ips("data-product"))
    a, srv, ptr, tcp_a = dig(
        cluster,
        client_pod,
        f"data-product.default.svc.{ZONE} A",
        f"_data-product._tcp.data-product.default.svc.{ZONE} SRV",
        f"{rev(DATA_PRODUCT_IP)} PTR",
        f"data-product.default.svc.{ZONE} A",
    )
    for r in (a, srv, ptr):
        assert r.status == "NOERROR" and "aa" in r.flags, r
        assert all(rec.ttl == TTL for rec in r.answer), r
    assert a.data("A") == [DATA_PRODUCT_IP]
    assert srv.data("SRV") == [f"0 100 50051 {svc('data-product')}"]
    assert [(x.name, x.data) for x in srv.additional] == [(svc("data-product"), DATA_PRODUCT_IP)]
    assert ptr.data("PTR") == [svc("data-product")]
    assert tcp_a.data("A") == [DATA_PRODUCT_IP]
    # Each endpoint of a ClusterIP service has a PTR to its dashed-IP name.
    ptrs = dig(cluster, client_pod, *(f"{rev(ip)} PTR" for ip in ep_ips))
    assert [p.data("PTR") for p in ptrs] == [[f"{ip.replace('.', '-')}.{svc('data-product')}"] for ip in ep_ips]
    # Over TCP too.
    assert ask(cluster, client_pod, f"data-product.default.svc.{ZONE} A", tcp=True).data("A") == [DATA_PRODUCT_IP]


def test_headless_service_endpoints_hostnames_srv_ptr(cluster: Cluster, client_pod: str) -> None:
    ips = {p.name: p.status.podIP for p in cluster.ready_pods("db-") if p.status and p.status.podIP}
    assert set(ips) == {"db-0", "db-1"}
    a, host0, host1, mysql, stats, bogus, p0, p1 = dig(
        cluster,
        client_pod,
        f"db.default.svc.{ZONE} A",
        f"db-0.db.default.svc.{ZONE} A",
        f"db-1.db.default.svc.{ZONE} A",
        f"_mysql._tcp.db.default.svc.{ZONE} SRV",
        f"_stats._udp.db.default.svc.{ZONE} SRV",
        f"db-9.db.default.svc.{ZONE} A",
        f"{rev(ips['db-0'])} PTR",
        f"{rev(ips['db-1'])} PTR",
    )
    assert a.status == "NOERROR" and a.data("A") == sorted(ips.values())
    assert host0.data("A") == [ips["db-0"]] and host1.data("A") == [ips["db-1"]]
    for srv, port in ((mysql, 3306), (stats, 9104)):
        assert srv.data("SRV") == sorted(f"0 50 {port} db-{i}.{svc('db')}" for i in (0, 1)), srv
        assert sorted((x.name, x.data) for x in srv.additional) == sorted(
            (f"{n}.{svc('db')}", ip) for n, ip in ips.items()
        )
    assert bogus.status == "NXDOMAIN"
    assert_soa(bogus)
    assert p0.data("PTR") == [f"db-0.{svc('db')}"] and p1.data("PTR") == [f"db-1.{svc('db')}"]
    for r in (a, host0, host1, mysql, stats, p0, p1):
        assert all(rec.ttl == TTL for rec in r.answer), r


def test_external_name_is_a_cname(cluster: Cluster, client_pod: str) -> None:
    a, cname, below = dig(
        cluster,
        client_pod,
        f"ext.default.svc.{ZONE} A",
        f"ext.default.svc.{ZONE} CNAME",
        f"x.ext.default.svc.{ZONE} A",
    )
    for r in (a, cname):
        assert r.status == "NOERROR" and "aa" in r.flags
        assert [(x.name, x.ttl, x.type, x.data) for x in r.answer] == [
            (svc("ext"), TTL, "CNAME", "www.example.com.")
        ], r
    assert below.status == "NXDOMAIN"


def test_dns_version_txt(cluster: Cluster, client_pod: str) -> None:
    r = ask(cluster, client_pod, f"dns-version.{ZONE} TXT")
    assert r.status == "NOERROR"
    assert [(x.name, x.ttl, x.type, x.data) for x in r.answer] == [(f"dns-version.{ZONE}.", 28800, "TXT", '"1.1.0"')]


def test_nxdomain_and_nodata_carry_the_soa(cluster: Cluster, client_pod: str) -> None:
    nx_svc, nx_ns, nodata_aaaa, nodata_txt, nodata_ns, soa = dig(
        cluster,
        client_pod,
        f"nope.default.svc.{ZONE} A",
        f"data-product.nope.svc.{ZONE} A",
        f"data-product.default.svc.{ZONE} AAAA",
        f"data-product.default.svc.{ZONE} TXT",
        f"default.svc.{ZONE} A",
        f"{ZONE} SOA",
    )
    for r in (nx_svc, nx_ns):
        assert r.status == "NXDOMAIN" and "aa" in r.flags, r
        assert_soa(r)
    for r in (nodata_aaaa, nodata_txt, nodata_ns):
        assert r.status == "NOERROR" and "aa" in r.flags, r
        assert_soa(r)
    assert soa.status == "NOERROR" and [x.type for x in soa.answer] == ["SOA"]


def test_names_outside_the_zone_fail_at_once(cluster: Cluster, client_pod: str) -> None:
    """No upstream is configured: SERVFAIL straight away, never a timeout."""
    r = ask(cluster, client_pod, "www.example.org A")
    assert r.status == "SERVFAIL" and not r.answer
    assert r.msec < 1000, r  # answered, not waited out (dig gives up after 2 s)
    t0 = time.monotonic()
    res = cluster.exec(client_pod, "getent", "hosts", "www.example.org", check=False)
    assert res.returncode == 2 and not res.stdout
    assert time.monotonic() - t0 < 4  # search list (3 NXDOMAIN) + SERVFAIL, one exec; a timeout is 5 s


def test_both_dns_pods_answer(cluster: Cluster, client_pod: str) -> None:
    pods = cluster.ready_pods("kube-dns", ns="kube-system")
    assert len(pods) == 2
    for p in pods:
        assert p.status and p.status.podIP
        udp = ask(cluster, client_pod, f"data-product.default.svc.{ZONE} A", server=p.status.podIP)
        tcp = ask(cluster, client_pod, f"data-product.default.svc.{ZONE} A", server=p.status.podIP, tcp=True)
        assert udp.data("A") == tcp.data("A") == [DATA_PRODUCT_IP], p.name


# --- the pods' own resolver ------------------------------------------------------------------------


def test_search_path_and_ndots(cluster: Cluster, client_pod: str) -> None:
    ns = cluster.exec(client_pod, "nslookup", "data-product").stdout
    assert f"Name:\tdata-product.default.svc.{ZONE}" in ns and f"Address: {DATA_PRODUCT_IP}" in ns
    # Below ndots:5, names go through the search list first, whatever their dots.
    for name, ip, full in (
        ("data-product", DATA_PRODUCT_IP, svc("data-product")),
        ("data-product.default", DATA_PRODUCT_IP, svc("data-product")),
        ("kube-dns.kube-system", DNS_IP, svc("kube-dns", "kube-system")),
        ("db-0.db", None, f"db-0.{svc('db')}"),
    ):
        words = cluster.exec(client_pod, "getent", "hosts", name).stdout.split()
        assert words[1:] == [full.rstrip(".")], (name, words)
        if ip:
            assert words[0] == ip
    assert cluster.exec(client_pod, "getent", "hosts", "nope", check=False).returncode == 2


def test_ping_resolves_to_the_cluster_ip_and_gets_no_reply(cluster: Cluster, client_pod: str) -> None:
    res = cluster.exec(client_pod, "ping", "-c1", "-W1", f"data-product.default.svc.{ZONE}", check=False)
    assert f"PING data-product.default.svc.{ZONE} ({DATA_PRODUCT_IP})" in res.stdout, res
    assert "1 packets transmitted, 0 received" in res.stdout
    assert res.returncode == 1


def test_business_manager_reaches_data_product_by_name(cluster: Cluster, client_pod: str) -> None:
    import json

    bm_ip = cluster.service("business-manager").spec.clusterIP
    body = json.loads(cluster.curl(client_pod, f"http://{bm_ip}/api/v1/product/list"))
    assert body["dataProduct"]["pod"] in {p.name for p in cluster.ready_pods("data-product")}
    assert [p["name"] for p in body["products"]] == ["keyboard", "monitor", "mouse"]


# --- changes -----------------------------------------------------------------------------------------


class Watch:
    """``dig +short`` of one name through the Service IP every ~50 ms inside a pod, timestamped."""

    def __init__(self, c: Cluster, pod: str, question: str, seconds: float) -> None:
        script = (
            f"end=$(( $(date +%s) + {int(seconds)} )); while [ $(date +%s) -lt $end ]; do "
            f"t=$(date +%s.%N); a=$(dig +short +tries=1 +time=1 @{DNS_IP} {question} | sort | tr '\\n' ' '); "
            'echo "$t|$a"; sleep 0.04; done'
        )
        self.proc = subprocess.Popen(
            [*KINS, "exec", pod, "--", "sh", "-c", script],
            env=c.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # The change under watch comes after the first answer, however long the exec took to start.
        assert self.proc.stdout is not None
        self.first = self.proc.stdout.readline()

    def settled(self, want: set[str]) -> float:
        """When the answer became ``want`` for good (host clock, like time.time())."""
        rest, err = self.proc.communicate(timeout=60)
        out = self.first + rest
        samples = [(float(t), set(a.split())) for t, _, a in (line.partition("|") for line in out.splitlines())]
        assert samples and samples[-1][1] == want, (samples[-5:], f"kins exec exited {self.proc.returncode}", err)
        assert samples[0][1] != want, "the watch began after the change"
        at = samples[-1][0]
        for t, got in reversed(samples):
            if got != want:
                break
            at = t
        return at


def _when(check: object, timeout: float, what: str) -> float:
    poll(check, timeout, what, interval=0.02)  # type: ignore[arg-type]
    return time.time()


@pytest.mark.parametrize("replicas", [4, 1, 2])
def test_headless_a_set_follows_scaling_within_a_second(cluster: Cluster, client_pod: str, replicas: int) -> None:
    watch = Watch(cluster, client_pod, f"hl.default.svc.{ZONE}", 8)
    cluster.kins("scale", "deployment", "hl", "--replicas", str(replicas))
    ips: set[str] = set()

    def endpoints() -> bool:
        nonlocal ips
        ips = cluster.endpoint_ips("hl")
        return len(ips) == replicas

    published = _when(endpoints, 6, f"hl's {replicas} endpoints")
    lag = watch.settled(ips) - published
    assert lag < 1.0, f"DNS answered the new set {lag:.2f}s after the endpoints changed"


def test_external_name_change_and_delete(cluster: Cluster, client_pod: str) -> None:
    watch = Watch(cluster, client_pod, f"ext.default.svc.{ZONE} CNAME", 4)
    cluster.apply_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\n"
        "spec: {type: ExternalName, externalName: db.example.net}\n"
    )
    changed = time.time()
    assert watch.settled({"db.example.net."}) - changed < 1.0

    watch = Watch(cluster, client_pod, f"ext.default.svc.{ZONE} CNAME", 4)
    cluster.kins("delete", "service", "ext")
    deleted = time.time()
    assert watch.settled(set()) - deleted < 1.0
    gone = ask(cluster, client_pod, f"ext.default.svc.{ZONE} CNAME")
    assert gone.status == "NXDOMAIN"
    assert_soa(gone)


def test_deleted_pod_loses_its_hostname_record(cluster: Cluster, client_pod: str) -> None:
    watch = Watch(cluster, client_pod, f"db-1.db.default.svc.{ZONE}", 6)
    cluster.kins("delete", "pod", "db-1", "--no-wait")
    gone = _when(lambda: len(cluster.endpoint_ips("db")) == 1, 5, "db-1's endpoint to go")
    assert watch.settled(set()) - gone < 1.0
    a = ask(cluster, client_pod, f"db.default.svc.{ZONE} A")
    assert len(a.data("A")) == 1
    assert ask(cluster, client_pod, f"db-1.db.default.svc.{ZONE} A").status == "NXDOMAIN"
