"""kubectl 1.27 and 1.33 against one live cluster (`kins up --no-workloads`: cluster DNS and the
ingress controller, no apps): the everyday commands, each as a user types it, checked on what
kubectl prints and on what the cluster then holds (pods' network namespaces, the store).

kubectl 1.27 speaks SPDY for exec/cp and reads OpenAPI v2 for apply/diff/explain; 1.33 sends
protobuf for its generators (create namespace/deployment/secret/configmap) and WebSockets for exec.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import Cluster, cluster_namespaces, poll, running_cluster
from kubectl_bin import NEWEST, OLDEST, Kubectl, kubectl_for
from kubernetes import client, config, watch

pytestmark = pytest.mark.root

VERSIONS = [OLDEST, NEWEST]
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"
BOX = """
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "while true; do sleep 1; done"]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(apps=False, addons=True) as c:
        yield c


def kubectl(cluster: Cluster, version: str) -> Kubectl:
    return kubectl_for(version, cluster.state / "kubeconfig")


def tag(version: str) -> str:
    """A name part per kubectl version, so both versions' objects live side by side."""
    return "v" + version.replace(".", "")


def as_json(k: Kubectl, *args: str) -> dict[str, Any]:
    return dict(json.loads(k(*args, "-o", "json")))


def pod_ready(k: Kubectl, name: str, ns: str = "default") -> bool:
    st = as_json(k, "get", "pod", name, "-n", ns).get("status", {})
    return st.get("phase") == "Running" and all(c.get("ready") for c in st.get("containerStatuses", []))


@pytest.fixture(scope="module")
def box(cluster: Cluster) -> str:
    """A busybox pod in default, running."""
    k = kubectl(cluster, NEWEST)
    k("apply", "-f", "-", input=BOX)
    poll(lambda: pod_ready(k, "box"), 60, "pod box running")
    return "box"


def served_resources(k: Kubectl) -> set[str]:
    """``resource.group`` (core: ``resource``) of everything discovery lists."""
    out = k("api-resources", "--no-headers", "-o", "name")
    return set(out.split())


# --- create through the generators, read back -----------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_create_generators_and_read_back(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    ns = f"t1-{tag(version)}"
    creates = [
        ("namespace", ns, "-o", "yaml"),
        ("deployment", "web", "-n", ns, f"--image={AGNHOST}", "--", "/agnhost", "netexec"),
        ("secret", "generic", "s1", "-n", ns, "--from-literal=user=admin"),
        ("configmap", "c1", "-n", ns, "--from-literal=a=b"),
    ]
    for args in creates:
        # -v=8 logs the request's headers: 1.33 writes protobuf, 1.27 JSON.
        p = k.run("-v=8", "create", *args)
        post = re.search(r"POST.*?Content-Type: (\S+)", p.stderr, re.S)
        want = "application/vnd.kubernetes.protobuf" if version == NEWEST else "application/json"
        assert post and post[1] == want, p.stderr
        if args[0] == "namespace":  # the POST's answer, then a read
            assert re.search(r"^status:\n  phase: Active$", p.stdout, re.M), p.stdout
    assert re.search(r"^status:\n  phase: Active$", k("get", "namespace", ns, "-o", "yaml"), re.M)
    assert "  a: b\n" in k("get", "configmap", "c1", "-n", ns, "-o", "yaml")
    secret = k("get", "secret", "s1", "-n", ns, "-o", "yaml")
    assert "  user: YWRtaW4=\n" in secret and f"namespace: {ns}" in secret and "type: Opaque" in secret
    deploy = k("get", "deployment", "web", "-n", ns, "-o", "yaml")
    assert f"image: {AGNHOST}" in deploy and "- netexec" in deploy
    poll(lambda: pod_ready_any(k, ns, "app=web"), 60, f"a ready web pod in {ns}")


def pod_ready_any(k: Kubectl, ns: str, selector: str) -> bool:
    items = as_json(k, "get", "pods", "-n", ns, "-l", selector)["items"]
    return bool(items) and all(
        p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp") for p in items
    )


# --- get all -A --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_get_all_all_namespaces(cluster: Cluster, version: str) -> None:
    out = kubectl(cluster, version)("get", "all", "-A")
    tables = [t.splitlines() for t in out.strip().split("\n\n")]
    prefixes = [t[1].split()[1].split("/")[0] for t in tables]
    assert prefixes == ["pod", "service", "deployment.apps", "replicaset.apps"], out
    assert tables[0][0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert tables[1][0].split() == ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert tables[2][0].split() == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert tables[3][0].split() == ["NAMESPACE", "NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    for table, prefix in zip(tables, prefixes, strict=True):
        assert all(row.split()[1].startswith(prefix + "/") for row in table[1:]), table
    assert any(re.match(r"kube-system +pod/kube-dns-\S+ +1/1 +Running", r) for r in tables[0]), out
    assert any(re.match(r"kube-system +service/kube-dns +ClusterIP +10\.254\.0\.2 ", r) for r in tables[1]), out


# --- namespace deletion ----------------------------------------------------------------------


def doomed(ns: str) -> str:
    return f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: w, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: w}}}}
  template:
    metadata: {{labels: {{app: w}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - {{name: w, image: "{AGNHOST}", args: [netexec, --http-port=8080]}}
---
apiVersion: v1
kind: Service
metadata: {{name: w, namespace: {ns}}}
spec:
  selector: {{app: w}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: w, namespace: {ns}}}
spec:
  rules:
  - host: w.example
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: w, port: {{number: 80}}}}}}}}
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_delete_namespace(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    ns = f"zz-{tag(version)}"
    k("apply", "-f", "-", input=doomed(ns))
    poll(lambda: len(as_json(k, "get", "pods", "-n", ns)["items"]) == 2 and pod_ready_any(k, ns, "app=w"), 60, "2 w")
    pod_netns = [n for n in cluster_namespaces(cluster.name) if f"-pod-{ns}-" in n]
    assert len(pod_netns) == 2, cluster_namespaces(cluster.name)
    # Watch the namespace as kubectl does, from before the delete to its end.
    watch_cmd = ["get", "namespace", ns, "--watch", "--output-watch-events"]
    w = subprocess.Popen(
        [str(k.binary), *watch_cmd, "-o", 'jsonpath={.type} {.object.status.phase}{"\\n"}'],
        env={"PATH": "/usr/bin:/bin", "HOME": str(k.kubeconfig.parent), "KUBECONFIG": str(k.kubeconfig)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(w.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        poll(lambda: lines, 10, "the watch's first event")
        assert f'namespace "{ns}" deleted' in k("delete", "namespace", ns, "--wait=false")
        poll(lambda: "DELETED Terminating\n" in lines, 60, f"namespace {ns} deleted (events: {lines})")
    finally:
        w.kill()
        w.wait()
    assert lines[0] == "ADDED Active\n" and "MODIFIED Terminating\n" in lines, lines
    assert ns not in k("get", "po", "-A")
    assert not [n for n in cluster_namespaces(cluster.name) if f"-pod-{ns}-" in n]
    for kind in ("Service", "Ingress", "Deployment", "Pod", "EndpointSlice"):
        assert not cluster.client.list(kind, ns), kind
    p = k.run("get", "namespace", ns, check=False)
    assert p.returncode == 1 and f'namespaces "{ns}" not found' in p.stderr


# --- server-side apply and diff --------------------------------------------------------------


def configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default}}\ndata: {{a: '{value}'}}\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_server_side_apply_conflicts_and_diff(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    name = f"ssa-{tag(version)}"
    assert (
        k("apply", "--server-side", "-f", "-", input=configmap(name, "1")) == f"configmap/{name} serverside-applied\n"
    )
    for extra in ((), ("--server-side",)):
        same = k.run("diff", *extra, "-f", "-", input=configmap(name, "1"), check=False)
        assert (same.returncode, same.stdout) == (0, ""), same
    changed = k.run("diff", "-f", "-", input=configmap(name, "2"), check=False)
    assert changed.returncode == 1 and '-  a: "1"\n+  a: "2"\n' in changed.stdout, changed
    other = ("apply", "--server-side", "--field-manager=other", "-f", "-")
    conflict = k.run(*other, input=configmap(name, "2"), check=False)
    assert conflict.returncode == 1, conflict
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.a' in conflict.stderr
    assert k("get", "cm", name, "-o", "jsonpath={.data.a}") == "1"
    k(*other, "--force-conflicts", input=configmap(name, "2"))
    assert k("get", "cm", name, "-o", "jsonpath={.data.a}") == "2"
    managers = as_json(k, "get", "cm", name, "--show-managed-fields")["metadata"]["managedFields"]
    assert [m["manager"] for m in managers if "f:a" in json.dumps(m.get("fieldsV1", {}))] == ["other"]


# --- client-side apply, diff, explain (kubectl 1.27 reads OpenAPI v2) ------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_apply_stdin_diff_explain(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    ns = f"ap-{tag(version)}"
    manifest = doomed(ns)  # a namespace, a Deployment, a Service and an Ingress
    out = k("apply", "-f", "-", input=manifest)
    assert out.splitlines() == [
        f"namespace/{ns} created",
        "deployment.apps/w created",
        "service/w created",
        "ingress.networking.k8s.io/w created",
    ]
    same = k.run("diff", "-f", "-", input=manifest, check=False)
    assert (same.returncode, same.stdout) == (0, ""), same
    changed = k.run("diff", "-f", "-", input=manifest.replace("replicas: 2", "replicas: 3"), check=False)
    assert changed.returncode == 1 and "-  replicas: 2\n+  replicas: 3\n" in changed.stdout, changed
    assert "configured" not in k("apply", "-f", "-", input=manifest)  # unchanged
    explained = k("explain", "deployment.spec.replicas")
    assert re.search(r"KIND: +Deployment", explained) and re.search(r"FIELD: +replicas <integer>", explained)
    assert "desired pods" in explained
    assert "swagger" in k("get", "--raw", "/openapi/v2")[:200]
    k("delete", "namespace", ns, "--wait=false")


# --- metrics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_top(cluster: Cluster, box: str, version: str) -> None:
    k = kubectl(cluster, version)
    nodes = poll(lambda: k("top", "nodes"), 60, "kubectl top nodes").splitlines()
    assert nodes[0].split()[:2] == ["NAME", "CPU(cores)"]
    assert sorted(line.split()[0] for line in nodes[1:]) == ["node1", "node2"]
    assert all(re.fullmatch(r"\d+m", line.split()[1]) and line.split()[3].endswith("Mi") for line in nodes[1:])
    pods = poll(lambda: k("top", "pods", "-n", "kube-system"), 60, "kubectl top pods").splitlines()
    assert pods[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert sum(line.startswith("kube-dns-") for line in pods) == 2, pods
    # The current namespace's pods, once the box has been sampled.
    mine = poll(lambda: k.run("top", "pods", check=False).stdout, 60, "kubectl top pods in default")
    assert re.search(r"^box +\d+m +\d+Mi +$", mine, re.M), mine


# --- exec, cp, debug, DNS --------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_and_cp(cluster: Cluster, box: str, version: str, tmp_path: Path) -> None:
    k = kubectl(cluster, version)
    assert k("exec", box, "--", "hostname") == "box\n"
    assert k("exec", "-i", box, "--", "sh", "-c", "tr a-z A-Z", input="spdy or ws\n") == "SPDY OR WS\n"
    src = tmp_path / "in.txt"
    src.write_text(f"copied by kubectl {version}\n")
    k("cp", str(src), f"{box}:/tmp/in-{tag(version)}.txt")
    assert k("exec", box, "--", "cat", f"/tmp/in-{tag(version)}.txt") == src.read_text()
    back = tmp_path / "back.txt"
    k("cp", f"{box}:/tmp/in-{tag(version)}.txt", str(back))
    assert back.read_text() == src.read_text()


@pytest.mark.parametrize("version", VERSIONS)
def test_debug_ephemeral_container(cluster: Cluster, box: str, version: str) -> None:
    k = kubectl(cluster, version)
    name = f"dbg-{tag(version)}"
    k("debug", box, "--image=busybox", "-c", name, "--", "sh", "-c", "echo from-debug; hostname")
    pod = poll(
        lambda: [
            s
            for s in as_json(k, "get", "pod", box)["status"].get("ephemeralContainerStatuses", [])
            if s["name"] == name and "terminated" in s["state"]
        ],
        60,
        f"ephemeral container {name} finished",
    )
    assert pod[0]["state"]["terminated"]["exitCode"] == 0
    assert k("logs", box, "-c", name) == "from-debug\nbox\n"
    # As typed most often: no name, no command (the image's shell, without a terminal, ends).
    said = k.run("debug", box, "--image=busybox")
    found = re.findall(r"Defaulting debug container name to (debugger-\w+)\.", said.stdout + said.stderr)
    assert len(found) == 1, said
    debugger = found[0]
    poll(
        lambda: [
            s
            for s in as_json(k, "get", "pod", box)["status"].get("ephemeralContainerStatuses", [])
            if s["name"] == debugger and "terminated" in s["state"]
        ],
        60,
        f"ephemeral container {debugger} ran",
    )


def test_cluster_dns_answers_in_a_pod(cluster: Cluster, box: str) -> None:
    k = kubectl(cluster, NEWEST)
    out = poll(lambda: k("exec", box, "--", "nslookup", "kube-dns.kube-system.svc.cluster.local"), 30, "nslookup")
    assert "Address: 10.254.0.2" in out, out
    assert "Address: 10.254.0.1" in k("exec", box, "--", "nslookup", "kubernetes.default.svc.cluster.local")


# --- kins get prints what kubectl prints -----------------------------------------------------


def test_kins_get_prints_as_kubectl(cluster: Cluster, box: str) -> None:
    k = kubectl(cluster, NEWEST)
    for args in (("po", "-o", "name"), ("svc,ep",), ("svc,ep", "-A"), ("po", "-o", "wide", "-A")):

        def same(args: tuple[str, ...] = args) -> bool:
            # AGE may tick between the two commands: compare again until both agree.
            mine, theirs = cluster.kins("get", *args).stdout, k(*("get", *args))
            assert mine == theirs, f"kins get {' '.join(args)}:\n{mine}\nkubectl:\n{theirs}"
            return True

        poll(same, 5, f"kins get {' '.join(args)} as kubectl prints it", interval=0.5)


# --- rollout undo ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_rollout_undo_brings_back_revision_one(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    ns = f"ro-{tag(version)}"
    k("create", "namespace", ns)
    k("create", "deployment", "web", "-n", ns, f"--image={AGNHOST}", "--", "/agnhost", "netexec")
    k("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    (first,) = [rs["metadata"]["name"] for rs in as_json(k, "get", "rs", "-n", ns)["items"]]
    k("set", "image", "deployment/web", "-n", ns, "agnhost=registry.k8s.io/e2e-test-images/agnhost:2.48")
    k("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    assert "deployment.apps/web rolled back" in k("rollout", "undo", "deployment/web", "-n", ns)
    k("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    sets = {rs["metadata"]["name"]: rs for rs in as_json(k, "get", "rs", "-n", ns)["items"]}
    assert len(sets) == 2 and first in sets, sorted(sets)
    assert sets[first]["spec"]["replicas"] == 1
    assert sets[first]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert k("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}") == AGNHOST
    history = k("rollout", "history", "deployment/web", "-n", ns)
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"], history


# --- PersistentVolumeClaims ------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_get_pvc(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    name = f"data-{tag(version)}"
    pvc = (
        f"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\n"
        "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
    )
    k("apply", "-f", "-", input=pvc)
    table = k("get", "pvc", name).splitlines()
    assert table[0].split()[:6] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES"]
    assert table[1].split()[0] == name
    got = as_json(k, "get", "pvc", name)
    assert got["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert got["status"]["phase"] in ("Pending", "Bound")
    k("delete", "pvc", name)


# --- discovery -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_discovery_lists_every_group(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    resources = k("api-resources", "--no-headers")
    groups_in_use = {
        line.split()[-3].split("/")[0] for line in resources.splitlines() if "/" in line.split()[-3]
    }  # APIVERSION column, groups only
    listed = {g["name"] for g in json.loads(k("get", "--raw", "/apis"))["groups"]}
    assert listed == groups_in_use, (sorted(listed - groups_in_use), sorted(groups_in_use - listed))
    assert {"apps", "batch", "networking.k8s.io", "discovery.k8s.io", "metrics.k8s.io"} <= listed
    for g in json.loads(k("get", "--raw", "/apis"))["groups"]:
        body = json.loads(k("get", "--raw", f"/apis/{g['preferredVersion']['groupVersion']}"))
        assert body["kind"] == "APIResourceList" and body["resources"], g["name"]


# --- ServiceAccounts and RBAC (enabled by themselves once discovery serves them) ------------


IDENTITY_MISSING = "ServiceAccounts/RBAC are not served yet"


def require_identity(k: Kubectl) -> None:
    """Skip unless discovery serves ServiceAccounts, RBAC and SelfSubjectAccessReviews."""
    served = served_resources(k)
    wanted = {"serviceaccounts", "selfsubjectaccessreviews.authorization.k8s.io", "roles.rbac.authorization.k8s.io"}
    if not wanted <= served:
        pytest.skip(f"{IDENTITY_MISSING} (discovery lacks {sorted(wanted - served)})")


@pytest.mark.parametrize("version", VERSIONS)
def test_identity_auth_can_i(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    require_identity(k)
    assert k("auth", "can-i", "list", "pods") == "yes\n"
    assert k("auth", "can-i", "create", "deployments", "-n", "kube-system") == "yes\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_identity_service_accounts(cluster: Cluster, version: str) -> None:
    k = kubectl(cluster, version)
    require_identity(k)
    name = f"bot-{tag(version)}"
    assert k("create", "serviceaccount", name) == f"serviceaccount/{name} created\n"
    table = poll(lambda: k("get", "sa"), 10, "kubectl get sa").splitlines()
    assert table[0].split() == ["NAME", "SECRETS", "AGE"]
    assert {line.split()[0] for line in table[1:]} >= {"default", name}
    k("delete", "serviceaccount", name)


# --- the official Python client --------------------------------------------------------------


def test_python_client_lists_and_watches_pods(cluster: Cluster, box: str) -> None:
    api = config.new_client_from_config(config_file=str(cluster.state / "kubeconfig"))
    core = client.CoreV1Api(api)
    names = {str(p.metadata.name) for p in core.list_pod_for_all_namespaces().items if p.metadata}
    assert "box" in names and sum(n.startswith("kube-dns-") for n in names) == 2
    k = kubectl(cluster, NEWEST)
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    started = time.monotonic()
    creator = threading.Timer(0.5, lambda: k("run", "pyseen", "--image=busybox", "--", "sleep", "3600"))
    creator.start()
    for ev in w.stream(core.list_namespaced_pod, "default", timeout_seconds=60):
        seen.append((ev["type"], ev["object"].metadata.name))
        phase = ev["object"].status.phase if ev["object"].status else None
        if ev["object"].metadata.name == "pyseen" and phase == "Running":
            w.stop()
    creator.join()
    assert ("ADDED", "box") in seen and ("ADDED", "pyseen") in seen and time.monotonic() - started < 60, seen
    k("delete", "pod", "pyseen", "--wait=false")


# --- events, after everything above ---------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_events_all_namespaces(cluster: Cluster, box: str, version: str) -> None:
    k = kubectl(cluster, version)
    box_started = r"default +\S+ +Normal +Started +pod/box +Started container main"
    # Events are written in batches, in the background: the box's may trail its start.

    def listed() -> str | None:
        out = k("get", "events", "-A")
        return out if re.search(box_started, out) else None

    out = poll(listed, 10, "the box's events")
    assert out.splitlines()[0].split() == ["NAMESPACE", "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    reasons = {line.split()[3] for line in out.splitlines()[1:] if len(line.split()) > 3}
    assert {"Scheduled", "Pulled", "Created", "Started", "ScalingReplicaSet", "SuccessfulCreate"} <= reasons, out
