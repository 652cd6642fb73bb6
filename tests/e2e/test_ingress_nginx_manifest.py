"""ingress-nginx's own bare-metal install manifest (controller v1.15.1), applied unmodified with
kubectl to a bare cluster: the certgen Jobs make the admission Secret and patch the webhook's
caBundle, the controller pod (upstream's flags, /healthz probes, the Secret volume) becomes
Ready, an Ingress of class nginx routes a request from the outside host through the controller
Service's NodePort, and the validating webhook answers AdmissionReviews over TLS with the CA
certgen made (refusing a configuration nginx rejects), and the API calls it for Ingress writes,
as the manifest's ValidatingWebhookConfiguration says (failurePolicy included)."""

from __future__ import annotations

import base64
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from e2e_helpers import Cluster, poll, running_cluster
from kubectl_bin import OLDEST
from manifest_helpers import apply_manifest, kubectl
from outside_helpers import NODE1, backend_of, http_batch, netexec_backends

pytestmark = pytest.mark.root

NS = "ingress-nginx"
WEBHOOK_HOST = "ingress-nginx-controller-admission.ingress-nginx.svc"

# argv: ClusterIP, CA (base64), Ingress host; prints the AdmissionReview answered.
REVIEW = textwrap.dedent(
    """
    import base64, http.client, json, socket, ssl, sys
    ip, ca, host = sys.argv[1:4]
    ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode())
    backend = {"service": {"name": "web", "port": {"number": 8080}}}
    rule = {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
    ing = {"metadata": {"name": "checked", "namespace": "default"},
           "spec": {"ingressClassName": "nginx", "rules": [rule]}}
    req = {"uid": "7d1c", "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
           "operation": "CREATE", "object": ing}
    c = http.client.HTTPSConnection(ip, 443, timeout=10)
    c.sock = ctx.wrap_socket(socket.create_connection((ip, 443), timeout=10), server_hostname=sys.argv[4])
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
    c.request("POST", "/networking/v1/ingresses", json.dumps(body), {"Content-Type": "application/json"})
    print(c.getresponse().read().decode())
    """
)

INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  ingressClassName: nginx
  rules:
  - host: web.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 8080}}}}
"""


@pytest.fixture(scope="module")
def installed() -> Iterator[Cluster]:
    with running_cluster(apps=False) as c:
        # kubectl 1.27 here (its client-side validation against the API's OpenAPI), 1.33 for
        # metrics-server's manifest.
        out = apply_manifest(c, "ingress-nginx-baremetal-deploy.yaml", OLDEST)
        assert "clusterrolebinding.rbac.authorization.k8s.io/ingress-nginx created" in out
        assert "serviceaccount/ingress-nginx-admission created" in out
        yield c


def test_certgen_jobs_complete_and_the_webhook_gets_its_ca(installed: Cluster) -> None:
    k = kubectl(installed)

    def completed() -> set[str]:
        events = json.loads(k("get", "events", "-n", NS, "-o", "json"))["items"]
        done = {e["involvedObject"]["name"] for e in events if e["reason"] == "Completed"}
        assert {"ingress-nginx-admission-create", "ingress-nginx-admission-patch"} <= done, done
        return done

    poll(completed, 90, "both certgen Jobs completed", interval=1.0)
    secret = json.loads(k("get", "secret", "-n", NS, "ingress-nginx-admission", "-o", "json"))
    assert sorted(secret["data"]) == ["ca", "cert", "key"]
    hook = json.loads(k("get", "validatingwebhookconfiguration", "ingress-nginx-admission", "-o", "json"))
    (w,) = hook["webhooks"]
    assert w["clientConfig"]["caBundle"] == secret["data"]["ca"]
    assert w["failurePolicy"] == "Fail"


def test_controller_becomes_ready_and_routes_from_outside(installed: Cluster) -> None:
    c = installed
    (pod,) = c.wait_ready("ingress-nginx-controller", 1, timeout=120, ns=NS)
    k = kubectl(c)
    lease = json.loads(k("get", "lease", "-n", NS, "ingress-nginx-leader", "-o", "json"))
    assert lease["spec"]["holderIdentity"] == pod.name
    # The controller's files live in the pod's own tmpfs at /etc/nginx, not the host's.
    assert not os.path.exists("/etc/nginx/nginx.conf.new")
    assert not os.path.exists("/etc/nginx/certs/default-fake-certificate.pem")
    c.apply_text(netexec_backends(["web"]) + "---" + INGRESS)
    svc = json.loads(k("get", "svc", "-n", NS, "ingress-nginx-controller", "-o", "json"))
    node_port = next(p["nodePort"] for p in svc["spec"]["ports"] if p["name"] == "http")

    def served() -> bool:
        ((code, body),) = http_batch(c, "client", [(NODE1, node_port, "web.example", "GET", "/")])
        assert code == 200 and backend_of(body) == "web", (code, body[:200])
        return True

    poll(served, 60, "web.example served through the controller's NodePort", interval=0.5)
    ((code, _),) = http_batch(c, "client", [(NODE1, node_port, "other.example", "GET", "/")])
    assert code == 404  # the default server: no Ingress for that host

    def status() -> list[dict[str, str]]:
        ing = json.loads(k("get", "ingress", "web", "-o", "json"))
        got = ing.get("status", {}).get("loadBalancer", {}).get("ingress") or []
        assert got, ing.get("status")
        return cast(list[dict[str, str]], got)

    # No --publish-service: the nodes running the controller's pods, as upstream reports them.
    node = json.loads(k("get", "node", pod.spec.nodeName or "", "-o", "json"))
    node_ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert {a["ip"] for a in poll(status, 30, "the Ingress's status address")} == {node_ip}


def test_configmap_settings_reach_nginx_conf(installed: Cluster) -> None:
    """The controller watches its --configmap: a key kins honours changes the pod's nginx.conf
    (in the pod's own /etc/nginx, read through kubectl exec)."""
    c = installed
    (pod,) = c.wait_ready("ingress-nginx-controller", 1, timeout=120, ns=NS)
    k = kubectl(c)
    patch = {"data": {"max-worker-connections": "2048", "use-gzip": "true"}}
    k("patch", "configmap", "-n", NS, "ingress-nginx-controller", "--type=merge", "-p", json.dumps(patch))

    def conf() -> bool:
        text = k("exec", "-n", NS, pod.name, "--", "cat", "/etc/nginx/nginx.conf")
        assert "worker_connections 2048;" in text, text[:400]
        return True

    poll(conf, 30, "worker_connections 2048 in the pod's nginx.conf", interval=1.0)
    logs = k("logs", "-n", NS, pod.name)
    assert "keys kins does not act on: use-gzip" in logs


def test_webhook_answers_admission_reviews(installed: Cluster, tmp_path: Path) -> None:
    c = installed
    c.wait_ready("ingress-nginx-controller", 1, timeout=120, ns=NS)
    k = kubectl(c)
    ca = json.loads(k("get", "secret", "-n", NS, "ingress-nginx-admission", "-o", "json"))["data"]["ca"]
    ip = json.loads(k("get", "svc", "-n", NS, "ingress-nginx-controller-admission", "-o", "json"))["spec"]["clusterIP"]
    script = tmp_path / "review.py"
    script.write_text(REVIEW)

    def review(host: str) -> dict[str, Any]:
        out = c.node_exec("node1", "python3", str(script), ip, ca, host, WEBHOOK_HOST).stdout
        return cast(dict[str, Any], json.loads(out)["response"])

    ok = poll(lambda: review("checked.example"), 30, "the webhook's answer", interval=1.0)
    assert ok == {"uid": "7d1c", "allowed": True}
    refused = review("bad{host")
    assert refused["allowed"] is False and refused["uid"] == "7d1c"
    assert 'directive "server_name" is not terminated' in refused["status"]["message"]
    assert base64.b64decode(ca).startswith(b"-----BEGIN CERTIFICATE-----")


def _ingress(name: str, host: str) -> str:
    return INGRESS.replace("name: web,", f"name: {name},").replace("web.example", host)


def test_the_api_calls_the_webhook(installed: Cluster) -> None:
    """Writes of Ingresses go through the webhook the manifest configures: one nginx refuses is
    refused with the webhook's message; with no controller to ask, failurePolicy decides."""
    c = installed
    c.wait_ready("ingress-nginx-controller", 1, timeout=120, ns=NS)
    k = kubectl(c)
    # Valid for the API (labels of 63 characters), too long for nginx's server_names hash.
    long_host = ".".join(["a" * 63, "b" * 63, "c" * 63, "example"])
    refused = k.run("apply", "-f", "-", input=_ingress("long", long_host), check=False)
    assert refused.returncode != 0
    assert 'admission webhook "validate.nginx.ingress.kubernetes.io" denied the request' in refused.stderr
    assert "could not build server_names_hash" in refused.stderr
    assert "(BadRequest)" in refused.stderr
    assert k.run("get", "ingress", "long", check=False).returncode != 0  # nothing stored
    k("apply", "-f", "-", input=_ingress("fine", "fine.example"))
    # No controller: failurePolicy Fail refuses, Ignore lets the write through.
    k("scale", "deployment", "-n", NS, "ingress-nginx-controller", "--replicas=0")
    poll(lambda: not c.pods("ingress-nginx-controller", NS), 60, "the controller pod gone", interval=0.5)
    failed = k.run("apply", "-f", "-", input=_ingress("later", "later.example"), check=False)
    assert failed.returncode != 0
    assert 'failed calling webhook "validate.nginx.ingress.kubernetes.io"' in failed.stderr, failed.stderr
    patch = [{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]
    k("patch", "validatingwebhookconfiguration", "ingress-nginx-admission", "--type=json", "-p", json.dumps(patch))
    k("apply", "-f", "-", input=_ingress("later", "later.example"))
