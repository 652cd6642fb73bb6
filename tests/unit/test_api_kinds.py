"""Manifests of the kinds real install manifests carry (storage, webhooks, autoscaling,
scheduling, leases, API services, quotas), applied with kubectl 1.27 and 1.33 and read back."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from kubectl_bin import NEWEST, OLDEST, Kubectl, tls_api

from kins.store.memory import MemoryStore

KINDS_YAML = """\
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv1}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/pv1}
  storageClassName: standard
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
  storageClassName: standard
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: standard}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ingress-nginx-admission}
webhooks:
- name: validate.nginx.ingress.kubernetes.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  matchPolicy: Equivalent
  clientConfig:
    service: {namespace: ingress-nginx, name: ingress-nginx-controller-admission, path: /networking/v1/ingresses}
  rules:
  - apiGroups: [networking.k8s.io]
    apiVersions: [v1]
    operations: [CREATE, UPDATE]
    resources: [ingresses]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: mutator}
webhooks:
- name: mutate.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  reinvocationPolicy: Never
  clientConfig: {url: "https://example.com/mutate"}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
---
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: old}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: old}
  maxReplicas: 3
  targetCPUUtilizationPercentage: 70
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: leader}
spec: {holderIdentity: me, leaseDurationSeconds: 15, renewTime: "2024-01-01T00:00:00.000000Z"}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
globalDefault: false
description: high priority
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  service: {name: metrics-server, namespace: kube-system}
  group: metrics.k8s.io
  version: v1beta1
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: q}
spec: {hard: {pods: "10", requests.cpu: "4"}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: lr}
spec:
  limits:
  - type: Container
    default: {cpu: 500m}
    defaultRequest: {cpu: 100m}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec:
  replicas: 0
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec:
      containers: [{name: c, image: nginx}]
"""

# (resource, name) of every object in KINDS_YAML, and what kubectl prints for it created.
OBJECTS = [
    ("persistentvolume", "pv1"),
    ("persistentvolumeclaim", "data"),
    ("storageclass.storage.k8s.io", "standard"),
    ("validatingwebhookconfiguration.admissionregistration.k8s.io", "ingress-nginx-admission"),
    ("mutatingwebhookconfiguration.admissionregistration.k8s.io", "mutator"),
    ("poddisruptionbudget.policy", "web"),
    ("horizontalpodautoscaler.autoscaling", "web"),
    ("horizontalpodautoscaler.autoscaling", "old"),
    ("lease.coordination.k8s.io", "leader"),
    ("priorityclass.scheduling.k8s.io", "high"),
    ("apiservice.apiregistration.k8s.io", "v1beta1.metrics.k8s.io"),
    ("resourcequota", "q"),
    ("limitrange", "lr"),
    ("replicationcontroller", "rc"),
]


def _apply(k: Kubectl, version: str, path: Path) -> str:
    del version  # both validate: 1.27 against OpenAPI v2, 1.33 on the server (fieldValidation)
    return k("apply", "-f", str(path))


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_apply_every_kind_and_read_it_back(tmp_path: Path, version: str) -> None:
    manifest = tmp_path / "kinds.yaml"
    manifest.write_text(KINDS_YAML)
    with tls_api(MemoryStore(history=1000), tmp_path / "state") as api:
        k = api.kubectl(version)
        out = _apply(k, version, manifest)
        assert out.splitlines() == [f"{r}/{n} created" for r, n in OBJECTS]
        # applied again: nothing changed, but for what kubectl always sends: a PodDisruptionBudget's
        # selector (its patch strategy is "replace") and webhook rules (atomic lists the API
        # server defaults the scope of)
        again = _apply(k, version, manifest)
        changed = [line for line in again.splitlines() if not line.endswith(" unchanged")]
        assert changed == [
            "validatingwebhookconfiguration.admissionregistration.k8s.io/ingress-nginx-admission configured",
            "poddisruptionbudget.policy/web configured",
        ], again
        hook = json.loads(k("get", "validatingwebhookconfiguration", "-o", "json"))["items"][0]["webhooks"][0]
        assert (hook["sideEffects"], hook["failurePolicy"], hook["timeoutSeconds"]) == ("None", "Fail", 10)

        def get(resource: str, name: str) -> dict:
            return json.loads(k("get", resource, name, "-o", "json"))

        pvc = get("pvc", "data")
        assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
        assert pvc["status"]["phase"] == "Pending"
        assert get("pv", "pv1")["spec"]["hostPath"]["path"] == "/tmp/pv1"
        assert get("sc", "standard")["volumeBindingMode"] == "WaitForFirstConsumer"
        hook = get("validatingwebhookconfigurations", "ingress-nginx-admission")["webhooks"][0]
        assert hook["clientConfig"]["service"]["name"] == "ingress-nginx-controller-admission"
        assert hook["rules"][0]["resources"] == ["ingresses"]
        assert get("mutatingwebhookconfigurations", "mutator")["webhooks"][0]["reinvocationPolicy"] == "Never"
        assert get("pdb", "web")["spec"]["minAvailable"] == 1
        assert get("lease", "leader")["spec"]["holderIdentity"] == "me"
        assert get("pc", "high")["value"] == 1000
        assert get("quota", "q")["spec"]["hard"]["pods"] == "10"
        assert get("limits", "lr")["spec"]["limits"][0]["default"] == {"cpu": "500m"}
        assert get("rc", "rc")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
        svc = get("apiservice", "v1beta1.metrics.k8s.io")
        assert svc["spec"]["service"]["name"] == "metrics-server"
        available = svc["status"]["conditions"][0]
        assert (available["type"], available["status"]) == ("Available", "False")
        # autoscaling/v1 is stored as v2 and served in both
        old_v2 = get("horizontalpodautoscalers.v2.autoscaling", "old")
        assert old_v2["apiVersion"] == "autoscaling/v2"
        assert old_v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
        assert old_v2["spec"]["minReplicas"] == 1  # defaulted, as autoscaling/v2 does
        assert (
            k(
                "get",
                "horizontalpodautoscalers.v1.autoscaling",
                "old",
                "-o",
                "jsonpath={.spec.targetCPUUtilizationPercentage}",
            )
            == "70"
        )
        assert (
            k("get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "jsonpath={.apiVersion}")
            == "autoscaling/v1"
        )

        tables = k("get", "pvc,pv,sc,hpa,pdb,pc,apiservice,lease").split("\n\n")
        header = [t.splitlines()[0].split() for t in tables]
        assert header[0] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
                             "VOLUMEATTRIBUTESCLASS", "AGE"]  # fmt: skip
        assert tables[0].splitlines()[1].split()[:3] == ["persistentvolumeclaim/data", "Pending", "standard"]
        assert tables[1].splitlines()[1].split()[:5] == ["persistentvolume/pv1", "1Gi", "RWO", "Retain", "Available"]
        assert header[2][:3] == ["NAME", "PROVISIONER", "RECLAIMPOLICY"]
        hpa_rows = {line.split()[0]: line for line in tables[3].splitlines()[1:]}
        assert "Deployment/web" in hpa_rows["horizontalpodautoscaler.autoscaling/web"]
        assert "cpu: <unknown>/60%" in hpa_rows["horizontalpodautoscaler.autoscaling/web"]
        assert tables[4].splitlines()[1].split()[1:4] == ["1", "N/A", "0"]
        assert tables[5].splitlines()[1].split()[1:3] == ["1000", "false"]
        assert "kube-system/metrics-server   False (MissingEndpoints)" in tables[6]
        assert tables[7].splitlines()[1].split()[:2] == ["lease.coordination.k8s.io/leader", "me"]

        # The claim and the volume carry their protection finalizers, which no controller
        # removes here (the API alone is serving): they stay, marked, until one does.
        k("delete", "--wait=false", "-f", str(manifest))
        left = k.run("get", "hpa,rc", check=False)
        assert left.stdout == "" and "No resources found" in left.stderr
        for resource, name, finalizer in [
            ("pvc", "data", "kubernetes.io/pvc-protection"),
            ("pv", "pv1", "kubernetes.io/pv-protection"),
        ]:
            held = get(resource, name)
            assert held["metadata"]["deletionTimestamp"] and held["metadata"]["finalizers"] == [finalizer]


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_short_names_and_categories_in_discovery(tmp_path: Path, version: str) -> None:
    with tls_api(MemoryStore(history=100), tmp_path) as api:
        k = api.kubectl(version)
        rows: dict[str, list[str]] = {}
        for line in k("api-resources", "--no-headers").splitlines():
            rows.setdefault(line.split()[0], line.split())  # the first group (core) of a name
        want = {
            "persistentvolumes": "pv", "persistentvolumeclaims": "pvc", "storageclasses": "sc",
            "poddisruptionbudgets": "pdb", "horizontalpodautoscalers": "hpa", "priorityclasses": "pc",
            "customresourcedefinitions": "crd,crds", "resourcequotas": "quota", "limitranges": "limits",
            "replicationcontrollers": "rc", "pods": "po", "services": "svc", "deployments": "deploy",
            "cronjobs": "cj", "events": "ev",
        }  # fmt: skip
        for plural, short in want.items():
            assert rows[plural][1] == short, rows[plural]
        for plural in ("leases", "apiservices", "validatingwebhookconfigurations", "jobs"):
            assert rows[plural][1].count("/") == 1  # no short names: the second column is the version
        in_all = set(k("api-resources", "--categories=all", "-o", "name").split())
        assert in_all == {
            "pods", "replicationcontrollers", "services", "daemonsets.apps", "deployments.apps", "replicasets.apps",
            "statefulsets.apps", "horizontalpodautoscalers.autoscaling", "cronjobs.batch", "jobs.batch",
        }  # fmt: skip
        extensions = set(k("api-resources", "--categories=api-extensions", "-o", "name").split())
        assert "customresourcedefinitions.apiextensions.k8s.io" in extensions
        # autoscaling/v2 is the preferred version
        group = httpx.get(f"{api.url}/apis/autoscaling", headers={"Authorization": f"Bearer {api.token}"}, verify=False)
        assert group.json()["preferredVersion"]["version"] == "v2"


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_get_all(tmp_path: Path, version: str) -> None:
    manifest = tmp_path / "all.yaml"
    manifest.write_text(
        KINDS_YAML
        + """---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: other}
spec: {ports: [{port: 80}], selector: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}], selector: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"""
    )
    with tls_api(MemoryStore(history=1000), tmp_path / "state") as api:
        k = api.kubectl(version)
        _apply(k, version, manifest)
        tables = k("get", "all").split("\n\n")
        firsts = [t.splitlines()[1].split()[0] for t in tables]
        # kubectl follows discovery: the core group first, then the groups by name
        assert firsts == [
            "pod/web",
            "replicationcontroller/rc",
            "service/web",
            "deployment.apps/web",
            "horizontalpodautoscaler.autoscaling/old",
            "job.batch/once",
        ]
        everywhere = k("get", "all", "-A")
        assert everywhere.splitlines()[0].split()[0] == "NAMESPACE"
        assert "other       service/web" in everywhere
        assert "default     replicationcontroller/rc" in everywhere


def test_invalid_objects_are_refused_with_field_paths(tmp_path: Path) -> None:
    bad = {
        "pvc.yaml": (
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
            "spec: {accessModes: [ReadWriteSometimes], resources: {requests: {}}}\n",
            [
                'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", '
                '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
                "spec.resources[storage]: Required value",
            ],
        ),
        "hpa.yaml": (
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
            "spec: {scaleTargetRef: {kind: Deployment, name: web}, minReplicas: 5, maxReplicas: 2}\n",
            ["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"],
        ),
        "sc.yaml": (
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: s}\nreclaimPolicy: Keep\n",
            ["provisioner: Required value", 'reclaimPolicy: Unsupported value: "Keep"'],
        ),
        "apiservice.yaml": (
            "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: metrics}\n"
            "spec: {group: metrics.k8s.io, version: v1beta1, groupPriorityMinimum: 100, versionPriority: 100,"
            " service: {name: m, namespace: kube-system}}\n",
            ['metadata.name: Invalid value: "metrics": must be v1beta1.metrics.k8s.io'],
        ),
    }
    with tls_api(MemoryStore(history=100), tmp_path / "state") as api:
        k = api.kubectl(NEWEST)
        for name, (text, messages) in bad.items():
            path = tmp_path / name
            path.write_text(text)
            p = k.run("apply", "-f", str(path), check=False)
            assert p.returncode != 0, name
            for m in messages:
                assert m in p.stderr, (name, p.stderr)
        assert k.run("get", "pvc,hpa,sc,apiservice", check=False).stdout == ""


MANIFESTS = Path(__file__).resolve().parent.parent / "data" / "manifests"
# Served once the API has them (added beside this work); until then left out of the real manifests.
IDENTITY = {"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_real_install_manifests(tmp_path: Path, version: str) -> None:
    """ingress-nginx's deploy.yaml and metrics-server's components.yaml as released."""
    import yaml_rs

    from kins.api.registry import KINDS

    docs = []
    for name in ("ingress-nginx-baremetal-deploy.yaml", "metrics-server-components.yaml"):
        for doc in yaml_rs.loads((MANIFESTS / name).read_text(), parse_datetime=False):
            if doc and (doc["kind"] not in IDENTITY or (doc["apiVersion"], doc["kind"]) in KINDS):
                docs.append(doc)
    manifest = tmp_path / "released.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    with tls_api(MemoryStore(history=1000), tmp_path / "state") as api:
        k = api.kubectl(version)
        out = k("apply", "-f", str(manifest))
        assert "validatingwebhookconfiguration.admissionregistration.k8s.io/ingress-nginx-admission created" in out
        assert "apiservice.apiregistration.k8s.io/v1beta1.metrics.k8s.io created" in out
        hook = json.loads(k("get", "validatingwebhookconfiguration", "ingress-nginx-admission", "-o", "json"))
        assert hook["webhooks"][0]["clientConfig"]["service"]["namespace"] == "ingress-nginx"
        assert k("get", "apiservice", "--no-headers").split()[:3] == [
            "v1beta1.metrics.k8s.io", "kube-system/metrics-server", "False",
        ]  # fmt: skip


def test_a_local_api_service_is_available(tmp_path: Path) -> None:
    local = tmp_path / "local.yaml"
    local.write_text(
        "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.apps}\n"
        "spec: {group: apps, version: v1, groupPriorityMinimum: 17800, versionPriority: 15}\n"
    )
    with tls_api(MemoryStore(history=100), tmp_path / "state") as api:
        k = api.kubectl(NEWEST)
        k("apply", "-f", str(local))
        assert k("get", "apiservice", "v1.apps", "--no-headers").split()[:3] == ["v1.apps", "Local", "True"]
        cond = json.loads(k("get", "apiservice", "v1.apps", "-o", "jsonpath={.status.conditions[0]}"))
        assert (cond["type"], cond["status"], cond["reason"]) == ("Available", "True", "Local")
