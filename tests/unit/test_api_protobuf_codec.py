"""The protobuf codec: every kind the API stores survives JSON -> protobuf -> JSON, Go's JSON rules
for zero values hold, and the wire details (envelope, watch frames, varints) are upstream's."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kins.api.registry import KINDS, STORED
from kins.apiserver import protobuf as pb

S = pb.schema()
INT32_MAX = 2**31 - 1


def message_of(api_version: str, kind: str) -> pb.Message:
    msg = S.message_for(api_version, kind)
    assert msg is not None, f"no message for {kind} in {api_version}"
    return msg


def _json_fields(msg: pb.Message) -> dict[str, pb.Field]:
    """JSON name -> field, with the fields of inlined messages in their parent's object."""
    out: dict[str, pb.Field] = {}
    for f in msg.fields:
        if f.flags & pb.INLINE and f.message is not None:
            out.update(_json_fields(f.message))
        else:
            out[f.json] = f
    return out


# --- documents shaped by kins' types, typed by upstream's messages -----------------------------
#
# Scalars are never at their zero value here (Go's JSON drops those from omitempty value fields,
# tested on its own below), so every generated document must come back unchanged.

_TIMES = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda t: t.replace(tzinfo=UTC)
)
_TEXT = st.text(min_size=1, max_size=8)
_KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz./-", min_size=1, max_size=6)


def _scalar(kind: str, pointer: bool) -> st.SearchStrategy[Any]:
    if kind == "string":
        return _TEXT
    if kind == "bytes":
        return st.binary(min_size=1, max_size=8).map(lambda b: base64.b64encode(b).decode())
    if kind == "bool":
        return st.booleans() if pointer else st.just(True)
    if kind == "int32":
        return st.integers(0 if pointer else 1, INT32_MAX) | (st.integers(-(2**31), -1) if pointer else st.nothing())
    if kind == "int64":
        return st.integers(0 if pointer else 1, 2**62)
    raise AssertionError(f"no strategy for {kind}")


def _special(special: str) -> st.SearchStrategy[Any] | None:
    if special == "time":
        return _TIMES.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if special == "microtime":
        return _TIMES.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if special == "quantity":
        return st.sampled_from(["1", "100m", "2Gi", "0.5", "1e3", "512Mi"])
    if special == "intorstring":
        return st.integers(-(2**31), INT32_MAX) | _TEXT
    if special == "raw_json":
        return st.dictionaries(_KEYS, st.integers() | _TEXT, min_size=1, max_size=2)
    return None


def _strip_none(t: mi.Type) -> mi.Type:
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(rest) == 1:
            return rest[0]
    return t


def _value(
    t: mi.Type, kind: str, msg: pb.Message | None, pointer: bool, depth: int, full: bool
) -> st.SearchStrategy[Any] | None:
    t = _strip_none(t)
    if msg is not None and msg.special is not None:
        return _special(msg.special) if msg.special != "list" else st.lists(_TEXT, min_size=1, max_size=3)
    if isinstance(t, mi.LiteralType):
        return st.sampled_from([v for v in t.values if v not in ("", 0)])
    if msg is not None:
        if isinstance(t, mi.StructType):
            return _struct(t, msg, depth + 1, full) if depth < 6 else None
        return None  # kins holds it loosely (Any, dict): nothing to derive a document from
    if isinstance(t, mi.AnyType):
        return None
    return _scalar(kind, pointer)


def _struct(t: mi.StructType, msg: pb.Message, depth: int = 0, full: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """``full``: every field present (lists of one), so that each field is exercised."""
    fields = _json_fields(msg)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for info in t.fields:
        f = fields.get(info.encode_name)
        if f is None or info.encode_name in ("apiVersion", "kind"):
            continue  # a field upstream does not have travels only in JSON
        pointer = bool(f.flags & pb.POINTER)
        ftype = _strip_none(info.type)
        strategy: st.SearchStrategy[Any] | None
        if f.kind == "map":
            if not isinstance(ftype, mi.DictType):
                continue
            inner = _value(ftype.value_type, f.value or "string", f.message, True, depth, full)
            strategy = None if inner is None else st.dictionaries(_KEYS, inner, min_size=1, max_size=1 if full else 3)
        elif f.flags & pb.REPEATED and not (f.message is not None and f.message.special == "list"):
            if not isinstance(ftype, mi.ListType):
                continue
            inner = _value(ftype.item_type, f.kind, f.message, True, depth, full)
            strategy = None if inner is None else st.lists(inner, min_size=1, max_size=1 if full else 2)
        else:
            strategy = _value(ftype, f.kind, f.message, pointer, depth, full)
        if strategy is None:
            continue
        (required if info.required or full else optional)[info.encode_name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def document(api_version: str, kind: str, full: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    cls = KINDS[(api_version, kind)]
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return _struct(info, message_of(api_version, kind), 0, full).map(
        lambda d: {"kind": kind, "apiVersion": api_version, **d}
    )


# Every kind the API serves (legacy Ingress versions included) that upstream has a message for.
WITH_MESSAGES = sorted((gv, kind) for (gv, kind) in KINDS if S.message_for(gv, kind) is not None)


def test_every_stored_kind_but_the_gateway_policy_has_a_message() -> None:
    without = {kind for (gv, kind) in KINDS if S.message_for(gv, kind) is None}
    # ClusterNetworkPolicy is a custom resource upstream (sigs.k8s.io/network-policy-api): JSON only.
    assert without == {"ClusterNetworkPolicy"}


@pytest.mark.parametrize(("api_version", "kind"), WITH_MESSAGES)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_round_trip(api_version: str, kind: str, data: st.DataObject) -> None:
    doc = data.draw(document(api_version, kind))
    wire = pb.encode_object(doc)
    assert wire.startswith(pb.MAGIC)
    assert pb.decode_object(wire) == doc


@pytest.mark.parametrize(("api_version", "kind"), WITH_MESSAGES)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_round_trip_with_every_field(api_version: str, kind: str, data: st.DataObject) -> None:
    doc = data.draw(document(api_version, kind, full=True))
    assert pb.decode_object(pb.encode_object(doc)) == doc


@pytest.mark.parametrize(("api_version", "kind"), WITH_MESSAGES)
def test_stored_objects_round_trip(api_version: str, kind: str) -> None:
    """Real objects as the API answers with them (defaults written out) survive unchanged,
    apart from what Go's JSON drops too."""
    from kins.apiserver.encode import encode

    cls = KINDS[(api_version, kind)]
    obj = msgspec.convert(
        {"metadata": {"name": "x", "namespace": "default", "creationTimestamp": "2026-01-02T03:04:05Z"}}, cls
    )
    doc = encode(obj)
    back = pb.decode_object(pb.encode_object(doc))
    assert back == doc


# --- Go's JSON rules for zero values ------------------------------------------------------------


def test_a_pointer_at_zero_is_kept_a_value_at_zero_is_dropped_when_omitempty() -> None:
    doc = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 0,  # *int32: zero replicas is a choice
            "paused": False,  # bool, omitempty
            "template": {
                "spec": {
                    "containers": [
                        {"name": "c", "ports": [{"containerPort": 80, "hostPort": 0}], "stdin": False},
                    ]
                }
            },
        },
    }
    back = pb.decode_object(pb.encode_object(doc))
    assert back["spec"]["replicas"] == 0
    assert "paused" not in back["spec"]
    assert back["spec"]["template"]["spec"]["containers"] == [{"name": "c", "ports": [{"containerPort": 80}]}]


def test_values_without_omitempty_stay_at_zero() -> None:
    status = {"containerStatuses": [{"name": "c", "ready": False, "restartCount": 0, "image": "", "imageID": ""}]}
    doc = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "status": status}
    assert pb.decode_object(pb.encode_object(doc))["status"] == status


def test_value_fields_go_writes_at_zero_decode_as_go_json() -> None:
    """What Go sends for ``kubectl create namespace t1`` (captured from kubectl 1.33): every
    string of ObjectMeta written empty, creationTimestamp as an empty Time."""
    body = (
        b'k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1a\n\x12\n\x02t1\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
        b'\x12\x00\x1a\x02\n\x00\x1a\x00"\x00'
    )
    assert pb.decode_object(body) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "t1"},
        "spec": {},
        "status": {},
    }


# --- types with a JSON form of their own -------------------------------------------------------


def test_times() -> None:
    raw = pb.encode_message(f"{pb.META}.Time", "2024-02-03T04:05:06Z")
    assert raw == b"\x08" + pb._varint(int(datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC).timestamp()))
    assert pb.decode_message(f"{pb.META}.Time", raw) == "2024-02-03T04:05:06Z"
    micro = "2024-02-03T04:05:06.123456Z"
    assert pb.decode_message(f"{pb.META}.MicroTime", pb.encode_message(f"{pb.META}.MicroTime", micro)) == micro
    # an offset is a moment like any other; JSON answers in UTC
    raw = pb.encode_message(f"{pb.META}.Time", "2024-02-03T06:05:06+02:00")
    assert pb.decode_message(f"{pb.META}.Time", raw) == "2024-02-03T04:05:06Z"
    with pytest.raises(pb.ProtobufError, match="RFC 3339"):
        pb.encode_message(f"{pb.META}.Time", "yesterday")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0s", 0),
        ("1h0m0s", 3600 * 10**9),
        ("1h2m3.5s", 3723_500_000_000),
        ("1.5ms", 1_500_000),
        ("-2m0s", -120 * 10**9),
    ],
)
def test_durations_as_go_writes_them(text: str, ns: int) -> None:
    raw = pb.encode_message(f"{pb.META}.Duration", text)
    assert raw == b"\x08" + pb._varint(ns)
    assert pb.decode_message(f"{pb.META}.Duration", raw) == text


def test_int_or_string_and_quantity() -> None:
    ios = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
    assert pb.encode_message(ios, 8080) == b"\x08\x00\x10\x90\x3f"
    assert pb.decode_message(ios, pb.encode_message(ios, "http")) == "http"
    assert pb.decode_message(ios, pb.encode_message(ios, -1)) == -1
    q = "k8s.io.apimachinery.pkg.api.resource.Quantity"
    assert pb.encode_message(q, "100m") == b"\x0a\x04100m"


def test_secret_data_is_bytes_on_the_wire() -> None:
    doc = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "s"},
        "data": {"k": base64.b64encode(b"\x00\xff").decode()},
    }
    wire = pb.encode_object(doc)
    assert b"\x0a\x01k\x12\x02\x00\xff" in wire  # the map entry holds the raw bytes
    assert pb.decode_object(wire) == doc


def test_inline_volume_source() -> None:
    doc = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "p"},
        "spec": {"volumes": [{"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}], "containers": []},
    }
    back = pb.decode_object(pb.encode_object(doc))
    assert back["spec"]["volumes"] == doc["spec"]["volumes"]


def test_managed_fields_carry_raw_json() -> None:
    entry = {"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}}}}
    doc = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "managedFields": [entry]}}
    assert pb.decode_object(pb.encode_object(doc)) == doc


def test_negative_int32_is_ten_bytes_as_go_writes_it_and_packed_lists_decode() -> None:
    f = pb.Field(1, "x", "int32", 0)
    assert pb._encode_scalar(f, "int32", -1) == b"\x08" + b"\xff" * 9 + b"\x01"
    # Go writes repeated scalars unpacked; a packed list (wire type 2) decodes all the same.
    msg = pb.Message("t", [pb.Field(1, "xs", "int32", pb.REPEATED)], None)
    packed = b"\x0a\x03\x01\x02\x03"
    assert pb._decode_message(msg, packed, 0, len(packed)) == {"xs": [1, 2, 3]}


# --- envelope, lists, Status, watch frames --------------------------------------------------------


def test_envelope_is_magic_then_runtime_unknown() -> None:
    wire = pb.encode_object({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}})
    assert wire[:4] == b"k8s\x00"
    api_version, kind, raw = pb.unwrap(wire)
    assert (api_version, kind) == ("v1", "ConfigMap")
    assert raw == b"\x0a\x03\x0a\x01c"


def test_lists_and_status_use_their_messages() -> None:
    lst = {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "7", "continue": "7:2"},
        "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}],
    }
    assert pb.decode_object(pb.encode_object(lst)) == lst
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "x" not found',
        "reason": "NotFound",
        "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueRequired", "field": "spec"}]},
        "code": 404,
    }
    assert pb.decode_object(pb.encode_object(status)) == status


def test_watch_frame_is_length_then_watch_event_holding_the_enveloped_object() -> None:
    obj = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "resourceVersion": "3"}}
    frame = pb.encode_watch_event("ADDED", obj)
    (size,) = struct.unpack(">I", frame[:4])
    body = frame[4:]
    assert size == len(body)
    assert body.startswith(b"\x0a\x05ADDED\x12")  # WatchEvent.type, then WatchEvent.object
    raw_ext = pb._fields(S.messages[pb.WATCH_EVENT], body, 0, len(body))[2]
    assert raw_ext == obj  # RawExtension.raw holds k8s\0 + Unknown, decoded back to the object
    assert pb.decode_watch_events(frame + pb.encode_watch_event("DELETED", obj)) == [
        {"type": "ADDED", "object": obj},
        {"type": "DELETED", "object": obj},
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"k8s\x00",
        b"k8s\x00\x0a\x05\x0a\x02v1",  # truncated type meta
        b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x05\x12\x03\x0a\x01",  # truncated map entry
        b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x07Unknown\x12\x00",
    ],
)
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(pb.ProtobufError):
        pb.decode_object(body)


def test_schema_names_its_sources() -> None:
    repos = {s["repository"] for s in S.sources}
    assert {"github.com/kubernetes/api", "github.com/kubernetes/apimachinery"} <= repos
    assert all(len(s["commit"]) == 40 for s in S.sources)
    # the groups the API serves, and the ones kubectl's generators send
    for gv in ("v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
               "scheduling.k8s.io/v1", "storage.k8s.io/v1", "coordination.k8s.io/v1", "autoscaling/v2",
               "admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "discovery.k8s.io/v1"):  # fmt: skip
        assert gv in S.packages, gv


# --- kinds of the groups kubectl's generators and controllers use, by their upstream shape ---------

UPSTREAM_DOCS: list[dict[str, Any]] = [
    {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}},
    },
    {
        "kind": "StorageClass",
        "apiVersion": "storage.k8s.io/v1",
        "metadata": {"name": "standard"},
        "provisioner": "kins.io/hostpath",
        "parameters": {"path": "/var/lib"},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    },
    {
        "kind": "ValidatingWebhookConfiguration",
        "apiVersion": "admissionregistration.k8s.io/v1",
        "metadata": {"name": "v"},
        "webhooks": [
            {
                "name": "v.kins.io",
                "clientConfig": {"service": {"namespace": "default", "name": "hook", "path": "/v", "port": 443}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
                "matchConditions": [{"name": "m", "expression": "true"}],
            }
        ],
    },
    {
        "kind": "PodDisruptionBudget",
        "apiVersion": "policy/v1",
        "metadata": {"name": "pdb", "namespace": "default"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "x"}}},
        "status": {"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2},
    },
    {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            },
        },
        "status": {"currentReplicas": 1, "desiredReplicas": 1, "lastScaleTime": "2026-01-01T00:00:00Z"},
    },
    {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 50,
        },
        "status": {"currentReplicas": 0, "desiredReplicas": 0},
    },
    {
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": "node1", "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": "node1",
            "leaseDurationSeconds": 40,
            "renewTime": "2026-12-07T10:00:00.123456Z",
            "leaseTransitions": 0,
        },
    },
    {
        "kind": "PriorityClass",
        "apiVersion": "scheduling.k8s.io/v1",
        "metadata": {"name": "high"},
        "value": 1000,
        "globalDefault": True,
        "description": "high",
        "preemptionPolicy": "Never",
    },
    {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {"name": "sa", "namespace": "default"},
        "automountServiceAccountToken": False,
    },
    {
        "kind": "ClusterRole",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "view"},
        "rules": [
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        ],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]},
    },
    {
        "kind": "RoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "rb", "namespace": "default"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "sa", "namespace": "default"},
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "u"},
        ],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
    },
    {
        "kind": "ResourceQuota",
        "apiVersion": "v1",
        "metadata": {"name": "q", "namespace": "default"},
        "spec": {"hard": {"pods": "10", "requests.cpu": "2"}},
        "status": {"hard": {"pods": "10"}, "used": {"pods": "0"}},
    },
    {
        "kind": "CustomResourceDefinition",
        "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": {"name": "widgets.kins.io"},
        "spec": {
            "group": "kins.io",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1, "default": 3},
                                        "mode": {"type": "string", "enum": ["a", "b"]},
                                        "tags": {"type": "array", "items": {"type": "string"}},
                                        "extra": {"type": "object", "additionalProperties": {"type": "string"}},
                                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                        "closed": {"type": "object", "additionalProperties": False},
                                    },
                                }
                            },
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"},
                    },
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                }
            ],
        },
    },
    {
        "kind": "APIService",
        "apiVersion": "apiregistration.k8s.io/v1",
        "metadata": {"name": "v1.kins.io"},
        "spec": {
            "group": "kins.io",
            "version": "v1",
            "groupPriorityMinimum": 100,
            "versionPriority": 10,
            "service": {"namespace": "kins", "name": "api", "port": 443},
        },
    },
]


@pytest.mark.parametrize("doc", UPSTREAM_DOCS, ids=[f"{d['apiVersion']}/{d['kind']}" for d in UPSTREAM_DOCS])
def test_upstream_shaped_documents_round_trip(doc: dict[str, Any]) -> None:
    """Kinds found by (apiVersion, kind) alone, whether or not the API stores them yet."""
    assert pb.decode_object(pb.encode_object(doc)) == doc


def test_a_converged_cluster_round_trips_object_by_object() -> None:
    """The article's cluster, converged offline by the controllers (Nodes, Pods with status,
    Services, Endpoints, EndpointSlices, ReplicaSets, Events ...): every object the API would
    answer with survives protobuf unchanged."""
    from pathlib import Path

    from kins.api.config import default_cluster
    from kins.api.load import load_paths
    from kins.apiserver.encode import encode
    from kins.control.offline import build_offline_state

    article = Path(__file__).resolve().parents[2] / "examples" / "article"
    store = build_offline_state(default_cluster(), load_paths([str(article)]))
    kinds = set()
    for kind in sorted(STORED):
        items, _ = store.list(kind)
        for obj in items:
            doc = encode(obj)
            if S.message_for(doc["apiVersion"], doc["kind"]) is None:
                continue
            assert pb.decode_object(pb.encode_object(doc)) == doc, f"{kind} {obj.metadata.name}"
            kinds.add(kind)
    assert {"Pod", "Service", "Endpoints", "EndpointSlice", "Deployment", "ReplicaSet", "Node", "Namespace"} <= kinds
