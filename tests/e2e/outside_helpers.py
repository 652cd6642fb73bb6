"""Reaching a live cluster from its outside hosts: batches of HTTP requests run by one Python
process inside a host's namespace, and the full article cluster (DNS, ingress controller)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from e2e_helpers import ARTICLE, Cluster, poll, running_cluster

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
NODE1 = "192.168.0.21"
NODE2 = "192.168.0.22"
CLIENT_IP = "192.168.0.100"
HTTP_NODEPORT = 30799
HTTPS_NODEPORT = 31522

# One request per item of argv[1] (JSON [[addr, port, host, method, path], ...]); prints JSON
# [[status, body], ...] with status 0 and the error for a failed connection.
_BATCH = textwrap.dedent(
    """
    import http.client, json, sys
    out = []
    for addr, port, host, method, path in json.loads(sys.argv[1]):
        try:
            c = http.client.HTTPConnection(addr, port, timeout=5)
            c.request(method, path, headers={"Host": host} if host else {})
            r = c.getresponse()
            out.append([r.status, r.read().decode(errors="replace")])
            c.close()
        except OSError as e:
            out.append([0, repr(e)])
    print(json.dumps(out))
    """
)


def http_batch(c: Cluster, host: str, requests: Sequence[tuple[str, int, str, str, str]]) -> list[tuple[int, str]]:
    """Send ``(addr, port, Host header, method, path)`` requests from outside host ``host``."""
    res = c.host_exec(host, "python3", "-c", _BATCH, json.dumps(list(requests)))
    return [(int(s), str(b)) for s, b in json.loads(res.stdout)]


def backend_of(body: str) -> str:
    """The Deployment behind a netexec ``/hostname`` answer: the pod name without its two
    generated suffixes."""
    return body.strip().rsplit("-", 2)[0]


def netexec_backends(names: Sequence[str], replicas: dict[str, int] | None = None, ns: str = "default") -> str:
    """A Deployment (netexec answering every path with its pod name) and a Service (port 8080
    named http -> 3000, like the conformance harness) for each name."""
    docs = []
    for n in names:
        docs.append(
            f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {n}, namespace: {ns}}}
spec:
  replicas: {(replicas or {}).get(n, 1)}
  selector: {{matchLabels: {{app: {n}}}}}
  template:
    metadata: {{labels: {{app: {n}}}}}
    spec:
      containers:
      - name: netexec
        image: {AGNHOST}
        args: [netexec, --http-port=3000, --http-override=/hostname]
        ports: [{{name: http, containerPort: 3000}}]
        readinessProbe:
          tcpSocket: {{port: 3000}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: {n}, namespace: {ns}}}
spec:
  selector: {{app: {n}}}
  ports: [{{name: http, port: 8080, targetPort: 3000}}]
"""
        )
    return "---".join(docs)


SYSTEM = ["kube-dns.yaml", "kube-dns-service.yaml", "ingress-nginx.yaml"]


@contextmanager
def full_cluster(cluster_file: str | None = None) -> Iterator[Cluster]:
    """A cluster with the article's apps, cluster DNS and the nginx ingress controller."""
    with running_cluster(cluster_file=cluster_file) as c:
        c.kins("apply", *(a for f in SYSTEM for a in ("-f", str(ARTICLE.joinpath(f)))))
        c.wait_ready("kube-dns", 2, ns="kube-system")
        c.wait_ready("nginx-ingress-controller", 1, ns="ingress-nginx", timeout=60)
        yield c


def wait_served(c: Cluster, host: str, path: str, want: str, timeout: float = 20) -> None:
    """Until the ingress answers ``Host: host`` ``path`` from Deployment ``want``."""

    def check() -> bool:
        ((code, body),) = http_batch(c, "client", [(NODE1, HTTP_NODEPORT, host, "GET", path)])
        assert code == 200 and backend_of(body) == want, (code, body[:200])
        return True

    poll(check, timeout, f"{host}{path} served by {want}", interval=0.2)
