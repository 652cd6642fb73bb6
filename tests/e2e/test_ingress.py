"""The nginx ingress controller of a live cluster, reached from the outside host ``client``
through node1's NodePorts 30799/31522: the conformance scenarios (default backend, host rules
with wildcards and TLS/SNI, ingress class, path types and precedence, load balancing), the
article's legacy v1beta1 Ingress, and reloads under load that lose no request."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import KINS, Cluster, poll
from outside_helpers import (
    HTTP_NODEPORT,
    HTTPS_NODEPORT,
    NODE1,
    NODE2,
    backend_of,
    full_cluster,
    http_batch,
    netexec_backends,
    wait_served,
)

from kins.api.networking import Ingress

pytestmark = pytest.mark.root

BACKENDS = [
    "echo-service",
    "foo-exact",
    "foo-prefix",
    "aaa-prefix",
    "aaa-slash-bbb-prefix",
    "aaa-slash-bbb-slash-prefix",
    "foo-slash-exact",
    "impl-specific",
    "wildcard-foo-com",
    "foo-bar-com",
    "ingress-class-prefix",
]
LB_REPLICAS = 4


def _path(host: str, path: str, ptype: str, svc: str) -> str:
    return f"""
  - host: {host}
    http:
      paths:
      - {{path: {path}, pathType: {ptype}, backend: {{service: {{name: {svc}, port: {{number: 8080}}}}}}}}"""


INGRESSES = f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: path-rules, namespace: default}}
spec:
  ingressClassName: nginx
  rules:{_path("exact-path-rules", "/foo", "Exact", "foo-exact")}{
    _path("prefix-path-rules", "/foo", "Prefix", "foo-prefix")
}{_path("prefix-path-rules", "/aaa/bbb", "Prefix", "aaa-slash-bbb-prefix")}{
    _path("prefix-path-rules", "/aaa", "Prefix", "aaa-prefix")
}{_path("mixed-path-rules", "/foo", "Prefix", "foo-prefix")}{_path("mixed-path-rules", "/foo", "Exact", "foo-exact")}{
    _path("trailing-slash-path-rules", "/aaa/bbb/", "Prefix", "aaa-slash-bbb-slash-prefix")
}{_path("trailing-slash-path-rules", "/foo/", "Exact", "foo-slash-exact")}{
    _path("impl-path-rules", "/impl", "ImplementationSpecific", "impl-specific")
}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: host-rules, namespace: default}}
spec:
  ingressClassName: nginx
  tls: [{{hosts: [foo.bar.com], secretName: conformance-tls}}]
  rules:
  - host: "*.foo.com"
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: wildcard-foo-com, port: {{number: 8080}}}}}}}}
  - host: foo.bar.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: foo-bar-com, port: {{name: http}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: test-ingress-class, namespace: default}}
spec:
  ingressClassName: some-invalid-class-name
  rules:{_path("ingress-class", "/", "Prefix", "ingress-class-prefix")}
"""

DEFAULT_BACKEND = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: default-backend, namespace: default}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: echo-service, port: {number: 8080}}}
"""


def _tls_secret(host: str, tmp: Path) -> tuple[str, Path]:
    """A self-signed certificate for ``host`` as a kubernetes.io/tls Secret, and its PEM file."""
    crt, key = tmp / "tls.crt", tmp / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    b64 = {n: base64.b64encode(p.read_bytes()).decode() for n, p in (("tls.crt", crt), ("tls.key", key))}
    secret = textwrap.dedent(
        f"""
        apiVersion: v1
        kind: Secret
        metadata: {{name: conformance-tls, namespace: default}}
        type: kubernetes.io/tls
        data: {{tls.crt: {b64["tls.crt"]}, tls.key: {b64["tls.key"]}}}
        """
    )
    return secret, crt


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with full_cluster() as c, tempfile.TemporaryDirectory() as tmp:
        secret, crt = _tls_secret("foo.bar.com", Path(tmp))
        # The CA file must be readable from the host namespace: same filesystem, keep it in state.
        (c.root / "foo.bar.com.crt").write_bytes(crt.read_bytes())
        c.apply_text(netexec_backends(BACKENDS, {"echo-service": LB_REPLICAS}))
        c.apply_text(secret)
        c.apply_text(INGRESSES)
        for b in BACKENDS:
            c.wait_ready(b, LB_REPLICAS if b == "echo-service" else 1, timeout=60)
        wait_served(c, "exact-path-rules", "/foo", "foo-exact")
        poll(lambda: _https(c, "foo.bar.com", ca=True).returncode == 0, 20, "foo.bar.com over TLS", interval=0.2)
        yield c


def get(c: Cluster, host: str, path: str, method: str = "GET", addr: str = NODE1) -> tuple[int, str]:
    return http_batch(c, "client", [(addr, HTTP_NODEPORT, host, method, path)])[0]


def served_by(c: Cluster, host: str, path: str) -> str | int:
    code, body = get(c, host, path)
    return backend_of(body) if code == 200 else code


# --- default backend -----------------------------------------------------------------------------


def test_no_rule_matches_gives_nginx_404(cluster: Cluster) -> None:
    code, body = get(cluster, "nobody.example", "/")
    assert code == 404 and "nginx" in body  # the controller's own answer, not a backend's


def test_default_backend_takes_every_method_host_and_path(cluster: Cluster) -> None:
    cluster.apply_text(DEFAULT_BACKEND)
    try:
        wait_served(cluster, "my-host", "/", "echo-service")
        rows = [
            ("my-host", "GET", "/"),
            ("my-host", "GET", "/sub-path"),
            ("some-host", "POST", "/"),
            ("", "PUT", "/resource"),
            ("some-host", "DELETE", "/resource"),
            ("my-host", "PATCH", "/resource"),
        ]
        got = http_batch(cluster, "client", [(NODE1, HTTP_NODEPORT, h, m, p) for h, m, p in rows])
        assert [(code, backend_of(body)) for code, body in got] == [(200, "echo-service")] * len(rows)
        # Hosts that have rules keep them.
        assert served_by(cluster, "exact-path-rules", "/foo") == "foo-exact"
    finally:
        cluster.kins("delete", "ingress", "default-backend")
    poll(lambda: get(cluster, "my-host", "/")[0] == 404, 20, "default backend gone", interval=0.2)


# --- hosts and TLS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "want"),
    [
        ("foo.bar.com", 308),  # a TLS host: plain HTTP is redirected to https (served below)
        ("subdomain.bar.com", 404),
        ("bar.foo.com", "wildcard-foo-com"),
        ("baz.bar.foo.com", 404),  # a wildcard covers exactly one label
        ("foo.com", 404),
    ],
)
def test_host_rules(cluster: Cluster, host: str, want: str | int) -> None:
    assert served_by(cluster, host, "/") == want


def _https(cluster: Cluster, host: str, ca: bool) -> subprocess.CompletedProcess[str]:
    argv = ["curl", "-sS", "-m", "5", "--resolve", f"{host}:{HTTPS_NODEPORT}:{NODE1}"]
    argv += ["--cacert", str(cluster.root / "foo.bar.com.crt")] if ca else ["-k"]
    argv += ["-w", " %{http_code}", f"https://{host}:{HTTPS_NODEPORT}/"]
    return cluster.host_exec("client", *argv, check=False)


def test_plain_http_to_a_tls_host_redirects_to_https(cluster: Cluster) -> None:
    r = cluster.host_exec("client", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                          "-H", "Host: foo.bar.com", f"http://{NODE1}:{HTTP_NODEPORT}/x")  # fmt: skip
    assert r.stdout == "308 https://foo.bar.com/x"


def test_tls_with_sni_serves_the_secret_certificate(cluster: Cluster) -> None:
    # curl verifies the chain and the name against our self-signed certificate: only the
    # Secret's certificate, chosen by SNI foo.bar.com, passes.
    r = _https(cluster, "foo.bar.com", ca=True)
    assert r.returncode == 0, r.stderr
    body, code = r.stdout.rsplit(" ", 1)
    assert code == "200" and backend_of(body) == "foo-bar-com"
    # Another name gets nginx's default certificate, which our CA does not sign ...
    other = _https(cluster, "bar.foo.com", ca=True)
    assert other.returncode != 0
    # ... and is still routed by Host over TLS.
    insecure = _https(cluster, "bar.foo.com", ca=False)
    assert insecure.stdout.rsplit(" ", 1)[1] == "200" and backend_of(insecure.stdout.rsplit(" ", 1)[0]) == (
        "wildcard-foo-com"
    )


# --- ingress class ---------------------------------------------------------------------------------


def test_other_class_is_ignored_and_gets_no_status(cluster: Cluster) -> None:
    assert served_by(cluster, "ingress-class", "/") == 404

    def addresses(name: str) -> list[str]:
        ing = cluster.client.get("Ingress", "default", name)
        assert isinstance(ing, Ingress)
        lb = ing.status.loadBalancer if ing.status else None
        return [i.ip or i.hostname or "" for i in (lb.ingress if lb else None) or []]

    assert poll(lambda: addresses("path-rules"), 10, "the status of an Ingress of ours")
    assert addresses("test-ingress-class") == []


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "path", "want"),
    [
        ("exact-path-rules", "/foo", "foo-exact"),
        ("exact-path-rules", "/foo/", 404),
        ("exact-path-rules", "/FOO", 404),
        ("exact-path-rules", "/bar", 404),
        ("prefix-path-rules", "/foo", "foo-prefix"),
        ("prefix-path-rules", "/foo/", "foo-prefix"),
        ("prefix-path-rules", "/FOO", 404),
        ("prefix-path-rules", "/aaa/bbb", "aaa-slash-bbb-prefix"),
        ("prefix-path-rules", "/aaa/bbb/ccc", "aaa-slash-bbb-prefix"),
        ("prefix-path-rules", "/aaa/ccc", "aaa-prefix"),
        ("prefix-path-rules", "/aaaccc", 404),
        ("mixed-path-rules", "/foo", "foo-exact"),
        ("mixed-path-rules", "/foo/x", "foo-prefix"),
        ("trailing-slash-path-rules", "/aaa/bbb", "aaa-slash-bbb-slash-prefix"),
        ("trailing-slash-path-rules", "/aaa/bbb/", "aaa-slash-bbb-slash-prefix"),
        ("trailing-slash-path-rules", "/foo", 404),
        ("trailing-slash-path-rules", "/foo/", "foo-slash-exact"),
        # ImplementationSpecific is ingress-nginx's plain nginx prefix: a string prefix.
        ("impl-path-rules", "/impl", "impl-specific"),
        ("impl-path-rules", "/implx/y", "impl-specific"),
        ("impl-path-rules", "/im", 404),
    ],
)
def test_path_rules(cluster: Cluster, host: str, path: str, want: str | int) -> None:
    assert served_by(cluster, host, path) == want


# --- balancing, the article's Ingress --------------------------------------------------------------


def test_load_balancing_reaches_every_endpoint(cluster: Cluster) -> None:
    cluster.apply_text(DEFAULT_BACKEND)
    try:
        wait_served(cluster, "load-balancing", "/", "echo-service")
        got = http_batch(cluster, "client", [(NODE1, HTTP_NODEPORT, "load-balancing", "GET", "/")] * 100)
        assert all(code == 200 for code, _ in got)
        pods = Counter(body.strip() for _, body in got)
        want = {p.name for p in cluster.ready_pods("echo-service")}
        assert set(pods) == want and len(want) == LB_REPLICAS
    finally:
        cluster.kins("delete", "ingress", "default-backend")


def test_article_legacy_ingress_from_both_nodes(cluster: Cluster) -> None:
    ing = cluster.client.get("Ingress", "default", "business-manager")
    assert ing.apiVersion in ("networking.k8s.io/v1", "extensions/v1beta1")
    for addr in (NODE1, NODE2):
        code, body = get(cluster, "business-manager.default", "/api/v1/product/list", addr=addr)
        assert code == 200, body
        data = json.loads(body)
        assert data["businessManager"]["pod"].startswith("business-manager-")
        assert data["dataProduct"]["pod"].startswith("data-product-")  # reached by DNS name
        assert [p["name"] for p in data["products"]] == ["keyboard", "monitor", "mouse"]


def test_nginx_conf_is_visible_in_the_pod(cluster: Cluster) -> None:
    pod = cluster.ready_pods("nginx-ingress-controller", ns="ingress-nginx")[0]
    conf = cluster.kins("exec", "-n", "ingress-nginx", pod.name, "--", "cat", "/etc/nginx/nginx.conf").stdout
    assert "## start server business-manager.default" in conf
    assert "## start server foo.bar.com" in conf and "ingress-class" not in conf


# --- reloads under load ----------------------------------------------------------------------------

_LOOP = textwrap.dedent(
    """
    import http.client, json, os, sys, time
    addr, port, host, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ok, bad, end = 0, [], time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < end:
        try:
            c = http.client.HTTPConnection(addr, port, timeout=5)
            c.request("GET", "/foo", headers={"Host": host})
            r = c.getresponse(); body = r.read(); c.close()
            if r.status == 200: ok += 1
            else: bad.append(r.status)
        except OSError as e:
            bad.append(repr(e))
        if ok + len(bad) == 1:
            print("serving", flush=True)
    print(json.dumps({"ok": ok, "bad": bad, "stopped": os.path.exists(stop)}))
    """
)


def test_reloads_under_load_lose_no_request(cluster: Cluster, tmp_path: Path) -> None:
    # The load runs from its first answer until every reload is served (the outside host shares
    # the test's filesystem: a file stops it), however long the reloads take on a slow machine.
    stop = tmp_path / "stop"
    argv = ["python3", "-c", _LOOP, NODE1, str(HTTP_NODEPORT), "exact-path-rules", str(stop)]
    load = subprocess.Popen(
        [*KINS, "host", "exec", "client", "--", *argv],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    changes = 0
    err = ""
    try:
        assert load.stdout is not None
        first = load.stdout.readline()
        if first != "serving\n":
            rest, err = load.communicate(timeout=60)
            raise AssertionError(f"the load never served (exit {load.returncode}):\n{first}{rest}\n{err}")
        for i in range(5):
            cluster.apply_text(
                f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: reload-{i}, namespace: default}}
spec:
  ingressClassName: nginx
  rules:{_path(f"reload-{i}.example", "/", "Prefix", "echo-service")}
"""
            )
            wait_served(cluster, f"reload-{i}.example", "/", "echo-service")
            changes += 1
    finally:
        stop.touch()
        out, err = load.communicate(timeout=60) if load.returncode is None else ("", err)
        for i in range(changes):
            cluster.kins("delete", "ingress", f"reload-{i}")
    assert changes == 5
    assert out, f"the load printed no result (exit {load.returncode}):\n{err}"
    result = json.loads(out.splitlines()[-1])
    assert result["stopped"], result  # the load lasted through every reload
    assert result["bad"] == [], result
    assert result["ok"] > 50, result
