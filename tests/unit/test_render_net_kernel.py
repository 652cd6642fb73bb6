"""The text forms match what iproute2 and net-tools print for the same state, built for real.

A node plan (with pods) is applied to fresh namespaces with plain ``ip``/``bridge`` commands,
then each tool's output is compared with the renderer's. Needs root; fails when it cannot run.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from kins.api.config import default_cluster
from kins.api.core import Pod, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.model.netstate import Link, NodePlan
from kins.render import text
from kins.render.names import UNDERLAY_NETNS, node_netns
from kins.render.podnet import render_node_network

pytestmark = pytest.mark.root


def run(*args: str) -> str:
    res = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


@pytest.fixture
def prefix() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("needs root to create network namespaces")
    for tool in ("ip", "bridge", "route"):
        if shutil.which(tool) is None:
            pytest.fail(f"needs {tool!r} on PATH")
    pfx = f"kins-t{secrets.token_hex(3)}-"
    try:
        yield pfx
    finally:
        for line in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(pfx):
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _set_link(ns: str, link: Link) -> None:
    args = ["ip", "-n", ns, "link", "set", link.name, "mtu", str(link.mtu)]
    if link.mac:
        args += ["address", link.mac]
    run(*args)


def apply(plan: NodePlan, pfx: str) -> int:
    """Apply ``plan`` the way an applier would; returns the node port's index in the underlay."""
    node = pfx + node_netns(plan.name)
    under = pfx + UNDERLAY_NETNS
    run("ip", "netns", "add", under)
    run("ip", "-n", under, "link", "set", "lo", "up")
    run("ip", "-n", under, "link", "add", "br0", "type", "bridge")
    run("ip", "-n", under, "link", "set", "br0", "up")
    run("ip", "netns", "add", node)
    pods = {p.netns: p for p in plan.pods}
    underlay_index = 0
    for link in plan.links:
        if link.kind == "loopback":
            run("ip", "-n", node, "link", "set", "lo", "up")
        elif link.kind == "bridge":
            run("ip", "-n", node, "link", "add", link.name, "type", "bridge")
            _set_link(node, link)
            run("ip", "-n", node, "link", "set", link.name, "up")
        elif link.kind == "vxlan":
            args = ["ip", "-n", node, "link", "add", link.name, "address", str(link.mac), "mtu", str(link.mtu)]
            args += ["type", "vxlan", "id", str(link.vni), "local", str(link.local), "dev", str(link.dev)]
            args += ["dstport", str(link.port)] + ([] if link.learning else ["nolearning"])
            run(*args)
            run("ip", "-n", node, "link", "set", link.name, "up")
        elif link.kind == "veth" and link.peer_netns == UNDERLAY_NETNS:
            assert link.peer
            run("ip", "-n", under, "link", "add", link.peer, "type", "veth", "peer", "name", link.name, "netns", node)
            run("ip", "-n", under, "link", "set", link.peer, "master", "br0", "up")
            _set_link(node, link)
            run("ip", "-n", node, "link", "set", link.name, "up")
            out = run("ip", "-n", under, "-o", "link", "show", link.peer)
            underlay_index = int(out.split(":", 1)[0])
        elif link.kind == "veth":
            pod = pods[str(link.peer_netns)]
            pns = pfx + pod.netns
            run("ip", "netns", "add", pns)
            run("ip", "-n", pns, "link", "set", "lo", "up")
            run(
                "ip", "-n", node, "link", "add", link.name, "type", "veth", "peer", "name", str(link.peer), "netns", pns
            )
            _set_link(node, link)
            run("ip", "-n", node, "link", "set", link.name, "master", str(link.master), "up")
            run("bridge", "-n", node, "link", "set", "dev", link.name, "hairpin", "on" if link.hairpin else "off")
            for plink in pod.links:
                if plink.kind == "veth":
                    _set_link(pns, plink)
                    run("ip", "-n", pns, "link", "set", plink.name, "up")
            for a in pod.addrs:
                run("ip", "-n", pns, "addr", "add", a.cidr, "dev", a.dev)
            for r in pod.routes:
                if r.proto != "kernel":
                    run("ip", "-n", pns, "route", "add", r.dst, "via", str(r.via), "dev", r.dev)
    for a in plan.addrs:
        run("ip", "-n", node, "addr", "add", a.cidr, "dev", a.dev)
    for n in plan.neighs:
        run("ip", "-n", node, "neigh", "replace", n.dst, "lladdr", n.lladdr, "dev", n.dev, "nud", "permanent")
    for f in plan.fdb:
        run("bridge", "-n", node, "fdb", "replace", f.mac, "dev", f.dev, "dst", str(f.dst), "self", "permanent")
    for r in plan.routes:
        if r.proto == "kernel":
            continue  # added by the kernel with the address
        run(
            "ip",
            "-n",
            node,
            "route",
            "replace",
            r.dst,
            "via",
            str(r.via),
            "dev",
            r.dev,
            *(["onlink"] if r.onlink else []),
            *(["metric", str(r.metric)] if r.metric is not None else []),
        )
    return underlay_index


def _wait_up(ns: str, dev: str) -> None:
    """Carrier changes reach the link state through linkwatch, up to a second later."""
    deadline = time.monotonic() + 5
    while "state UP" not in run("ip", "-n", ns, "link", "show", dev):
        if time.monotonic() > deadline:
            raise AssertionError(f"{dev} in {ns} never came up")
        time.sleep(0.1)


def _pods(n: int) -> list[Pod]:
    return [
        Pod(
            metadata=ObjectMeta(name=f"web-{i}", namespace="default"),
            spec=PodSpec(nodeName="node1"),
            status=PodStatus(podIP=f"172.30.76.{i}"),
        )
        for i in range(2, 2 + n)
    ]


def _assert_prefix_blocks(real: str, mine: str) -> None:
    """Each of our lines is the start of the real line in the same place; headers are equal."""
    real_lines = real.splitlines()
    mine_lines = mine.splitlines()
    assert len(real_lines) == len(mine_lines), f"{real}\n---\n{mine}"
    for r, m in zip(real_lines, mine_lines, strict=True):
        if re.match(r"^\d+: ", m):
            assert r == m
        else:
            assert r.startswith(m), f"{r!r} does not start with {m!r}"


def test_text_forms_match_the_kernel(prefix: str) -> None:
    cfg = default_cluster()
    cfg.nodes.append(type(cfg.nodes[0])(name="node3", ip="192.168.0.23", podCIDR="172.30.5.0/24"))
    plan = render_node_network(cfg, "node1", _pods(2))
    underlay_index = apply(plan, prefix)
    node = prefix + node_netns(plan.name)
    for link in plan.links:
        if link.kind in ("bridge", "veth"):
            _wait_up(node, link.name)
    for pod in plan.pods:
        _wait_up(prefix + pod.netns, "eth0")

    assert run("ip", "-n", node, "route") == text.format_ip_route(plan.routes, plan.links)
    assert run("ip", "netns", "exec", node, "route", "-n") == text.format_route_n(plan.routes)
    dev = "flannel.1"
    real_neigh = run("ip", "-n", node, "neigh", "show", "dev", dev)
    assert sorted(real_neigh.splitlines()) == sorted(text.format_ip_neigh(plan.neighs, dev=dev).splitlines())
    real_fdb = run("bridge", "-n", node, "fdb", "show", "dev", dev)
    assert sorted(real_fdb.splitlines()) == sorted(text.format_bridge_fdb(plan.fdb, dev=dev).splitlines())
    real_fdb_all = [ln for ln in run("bridge", "-n", node, "fdb", "show").splitlines() if f"dev {dev} " in ln]
    assert sorted(real_fdb_all) == sorted(text.format_bridge_fdb(plan.fdb).splitlines())

    real_links = run("ip", "-n", node, "-d", "link", "show")
    mine_links = text.format_node_links(plan, netns_prefix=prefix, underlay_index=underlay_index)
    _assert_prefix_blocks(real_links, mine_links)
    for pod in plan.pods:
        pns = prefix + pod.netns
        assert run("ip", "-n", pns, "route") == text.format_ip_route(pod.routes, pod.links)
        _assert_prefix_blocks(
            run("ip", "-n", pns, "-d", "link", "show"), text.format_pod_links(pod, plan, netns_prefix=prefix)
        )


def test_bridge_without_ports_is_linkdown(prefix: str) -> None:
    plan = render_node_network(default_cluster(), "node1", [])
    underlay_index = apply(plan, prefix)
    node = prefix + node_netns(plan.name)
    _wait_up(node, "eth0")
    # The route exists before any pod: the kernel reports it linkdown, and so does the text.
    assert run("ip", "-n", node, "route") == text.format_ip_route(plan.routes, plan.links)
    assert "linkdown" in text.format_ip_route(plan.routes, plan.links)
    mine = text.format_node_links(plan, netns_prefix=prefix, underlay_index=underlay_index)
    _assert_prefix_blocks(run("ip", "-n", node, "-d", "link", "show"), mine)
