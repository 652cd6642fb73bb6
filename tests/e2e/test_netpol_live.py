"""The article's appendix B on a live cluster: NetworkPolicy enforced by the nodes' kernels,
denied packets in the policy log, the live matrix equal to the offline one, a denied trace
verified against the REJECT rule's counter, label changes reaching the kernel as set members,
and the layer gone with the last policy. And flannel alone (``provider: none``) enforcing nothing."""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import msgspec
import pytest
from e2e_helpers import DATA_PRODUCT_URL, Cluster, poll, running_cluster

from kins.api.config import default_cluster

pytestmark = pytest.mark.root

APPENDIX_B = str(Path(__file__).resolve().parent.parent.parent / "examples" / "policy" / "appendix-b.yaml")
ARTICLE = resources.files("kins").joinpath("data/article")
MYSQL = "http://192.168.0.103:3306/"


def curl_code(c: Cluster, pod: str, url: str) -> int:
    return c.exec(pod, "curl", "-sS", "-o", "/dev/null", "-m", "2", url, check=False).returncode


def wait_applied(c: Cluster) -> None:
    rv = int(c.status()["resourceVersion"])
    c.client.raw("GET", "/kins/v1/status", waitApplied=str(rv), timeoutSeconds="30")


def test_appendix_b_live() -> None:
    with running_cluster() as c:
        bm = c.wait_ready("business-manager", 3)[0].name
        dps = c.wait_ready("data-product", 3)
        dp, other = dps[0].name, f"http://{dps[1].status.podIP}:50051/"  # type: ignore[union-attr]
        assert curl_code(c, dp, other) == 0  # flannel alone: everyone reaches everyone
        c.kins("apply", "-f", APPENDIX_B)
        wait_applied(c)

        # enforced: curl's 7 is "could not connect", the REJECT's port unreachable (through the
        # Service, or straight to a pod: policies judge the packet after kube-proxy's DNAT)
        assert curl_code(c, bm, DATA_PRODUCT_URL) == 0
        assert curl_code(c, dp, other) == 7
        assert curl_code(c, bm, MYSQL) == 7
        assert curl_code(c, dp, MYSQL) != 7  # data-product may reach the database host

        # every denied packet is in the log, with pods, port, direction and policy
        def logged() -> list[dict[str, object]] | None:
            res = c.kins("policy", "log", "-o", "json", "--name", c.name)
            recs = [json.loads(line) for line in res.stdout.splitlines()]
            return recs if len(recs) >= 2 else None

        recs = poll(logged, 10, "two policy log records")
        egress = next(r for r in recs if r["direction"] == "egress")
        assert egress["destination"] == {"ip": "192.168.0.103", "port": 3306}
        assert egress["source"]["pod"] == bm and egress["protocol"] == "TCP"  # type: ignore[index]
        assert egress["policies"] == ["default/mysql-only-from-data-product"]
        ingress = next(r for r in recs if r["direction"] == "ingress")
        assert ingress["policies"] == ["default/data-product-from-business-manager"]
        assert ingress["destination"]["port"] == 50051  # type: ignore[index]

        # the live matrix (the kernels' rules) is the offline one (the rendered rules)
        live = json.loads(c.kins("policy", "matrix", "default", "--port", "50051", "-o", "json").stdout)
        assert any(v == "denied" for row in live["verdicts"].values() for v in row.values())
        files = [str(ARTICLE.joinpath(f)) for f in ("business-manager.yaml", "data-product.yaml")]
        offline_args = ["policy", "matrix", "default", "--port", "50051", "-o", "json", "-f", APPENDIX_B]
        for f in files:
            offline_args += ["-f", f]
        offline = json.loads(c.kins(*offline_args).stdout)
        shape = {
            src.rsplit("-", 2)[0]: sorted((dst.rsplit("-", 2)[0], v) for dst, v in row.items() if dst != src)
            for src, row in live["verdicts"].items()
        }
        offline_shape = {
            src.rsplit("-", 2)[0]: sorted((dst.rsplit("-", 2)[0], v) for dst, v in row.items() if dst != src)
            for src, row in offline["verdicts"].items()
        }
        assert shape == offline_shape

        # with --probe every prediction holds against real connections
        probed = c.kins("policy", "matrix", "default", "--port", "50051", "--probe")
        assert probed.stdout.rstrip().endswith("0 wrong, 15 correct out of 15"), probed.stdout
        assert "not probed: 15 pairs" in probed.stdout

        # a denied trace, verified: the REJECT rule's counter moves, the probe is refused
        v = c.kins("trace", bm, "192.168.0.103:3306", "--verify", "-o", "json", check=False)
        doc = json.loads(v.stdout)
        assert v.returncode == 0, v.stdout + v.stderr
        assert doc["disposition"] == "rejected" and doc["policy"][0]["verdict"] == "denied"

        # a label change moves set members only: the rules stay as they were written
        node = c.pods("data-product")[0].spec.nodeName
        assert node is not None
        before = c.node_exec(node, "iptables-save", "-t", "filter").stdout
        c.client.patch("Pod", "default", bm, {"metadata": {"labels": {"app": "business-manager", "extra": "x"}}})
        wait_applied(c)
        after = c.node_exec(node, "iptables-save", "-t", "filter").stdout
        strip = lambda s: [ln for ln in s.splitlines() if ln.startswith("-A") or ln.startswith(":")]  # noqa: E731
        assert [ln.split(" [")[0] for ln in strip(before)] == [ln.split(" [")[0] for ln in strip(after)]

        # the last policy goes, and the layer with it
        c.kins("delete", "networkpolicy", "mysql-only-from-data-product", "data-product-from-business-manager")
        wait_applied(c)
        for n in ("node1", "node2"):
            saved = c.node_exec(n, "iptables-save", "-t", "filter").stdout
            assert "KUBE-ROUTER" not in saved and "KUBE-POD-FW" not in saved, saved
            assert c.node_exec(n, "ipset", "list", "-n").stdout.strip() == ""
        assert curl_code(c, dp, other) == 0


def test_flannel_alone_enforces_nothing(tmp_path: Path) -> None:
    data = msgspec.to_builtins(default_cluster())
    data["networkPolicy"] = {"provider": "none"}
    cluster_file = tmp_path / "cluster.json"
    cluster_file.write_text(json.dumps(data))
    with running_cluster(cluster_file=str(cluster_file)) as c:
        bm = c.wait_ready("business-manager", 3)[0].name
        dps = c.wait_ready("data-product", 3)
        dp, other = dps[0].name, f"http://{dps[1].status.podIP}:50051/"  # type: ignore[union-attr]
        c.kins("apply", "-f", APPENDIX_B)
        wait_applied(c)
        time.sleep(0.2)
        assert curl_code(c, dp, other) == 0
        assert curl_code(c, bm, MYSQL) != 7
        for n in ("node1", "node2"):
            assert "KUBE-ROUTER" not in c.node_exec(n, "iptables-save", "-t", "filter").stdout
        assert c.kins("get", "netpol").stdout.count("\n") == 3  # stored all the same
        _ = bm
