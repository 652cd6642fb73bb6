"""``kins trace --verify``: send one real packet for the traced 5-tuple and hold the prediction
against the kernel's own evidence.

The probe leaves the FROM namespace from the traced source address and a fixed, random source
port (ICMP: a random echo id), so the kernel's records of it can be told from other traffic:

- the probe's outcome (connected, reset, refused by an ICMP error, unreachable, reply, timeout)
  against the predicted disposition, sharpened by the listening sockets of the namespace the
  trace delivers to (delivered to a port nobody listens on is a reset, not a connection);
- conntrack in every node: the entry whose original tuple is the probe's names the endpoint
  the kernel's DNAT chose (it must be one of the predicted ones) and whether the source was
  rewritten (masquerade);
- ``iptables-save -c`` before and after: the packet counter of every rule the trace of the
  chosen branch names (NFLOG rules too) must have moved. Other traffic (probes of the kubelet) moves counters too,
  so only the rules on the path are compared, and conntrack confirms the path.

Probes are bounded (``TIMEOUT`` seconds at most) and only ever leave the cluster's own
namespaces.
"""

from __future__ import annotations

import errno
import os
import random
import re
import select
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._errors import KinsError
from ..model.ipv4 import ip_int
from .endpoint import Endpoint
from .packet import ACCEPTED, DELIVERED, DROPPED, NO_ROUTE, REJECTED, Trace
from .state import HOST, NODE, POD
from .trace import trace
from .view import ClusterView

TIMEOUT = 2.0
# above the kernel's default ephemeral range (32768-60999): a pod's own outgoing connections never hold them
SPORTS = (61000, 65535)

# outcomes of a probe
CONNECTED = "connected"  # TCP handshake completed
RESET = "reset"  # TCP RST: the destination got the SYN, nothing listens
REFUSED = "refused"  # ICMP port unreachable (a REJECT, or a closed UDP port)
UNREACHABLE = "unreachable"  # no route here, or an ICMP net/host unreachable on the way
REPLY = "reply"  # an answer: ICMP echo reply, UDP datagram
TIMEOUT_ = "timeout"  # nothing came back in time

ICMP_ECHO, ICMP_ECHOREPLY, ICMP_UNREACH = 8, 0, 3
_PROTO_NUM = {"tcp": 6, "udp": 17, "icmp": 1}


# --- the probe ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    netns: str  # full namespace name
    src: str
    dst: str
    proto: str
    sport: int  # ICMP: the echo id
    dport: int
    timeout: float = TIMEOUT


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: str
    detail: str
    icmp_from: str | None = None  # who sent the ICMP error, when one came
    answer: bytes = b""
    elapsed: float = 0.0


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _icmp_error(raw: socket.socket, p: Probe) -> tuple[int, int, str] | None:
    """An ICMP destination-unreachable quoting the probe's header, if one is queued."""
    want = _PROTO_NUM[p.proto]
    while select.select([raw], [], [], 0)[0]:
        pkt, _ = raw.recvfrom(2048)
        ihl = (pkt[0] & 0x0F) * 4
        if len(pkt) < ihl + 8 + 20 + 8 or pkt[ihl] != ICMP_UNREACH:
            continue
        inner = pkt[ihl + 8 :]
        iihl = (inner[0] & 0x0F) * 4
        if inner[9] != want or socket.inet_ntoa(inner[12:16]) != p.src:
            continue
        l4 = inner[iihl : iihl + 8]
        key = struct.unpack("!H", l4[4:6])[0] if p.proto == "icmp" else struct.unpack("!H", l4[0:2])[0]
        if key == p.sport:
            return pkt[ihl], pkt[ihl + 1], socket.inet_ntoa(pkt[12:16])
    return None


_UNREACH_CODES = {0: "net unreachable", 1: "host unreachable", 3: "port unreachable", 13: "administratively prohibited"}


def _from_icmp(err: tuple[int, int, str] | None, what: str, t0: float) -> ProbeResult | None:
    if err is None:
        return None
    _, code, who = err
    outcome = REFUSED if code in (3, 9, 10, 13) else UNREACHABLE
    text = _UNREACH_CODES.get(code, f"code {code}")
    return ProbeResult(outcome, f"{what}: ICMP {text} from {who}", who, elapsed=time.monotonic() - t0)


def _probe_here(p: Probe) -> ProbeResult:
    """Runs in a thread inside the FROM namespace: every socket it opens lives there."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    t0 = time.monotonic()
    try:
        if p.proto == "tcp":
            return _tcp(p, raw, t0)
        if p.proto == "udp":
            return _udp(p, raw, t0)
        return _icmp(p, raw, t0)
    finally:
        raw.close()


def _tcp(p: Probe, raw: socket.socket, t0: float) -> ProbeResult:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # RST on close: no TIME_WAIT left behind in the pod, the conntrack entry stays readable
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.bind((p.src, p.sport))
        s.settimeout(p.timeout)
        try:
            rc = s.connect_ex((p.dst, p.dport))
        except TimeoutError:
            rc = errno.ETIMEDOUT
        dt = time.monotonic() - t0
        if rc == 0:
            return ProbeResult(CONNECTED, f"TCP connected in {dt * 1000:.1f} ms", elapsed=dt)
        icmp = _from_icmp(_icmp_error(raw, p), "connect refused", t0)
        if icmp is not None:
            return icmp
        if rc == errno.ECONNREFUSED:
            return ProbeResult(RESET, f"connection reset (TCP RST) in {dt * 1000:.1f} ms", elapsed=dt)
        if rc in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return ProbeResult(UNREACHABLE, f"connect: {os.strerror(rc)}", elapsed=dt)
        if rc in (errno.ETIMEDOUT, errno.EAGAIN, errno.EINPROGRESS):
            return ProbeResult(TIMEOUT_, f"no answer in {p.timeout:g} s", elapsed=dt)
        return ProbeResult(UNREACHABLE, f"connect: {os.strerror(rc)}", elapsed=dt)
    finally:
        s.close()


def _udp(p: Probe, raw: socket.socket, t0: float) -> ProbeResult:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((p.src, p.sport))
        try:
            s.connect((p.dst, p.dport))
            s.send(b"hostname")  # agnhost netexec answers with its pod's name
        except OSError as e:
            return ProbeResult(UNREACHABLE, f"send: {e.strerror}", elapsed=time.monotonic() - t0)
        deadline = t0 + p.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return ProbeResult(TIMEOUT_, f"no answer in {p.timeout:g} s", elapsed=p.timeout)
            ready = select.select([s, raw], [], [], left)[0]
            if s in ready:
                try:
                    data = s.recv(2048)
                except OSError as e:
                    icmp = _from_icmp(_icmp_error(raw, p), "datagram refused", t0)
                    return icmp or ProbeResult(
                        REFUSED if e.errno == errno.ECONNREFUSED else UNREACHABLE,
                        f"recv: {e.strerror}",
                        elapsed=time.monotonic() - t0,
                    )
                dt = time.monotonic() - t0
                return ProbeResult(
                    REPLY, f"UDP answer of {len(data)} bytes in {dt * 1000:.1f} ms", answer=data, elapsed=dt
                )
            if raw in ready:
                icmp = _from_icmp(_icmp_error(raw, p), "datagram refused", t0)
                if icmp is not None:
                    return icmp
    finally:
        s.close()


def _icmp(p: Probe, raw: socket.socket, t0: float) -> ProbeResult:
    payload = b"kins-verify"
    hdr = struct.pack("!BBHHH", ICMP_ECHO, 0, 0, p.sport, 1)
    pkt = struct.pack("!BBHHH", ICMP_ECHO, 0, _csum(hdr + payload), p.sport, 1) + payload
    try:
        raw.bind((p.src, 0))
        raw.sendto(pkt, (p.dst, 0))
    except OSError as e:
        return ProbeResult(UNREACHABLE, f"send: {e.strerror}", elapsed=time.monotonic() - t0)
    deadline = t0 + p.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([raw], [], [], left)[0]:
            return ProbeResult(TIMEOUT_, f"no echo reply in {p.timeout:g} s", elapsed=p.timeout)
        data, _ = raw.recvfrom(2048)
        ihl = (data[0] & 0x0F) * 4
        typ = data[ihl]
        if typ == ICMP_ECHOREPLY and struct.unpack("!H", data[ihl + 4 : ihl + 6])[0] == p.sport:
            dt = time.monotonic() - t0
            who = socket.inet_ntoa(data[12:16])
            return ProbeResult(REPLY, f"echo reply from {who} in {dt * 1000:.1f} ms", who, elapsed=dt)
        if typ == ICMP_UNREACH:
            inner = data[ihl + 8 :]
            iihl = (inner[0] & 0x0F) * 4
            if (
                len(inner) >= iihl + 8
                and inner[9] == 1
                and struct.unpack("!H", inner[iihl + 4 : iihl + 6])[0] == p.sport
            ):
                return _from_icmp((typ, data[ihl + 1], socket.inet_ntoa(data[12:16])), "echo", t0) or ProbeResult(
                    UNREACHABLE, "echo: unreachable"
                )


def send_probe(p: Probe) -> ProbeResult:
    """Send ``p`` from its namespace and wait (at most ``p.timeout``) for what comes back."""
    from ..kernel.netns import run_in

    if p.timeout > TIMEOUT:
        raise KinsError(f"probe timeout {p.timeout} s: at most {TIMEOUT:g} s")
    return run_in(p.netns, lambda: _probe_here(p))


def listening(netns: str, proto: str, ip: str, port: int) -> bool:
    """Whether a socket in ``netns`` takes ``proto`` datagrams or connections on ``ip:port``."""
    from ..kernel.netns import run_in

    if proto == "icmp":
        return True  # the kernel answers echo requests itself
    name = "tcp" if proto == "tcp" else "udp"
    want_state = "0A" if proto == "tcp" else "07"  # LISTEN / unconnected

    def read() -> bool:
        # /proc/thread-self/net shows this thread's namespace, not the process's
        with open(f"/proc/thread-self/net/{name}") as f:
            next(f)
            for line in f:
                parts = line.split()
                local, st = parts[1], parts[3]
                hexip, hexport = local.split(":")
                if st != want_state or int(hexport, 16) != port:
                    continue
                addr = socket.inet_ntoa(struct.pack("<I", int(hexip, 16)))
                if addr in ("0.0.0.0", ip):
                    return True
        return False

    return run_in(netns, read)


# --- the kernel's records -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CtEntry:
    """One conntrack entry: the original tuple and the reply tuple (as the kernel prints them)."""

    proto: str
    orig: tuple[str, str, int, int]  # src, dst, sport, dport (ICMP: id, 0)
    reply: tuple[str, str, int, int]
    state: str = ""

    @property
    def dnat(self) -> str | None:
        """Where the connection really goes, when the destination was rewritten."""
        if self.proto == "icmp":
            return self.reply[0] if self.reply[0] != self.orig[1] else None
        if (self.reply[0], self.reply[2]) != (self.orig[1], self.orig[3]):
            return f"{self.reply[0]}:{self.reply[2]}"
        return None

    @property
    def snat(self) -> bool:
        return self.reply[1] != self.orig[0]


def parse_conntrack(text: str) -> list[CtEntry]:
    """``conntrack -L`` lines (the default format) as entries."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        proto = parts[0]
        icmp = proto == "icmp"
        kv: list[dict[str, str]] = [{}, {}]
        side = -1
        state = ""
        for tok in parts[3:]:
            k, eq, v = tok.partition("=")
            if not eq:
                if tok.isupper() and not tok.startswith("["):
                    state = tok
                continue
            if k == "src":
                side += 1
            if 0 <= side <= 1:
                kv[side].setdefault(k, v)
        if side < 1:
            continue

        def tup(d: dict[str, str], icmp: bool = icmp) -> tuple[str, str, int, int]:
            if icmp:
                return (d.get("src", ""), d.get("dst", ""), int(d.get("id", 0)), 0)
            return (d.get("src", ""), d.get("dst", ""), int(d.get("sport", 0)), int(d.get("dport", 0)))

        out.append(CtEntry(proto, tup(kv[0]), tup(kv[1]), state))
    return out


def conntrack(netns: str, proto: str, src: str | None = None, sport: int | None = None) -> list[CtEntry]:
    """The ``proto`` entries of ``netns``; only those from ``src:sport`` (ICMP: echo id) when given."""
    argv = ["conntrack", "-L", "-p", proto]
    if src is not None:
        argv += ["-s", src]
    if sport is not None:
        argv += ["--icmp-id", str(sport)] if proto == "icmp" else ["--sport", str(sport)]
    res = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", "--", *argv], capture_output=True, text=True, check=False, timeout=10
    )
    return [
        e
        for e in parse_conntrack(res.stdout)
        if (src is None or e.orig[0] == src) and (sport is None or e.orig[2] == sport)
    ]


def follow_connection(tables: dict[str, list[CtEntry]], src: str, sport: int) -> dict[str, list[CtEntry]]:
    """The entries, per node, of the connection ``src:sport`` opened: its own, and once a node
    rewrote the source (masquerade), the entries of the rewritten connection further on."""
    keys = {(src, sport)}
    out: dict[str, list[CtEntry]] = {}
    grew = True
    while grew:
        grew = False
        for node, entries in tables.items():
            for e in entries:
                if (e.orig[0], e.orig[2]) in keys and e not in out.get(node, []):
                    out.setdefault(node, []).append(e)
                    grew = True
                    if e.snat:
                        keys.add((e.reply[1], e.reply[2] if e.proto == "icmp" else e.reply[3]))
    return out


def rule_counters(save_c: str) -> dict[tuple[str, str, int | None], tuple[int, str]]:
    """``iptables-save -c`` as (table, chain, rule number) -> (packets, rule text); a chain's
    policy counter under rule number None. Numbers count from 1 in each chain, as the trace's."""
    out: dict[tuple[str, str, int | None], tuple[int, str]] = {}
    table = ""
    nums: dict[str, int] = {}
    for line in save_c.splitlines():
        if line.startswith("*"):
            table, nums = line[1:].strip(), {}
        elif line.startswith(":"):
            parts = line[1:].split()
            if len(parts) >= 3 and parts[2].startswith("["):
                out[(table, parts[0], None)] = (int(parts[2][1:].split(":")[0]), f"policy {parts[1]}")
        elif line.startswith("["):
            cnt, _, rule = line.partition("] ")
            args = rule.split()
            if len(args) >= 2 and args[0] == "-A":
                chain = args[1]
                nums[chain] = nums.get(chain, 0) + 1
                out[(table, chain, nums[chain])] = (int(cnt[1:].split(":")[0]), rule)
    return out


# --- the comparison -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    where: str  # hop: namespace
    predicted: str
    evidence: str
    verdict: str  # OK, MISMATCH, or "?" (no evidence either way)


@dataclass
class Verification:
    probe: Probe
    result: ProbeResult
    trace: Trace  # the prediction, following the branch the kernel took
    rows: list[Row] = field(default_factory=list)
    chosen: str | None = None  # the endpoint conntrack names

    @property
    def ok(self) -> bool:
        return all(r.verdict != "MISMATCH" for r in self.rows)


def expected_outcomes(disposition: str, proto: str, listener: bool) -> set[str]:
    """What a real probe may see for a predicted disposition."""
    if disposition in (DELIVERED, ACCEPTED):
        if proto == "tcp":
            return {CONNECTED} if listener else {RESET}
        if proto == "udp":
            return {REPLY, TIMEOUT_} if listener else {REFUSED}
        return {REPLY}
    if disposition == REJECTED:
        return {REFUSED, RESET, UNREACHABLE}
    if disposition == DROPPED:
        return {TIMEOUT_}
    if disposition == NO_ROUTE:
        return {UNREACHABLE}
    return {CONNECTED, RESET, REFUSED, UNREACHABLE, REPLY, TIMEOUT_}


def source_netns(view: ClusterView, cluster: str, src: Endpoint) -> str:
    """The full name of the namespace a probe from ``src`` leaves."""
    from ..kernel.netns import ns_name

    st = None
    if src.kind == "pod":
        st = view.pods.get(src.name)
    elif src.kind == "node":
        st = view.nodes.get(src.name)
    elif src.kind == "host":
        st = view.hosts.get(src.name)
    else:
        ip = ip_int(src.ip)
        st = view.pod_ips.get(ip) or (view.underlay[ip][0] if ip in view.underlay else None)
    if st is None or st.kind not in (NODE, POD, HOST):
        raise KinsError(f"--verify: {src.describe()} has no namespace in the cluster to send a probe from")
    return ns_name(cluster, st.netns)


def _final_state(view: ClusterView, t: Trace) -> str | None:
    """The plan-level namespace of the trace's last hop."""
    if not t.hops:
        return None
    name = t.hops[-1].node
    for st in view.states.values():
        if st.name == name:
            return st.netns
    return None


_DST_RE = re.compile(r"-> (\d+\.\d+\.\d+\.\d+)(?::(\d+))?")


def _final_dst(t: Trace, proto: str) -> tuple[str, int]:
    """The packet's destination where it ends (after any DNAT), from the last received step."""
    for hop in reversed(t.hops):
        for s in reversed(hop.steps):
            m = _DST_RE.search(s.detail) if s.action in ("delivered", "received") else None
            if m:
                return m.group(1), int(m.group(2) or 0)
    return "", 0


def verify(
    view: ClusterView,
    cluster: str,
    src: Endpoint,
    dst: Endpoint,
    port: int | None,
    proto: str,
    *,
    sport: int | None = None,
    timeout: float = TIMEOUT,
    policy_log: Callable[[], list[dict[str, Any]]] | None = None,
) -> Verification:
    """Trace, send the real probe, read counters and conntrack, and compare hop by hop.
    ``policy_log`` reads the API's policy log: a packet the policies deny must be in it."""
    from ..kernel import iptables
    from ..kernel.netns import ns_name

    if proto not in _PROTO_NUM:
        raise KinsError(f"--verify cannot send {proto}: this kernel has no {proto.upper()} support")
    sport = sport or random.randint(*SPORTS)
    first = trace(view, src, dst, port, proto, sport=sport)
    netns = source_netns(view, cluster, src)
    dport = int(first.packet.rsplit(":", 1)[1]) if proto != "icmp" else 0
    probe = Probe(netns, src.ip, dst.ip, proto, sport, dport, timeout)
    rule_ns = {st.name: ns_name(cluster, st.netns) for st in view.states.values() if st.iptables_text.strip()}
    nodes_ns = {st.name: ns_name(cluster, st.netns) for st in view.nodes.values()}
    ct_ns = {**nodes_ns, src.name: netns} if src.kind == "node" else nodes_ns
    with ThreadPoolExecutor(max_workers=max(2, len(rule_ns), len(ct_ns))) as pool:

        def counters() -> dict[str, dict[tuple[str, str, int | None], tuple[int, str]]]:
            texts = pool.map(lambda n: iptables.save(n, counters=True), rule_ns.values())
            return {name: rule_counters(text) for name, text in zip(rule_ns, texts, strict=True)}

        before = counters()
        sent = time.time()
        result = send_probe(probe)
        time.sleep(0.05)  # let the reply's last packets pass the hooks
        after = counters()
        found = pool.map(lambda n: conntrack(n, proto), ct_ns.values())
        cts = follow_connection(dict(zip(ct_ns, found, strict=True)), src.ip, sport)
    # the branch the kernel took, from the first DNAT it recorded for the probe
    chosen = next((e.dnat for es in cts.values() for e in es if e.dnat), None)
    t = trace(view, src, dst, port, proto, sport=sport, branch=chosen) if chosen else first
    v = Verification(probe, result, t, chosen=chosen)
    rows = v.rows
    predicted_eps = {e.address if proto != "icmp" else e.address.rsplit(":", 1)[0] for e in t.endpoints}
    went_through = result.outcome in (CONNECTED, REPLY, RESET) or (
        result.outcome == REFUSED and result.icmp_from is not None
    )
    hops = [*t.hops, *(t.reply if result.outcome in (CONNECTED, REPLY) else ())]
    for hop in hops:
        for s in hop.steps:
            if s.action in ("rule", "nflog") and s.table and s.chain and s.rule is not None and hop.node in before:
                key = (s.table, s.chain, s.rule)
                b, a = before[hop.node].get(key), after[hop.node].get(key)
                pred = f"[{s.table}/{s.chain} #{s.rule}] {s.detail}"
                if a is None or b is None:
                    rows.append(Row(hop.node, pred, "rule not in iptables-save -c", "MISMATCH"))
                elif a[1] != b[1]:
                    rows.append(Row(hop.node, pred, "rules changed during the probe", "?"))
                elif a[0] < b[0]:
                    rows.append(Row(hop.node, pred, "counters reset during the probe", "?"))
                elif a[0] > b[0]:
                    rows.append(Row(hop.node, pred, f"counter +{a[0] - b[0]} packet(s)", "OK"))
                else:
                    # with no answer there is no telling where the packet vanished
                    verdict = "MISMATCH" if went_through else "?"
                    rows.append(Row(hop.node, pred, "counter did not move: the probe never hit this rule", verdict))
            elif s.action == "note" and s.table and s.chain and s.rule is not None and hop.node in before:
                # a rule the simulator could not evaluate and assumed not to match
                b, a = before[hop.node].get((s.table, s.chain, s.rule)), after[hop.node].get((s.table, s.chain, s.rule))
                if a is not None and b is not None and a[1] == b[1] and a[0] > b[0]:
                    ev = f"counter +{a[0] - b[0]}: the kernel matched this rule"
                    rows.append(Row(hop.node, f"[{s.table}/{s.chain} #{s.rule}] {s.detail}", ev, "MISMATCH"))
            elif s.action == "nat" and s.detail.startswith("DNAT ") and hop in t.hops:
                es = cts.get(hop.node, [])
                if not es:
                    rows.append(Row(hop.node, s.detail, f"no conntrack entry for {src.ip}:{sport} on {hop.node}", "?"))
                    continue
                got = next((e.dnat for e in es if e.dnat), None)
                if got is None:
                    rows.append(Row(hop.node, s.detail, "conntrack: destination not rewritten", "MISMATCH"))
                elif got in predicted_eps:
                    rows.append(Row(hop.node, s.detail, f"conntrack: DNAT to {got} (a predicted endpoint)", "OK"))
                else:
                    rows.append(
                        Row(
                            hop.node,
                            s.detail,
                            f"conntrack: DNAT to {got}, not one of {', '.join(sorted(predicted_eps))}",
                            "MISMATCH",
                        )
                    )
            elif s.action == "nat" and " source " in s.detail and hop in t.hops:
                es = cts.get(hop.node, [])
                if es:
                    ok = any(e.snat for e in es)
                    ev = f"conntrack: reply goes to {es[0].reply[1]}" if ok else "conntrack: source not rewritten"
                    rows.append(Row(hop.node, s.detail, ev, "OK" if ok else "MISMATCH"))
    logged = [(hop.node, s) for hop in t.hops for s in hop.steps if s.action == "nflog"]
    if logged and policy_log is not None:
        rows.append(_log_row(logged[-1][0], logged[-1][1].detail, policy_log, probe, sent))
    if chosen is None and predicted_eps and went_through and not any(cts.values()):
        # the prediction rewrites the destination, but no node recorded the connection
        rows.append(Row("-", "DNAT to " + ", ".join(sorted(predicted_eps)), "no conntrack entry on any node", "?"))
    final_ns = _final_state(view, t)
    fip, fport = _final_dst(t, proto)
    if not fip:  # a namespace talking to itself: no hop received anything
        fip, fport = probe.dst, probe.dport
    listener = True
    if t.disposition in (DELIVERED, ACCEPTED) and final_ns is not None and fip:
        listener = listening(ns_name(cluster, final_ns), proto, fip, fport)
    want = expected_outcomes(t.disposition, proto, listener)
    last = t.hops[-1].steps[-1] if t.hops and t.hops[-1].steps else None
    if t.disposition == DROPPED and last is not None and "answers ARP" in last.detail:
        # the kernel gives up on ARP after a few probes and tells the sender: host unreachable
        want = {TIMEOUT_, UNREACHABLE}
    lis = ""
    if t.disposition in (DELIVERED, ACCEPTED) and proto != "icmp":
        lis = f" ({'a socket listens on' if listener else 'nothing listens on'} {fip}:{fport})"
    rows.append(
        Row(
            "result",
            f"{t.disposition.upper()}{lis}: expect {' or '.join(sorted(want))}",
            f"probe {result.outcome}: {result.detail}",
            "OK" if result.outcome in want else "MISMATCH",
        )
    )
    return v


def _log_row(node: str, detail: str, read: Callable[[], list[dict[str, Any]]], probe: Probe, sent: float) -> Row:
    """The denied packet's record in the policy log (the nodes post theirs within ~0.1 s)."""
    pred = f"policy log: {detail}"
    deadline = time.monotonic() + 2.0
    while True:
        for rec in read():
            src = rec.get("source") or {}
            when = rec.get("time") or ""
            try:
                at = datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
            if src.get("ip") == probe.src and at >= sent - 1.0 and rec.get("protocol", "").lower() == probe.proto:
                policies = ", ".join(rec.get("policies") or []) or "-"
                return Row(node, pred, f"logged: {rec.get('direction')} ({policies})", "OK")
        if time.monotonic() > deadline:
            return Row(node, pred, "no record of the probe in the policy log", "MISMATCH")
        time.sleep(0.1)


def format_verification(v: Verification) -> str:
    p = v.probe
    where = f"{p.src}:{p.sport}" if p.proto != "icmp" else f"{p.src} (echo id {p.sport})"
    to = f"{p.dst}:{p.dport}" if p.proto != "icmp" else p.dst
    lines = ["", f"VERIFY {p.proto} {where} -> {to}, sent from namespace {p.netns}"]
    if v.chosen:
        lines.append(f"the kernel chose endpoint {v.chosen}")
    w1 = max([len(r.where) for r in v.rows] + [3])
    w2 = min(70, max([len(r.predicted) for r in v.rows] + [9]))
    lines.append(f"  {'HOP':<{w1}}  {'PREDICTED':<{w2}}  {'EVIDENCE':<40}  VERDICT")
    for r in v.rows:
        pred = r.predicted if len(r.predicted) <= w2 else r.predicted[: w2 - 3] + "..."
        lines.append(f"  {r.where:<{w1}}  {pred:<{w2}}  {r.evidence:<40}  {r.verdict}")
    bad = [r for r in v.rows if r.verdict == "MISMATCH"]
    lines.append("")
    if bad:
        lines.append(f"!!! MISMATCH: prediction and kernel disagree on {len(bad)} point(s):")
        lines.extend(f"!!!   {r.where}: predicted {r.predicted}; kernel: {r.evidence}" for r in bad)
    else:
        lines.append("VERIFIED: the kernel did what the trace predicts")
    return "\n".join(lines) + "\n"


def verification_json(v: Verification) -> dict[str, object]:
    """``ok``, the probe, its outcome, the chosen endpoint and the rows (a stable interface)."""
    p = v.probe
    return {
        "ok": v.ok,
        "probe": {"proto": p.proto, "src": p.src, "sport": p.sport, "dst": p.dst, "dport": p.dport, "netns": p.netns},
        "outcome": v.result.outcome,
        "detail": v.result.detail,
        "chosen": v.chosen,
        "rows": [
            {"hop": r.where, "predicted": r.predicted, "evidence": r.evidence, "verdict": r.verdict} for r in v.rows
        ],
    }
