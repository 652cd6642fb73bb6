"""Validation of the kinds kins stores without acting on them, offline: the field paths and the
API server's words for what kins (or a reader of the objects) would misread."""

from __future__ import annotations

import pytest

from kins.api.load import load_text
from kins.api.validation import validate

CASES = [
    (
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: p}\n"
        "spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce]}",
        ["spec: Required value: must specify a volume type"],
    ),
    (
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: p}\n"
        "spec: {capacity: {storage: 0}, accessModes: [ReadWriteOnce],"
        " hostPath: {path: /a}, nfs: {server: s, path: /b}, persistentVolumeReclaimPolicy: Keep}",
        [
            "spec.capacity[storage]: Invalid value: 0: must be greater than zero",
            "spec.nfs: Forbidden: may not specify more than 1 volume type",
            'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": '
            'supported values: "Delete", "Recycle", "Retain"',
        ],
    ),
    (
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
        "spec: {accessModes: [ReadWriteOncePod, ReadWriteOnce], resources: {requests: {storage: lots}},"
        " volumeMode: Raw}",
        [
            "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
            'spec.resources[storage]: Invalid value: "lots": quantities must match the regular expression '
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            'spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"',
        ],
    ),
    (
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: b}\n"
        "spec: {minAvailable: 1, maxUnavailable: half}",
        [
            'spec: Invalid value: {"maxUnavailable":"half","minAvailable":1}: '
            "minAvailable and maxUnavailable cannot be both set",
            'spec.maxUnavailable: Invalid value: "half": '
            "a valid percent string must be a numeric string followed by an ending '%'",
        ],
    ),
    (
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: top}\n"
        "value: 2000000000\npreemptionPolicy: Always",
        [
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
            'preemptionPolicy: Unsupported value: "Always": supported values: "Never", "PreemptLowerPriority"',
        ],
    ),
    (
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: v}\n"
        "webhooks: [{name: a.example.com, clientConfig: {url: 'https://x'}}, {name: a.example.com, sideEffects: Some,"
        " admissionReviewVersions: [v1], clientConfig: {}}]",
        [
            "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
            "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            'webhooks[1].name: Duplicate value: "a.example.com"',
            'webhooks[1].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun"',
            "webhooks[1].clientConfig: Required value: exactly one of url or service is required",
        ],
    ),
    (
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: s}\n"
        "provisioner: p\nvolumeBindingMode: Later",
        ['volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"'],
    ),
    (
        "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.metrics.example.com}\n"
        "spec: {group: metrics.example.com, version: v1, service: {name: m, namespace: x}}",
        [
            "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
            "spec.versionPriority: Invalid value: 0: must be positive and less than 1000",
        ],
    ),
    (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: things.local}\n"
        "spec:\n  group: local\n  scope: Global\n  names: {plural: things, kind: Thing, shortNames: [T]}\n"
        "  versions:\n  - {name: V1, served: false, storage: false, schema: {openAPIV3Schema: {type: string}}}\n"
        "  - {name: V1, served: false, storage: false}",
        [
            'spec.group: Invalid value: "local": should be a domain with at least one dot',
            'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
            'spec.names.shortNames[0]: Invalid value: "T": a DNS-1035 label must consist of lower case',
            'spec.versions[0].name: Invalid value: "V1": a DNS-1035 label must consist of lower case',
            'spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "string": must be object at the root',
            'spec.versions[1].name: Invalid value: "V1": a DNS-1035 label must consist of lower case',
            "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required",
            'spec.versions: Invalid value: ["V1","V1"]: must have exactly one version marked as storage version',
            'spec.versions: Invalid value: ["V1","V1"]: must have at least one version marked as served',
        ],
    ),
]


@pytest.mark.parametrize(("manifest", "messages"), CASES, ids=[c[0].split("kind: ")[1].split("\n")[0] for c in CASES])
def test_refusals(manifest: str, messages: list[str]) -> None:
    (obj,) = load_text(manifest)
    got = [f"{e.field}: {e.message}" for e in validate(obj)]
    for m in messages:
        assert any(g.startswith(m) for g in got), (m, got)
    assert len(got) == len(messages), got


def test_what_install_manifests_carry_is_valid() -> None:
    from test_api_kinds import KINDS_YAML

    assert [e for o in load_text(KINDS_YAML) for e in validate(o)] == []
