"""OpenAPI schemas of the served kinds, derived from their msgspec types.

The schemas are shaped like the Kubernetes API server's, because kubectl reads them so:
definitions named after the Go package of the type (``io.k8s.api.apps.v1.Deployment``,
``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta``) and joined by ``$ref``; top-level kinds
tagged with ``x-kubernetes-group-version-kind`` (``kubectl explain`` finds a kind's schema by
it); integers with their Go width (``int32``/``int64``); ``IntOrString``, ``Quantity``,
``Time`` and ``MicroTime`` as definitions of their own; and on lists the strategic-merge tags
(``x-kubernetes-patch-merge-key``/``-strategy``) kubectl computes ``apply`` patches from, plus
``x-kubernetes-list-type``/``-list-map-keys``. Those tags, and which integers are 64-bit, are
facts of the Kubernetes types that msgspec's types cannot say: the tables below carry them.

The builder produces OpenAPI v3 schemas (``components.schemas``); ``to_v2`` turns one into
its Swagger 2.0 form (``definitions``). A kind whose class sets ``OPENAPI_SCHEMA`` (a custom
resource's ``openAPIV3Schema``) is published with that schema instead of a derived one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi

from ..api.meta import ObjectMeta
from .openapi_docs import FIELD_DOCS, KIND_DOCS, TYPE_FIELD_DOCS

Schema = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
PATCH = f"{META}.Patch"
STATUS = f"{META}.Status"
DELETE_OPTIONS = f"{META}.DeleteOptions"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

# API groups built into Kubernetes: their definitions live under io.k8s.api.<package>.
BUILTIN_GROUPS: dict[str, str] = {
    "": "core",
    "apps": "apps",
    "autoscaling": "autoscaling",
    "batch": "batch",
    "discovery.k8s.io": "discovery",
    "extensions": "extensions",
    "networking.k8s.io": "networking",
}
# kins.api module -> the package prefix of the types defined there.
MODULE_PREFIX: dict[str, str] = {
    "kins.api.meta": META,
    "kins.api.core": "io.k8s.api.core.v1",
    "kins.api.apps": "io.k8s.api.apps.v1",
    "kins.api.batch": "io.k8s.api.batch.v1",
    "kins.api.cron": "io.k8s.api.batch.v1",
    "kins.api.discovery": "io.k8s.api.discovery.v1",
    "kins.api.networking": "io.k8s.api.networking.v1",
    "kins.api.resources": "io.k8s.api.autoscaling.v1",
    "kins.api.policy": "io.k8s.networking.policy.v1alpha2",
}
# kins types whose Kubernetes name differs (the legacy Ingress is its own Go package upstream).
RENAMED: dict[str, str] = {
    "EndpointSlicePort": "io.k8s.api.discovery.v1.EndpointPort",
    "LegacyBackend": "io.k8s.api.extensions.v1beta1.IngressBackend",
    "LegacyPath": "io.k8s.api.extensions.v1beta1.HTTPIngressPath",
    "LegacyRuleValue": "io.k8s.api.extensions.v1beta1.HTTPIngressRuleValue",
    "LegacyRule": "io.k8s.api.extensions.v1beta1.IngressRule",
    "LegacyIngressSpec": "io.k8s.api.extensions.v1beta1.IngressSpec",
}

# Integer fields that are int64 in the Kubernetes types (the others are int32).
INT64_FIELDS = frozenset(
    {
        "generation", "deletionGracePeriodSeconds", "observedGeneration", "capacity",
        "terminationGracePeriodSeconds", "activeDeadlineSeconds", "runAsUser", "runAsGroup",
        "fsGroup", "supplementalGroups", "seconds", "defaultUser", "user", "expirationSeconds",
        "tolerationSeconds", "startingDeadlineSeconds",
    }
)  # fmt: skip
TIME_FIELDS = frozenset(
    {
        "creationTimestamp", "deletionTimestamp", "lastTransitionTime", "lastProbeTime",
        "lastUpdateTime", "lastHeartbeatTime", "timeAdded", "startTime", "completionTime",
        "startedAt", "finishedAt", "firstTimestamp", "lastTimestamp", "lastScheduleTime",
        "lastSuccessfulTime",
    }
)  # fmt: skip
MICRO_TIME_FIELDS = frozenset({"eventTime", "lastObservedTime"})
# base64 data (``format: byte``): the values of these maps.
BYTE_MAPS = frozenset({("Secret", "data"), ("ConfigMap", "binaryData")})


@dataclass(frozen=True)
class ListTags:
    """A list's patch strategy and merge key, and its list type (map lists: their keys)."""

    strategy: str | None = None
    merge_key: str | None = None
    list_type: str = "atomic"
    map_keys: tuple[str, ...] = ()


def _map(key: str, *keys: str, strategy: str | None = "merge") -> ListTags:
    return ListTags(strategy, key if strategy else None, "map", (key, *keys) if keys else (key,))


_MERGED_SET = ListTags("merge", None, "set")
_SET = ListTags(None, None, "set")
_CONTAINER_LISTS: dict[str, ListTags] = {
    "ports": ListTags("merge", "containerPort", "map", ("containerPort", "protocol")),
    "env": _map("name"),
    "volumeMounts": _map("mountPath"),
    "volumeDevices": _map("devicePath"),
}
_CONDITIONS = _map("type")
# (type, field) -> tags, where they differ from an atomic list without patch strategy.
LISTS: dict[tuple[str, str], ListTags] = {
    ("ObjectMeta", "ownerReferences"): _map("uid"),
    ("ObjectMeta", "finalizers"): _MERGED_SET,
    ("NodeSpec", "podCIDRs"): _MERGED_SET,
    ("NodeStatus", "addresses"): _map("type"),
    ("NodeStatus", "conditions"): _CONDITIONS,
    ("PodSpec", "containers"): _map("name"),
    ("PodSpec", "initContainers"): _map("name"),
    ("PodSpec", "ephemeralContainers"): _map("name"),
    ("PodSpec", "hostAliases"): _map("ip"),
    ("PodSpec", "volumes"): ListTags("merge,retainKeys", "name", "map", ("name",)),
    ("PodSpec", "imagePullSecrets"): _map("name"),
    ("PodSpec", "topologySpreadConstraints"): ListTags(
        "merge", "topologyKey", "map", ("topologyKey", "whenUnsatisfiable")
    ),
    ("PodSpec", "resourceClaims"): ListTags("merge,retainKeys", "name", "map", ("name",)),
    ("PodSpec", "schedulingGates"): _map("name"),
    **{("Container", f): t for f, t in _CONTAINER_LISTS.items()},
    **{("EphemeralContainer", f): t for f, t in _CONTAINER_LISTS.items()},
    ("ResourceRequirements", "claims"): _map("name", strategy=None),
    ("VolumeMount", "bindMountOptions"): _SET,
    ("PodStatus", "conditions"): _CONDITIONS,
    ("PodStatus", "hostIPs"): ListTags("merge", "ip", "atomic"),
    ("PodStatus", "podIPs"): _map("ip"),
    ("ServiceSpec", "ports"): ListTags("merge", "port", "map", ("port", "protocol")),
    ("ServiceStatus", "conditions"): _CONDITIONS,
    ("DeploymentStatus", "conditions"): _CONDITIONS,
    ("ReplicaSetStatus", "conditions"): _CONDITIONS,
    ("StatefulSetStatus", "conditions"): _CONDITIONS,
    ("DaemonSetStatus", "conditions"): _CONDITIONS,
    ("JobStatus", "conditions"): ListTags("merge", "type", "atomic"),
    ("PodFailurePolicyOnExitCodesRequirement", "values"): _SET,
    ("UncountedTerminatedPods", "succeeded"): _SET,
    ("UncountedTerminatedPods", "failed"): _SET,
    ("Endpoint", "addresses"): _SET,
}
# (type, field) -> patch strategy of a struct-valued field.
STRUCT_STRATEGY: dict[tuple[str, str], str] = {("DeploymentSpec", "strategy"): "retainKeys"}
# Maps replaced whole by a patch.
ATOMIC_MAPS = frozenset({("PodSpec", "nodeSelector"), ("ServiceSpec", "selector")})


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def gvk(group_version: str, kind: str) -> dict[str, str]:
    group, _, version = group_version.rpartition("/")
    return {"group": group, "kind": kind, "version": version}


def kind_prefix(group_version: str) -> str:
    """The package of a kind's definition: ``apps/v1`` -> ``io.k8s.api.apps.v1``; a custom
    group is reversed, as the API server names custom resources (``io.k8s.networking.policy``)."""
    group, _, version = group_version.rpartition("/")
    if group in BUILTIN_GROUPS:
        return f"io.k8s.api.{BUILTIN_GROUPS[group]}.{version}"
    return ".".join([*reversed(group.split(".")), version])


def _doc(cls: type) -> str:
    text = cls.__dict__.get("__doc__") or ""
    return " ".join(text.split("\n\n")[0].split()).replace("``", "")


# Definitions every document can refer to, built by hand: they are not kins Structs.
_FIXED: dict[str, Schema] = {
    TIME: {"description": "A timestamp in RFC 3339 form, to the second.", "type": "string", "format": "date-time"},
    MICRO_TIME: {
        "description": "A timestamp in RFC 3339 form, with microseconds.",
        "type": "string",
        "format": "date-time",
    },
    INT_OR_STRING: {
        "description": "An integer or a string (a port number or name, a count or a percentage).",
        "type": "string",
        "format": "int-or-string",
    },
    QUANTITY: {
        "description": "An amount of a resource: a number with an optional suffix (100m, 1.5, 2Gi).",
        "type": "string",
    },
    PATCH: {
        "description": "The body of a PATCH request (JSON, merge, strategic merge or apply patch).",
        "type": "object",
    },
    LIST_META: {
        "description": "Metadata of a list: the version it was read at and where to continue.",
        "type": "object",
        "properties": {
            "resourceVersion": {"type": "string", "description": FIELD_DOCS["resourceVersion"]},
            "continue": {"type": "string", "description": "Where the next page of the list starts."},
            "remainingItemCount": {"type": "integer", "format": "int64"},
        },
    },
    STATUS: {
        "description": "The outcome of a request that does not return an object (a refusal, a deletion).",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "status": {"type": "string", "description": "Success or Failure."},
            "message": {"type": "string"},
            "reason": {"type": "string"},
            "code": {"type": "integer", "format": "int32"},
            "details": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
    DELETE_OPTIONS: {
        "description": "Options of a deletion.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "gracePeriodSeconds": {"type": "integer", "format": "int64"},
            "propagationPolicy": {"type": "string", "description": "Orphan, Background or Foreground."},
            "dryRun": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
        },
    },
}
# The v3 forms of the two union types (v2 has no oneOf: there they are strings with a format).
_V3_ONE_OF: dict[str, list[Schema]] = {
    INT_OR_STRING: [{"type": "integer"}, {"type": "string"}],
    QUANTITY: [{"type": "string"}, {"type": "number"}],
}


class SchemaBuilder:
    """Collects the definitions the kinds given to ``add_kind`` need (OpenAPI v3 form)."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}
        self._names: dict[type, str] = {}

    def add_fixed(self, name: str) -> Schema:
        if name not in self.schemas:
            schema = copy.deepcopy(_FIXED[name])
            if name in _V3_ONE_OF:
                schema.pop("type")
                schema["oneOf"] = copy.deepcopy(_V3_ONE_OF[name])
                if name == INT_OR_STRING:
                    schema["x-kubernetes-int-or-string"] = True
            self.schemas[name] = schema
        return ref(name)

    def add_kind(self, group_version: str, kind: str, cls: type[msgspec.Struct]) -> str:
        """The definition of a top-level kind (and of what it refers to); returns its name."""
        name = f"{kind_prefix(group_version)}.{kind}"
        if name in self.schemas:
            return name
        custom = getattr(cls, "OPENAPI_SCHEMA", None)
        if isinstance(custom, dict):
            schema = self._custom(custom)  # its own description first
            description = schema.get("description") or KIND_DOCS.get(kind) or _doc(cls)
        else:
            schema = self._struct_body(_struct_info(cls), kind_prefix(group_version))
            description = KIND_DOCS.get(kind) or schema.get("description")
        if description:
            schema["description"] = description
        schema["x-kubernetes-group-version-kind"] = [gvk(group_version, kind)]
        self.schemas[name] = schema
        return name

    def add_list(self, group_version: str, kind: str, item: str) -> str:
        """``<Kind>List``: what a list request answers with."""
        name = f"{kind_prefix(group_version)}.{kind}List"
        self.schemas[name] = {
            "description": f"A list of {kind} objects.",
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string", "description": FIELD_DOCS["apiVersion"]},
                "kind": {"type": "string", "description": FIELD_DOCS["kind"]},
                "metadata": {"allOf": [self.add_fixed(LIST_META)], "description": "Standard list metadata."},
                "items": {"type": "array", "items": ref(item), "description": f"The {kind} objects."},
            },
            "x-kubernetes-group-version-kind": [gvk(group_version, f"{kind}List")],
        }
        return name

    def _custom(self, given: dict[str, Any]) -> Schema:
        """A custom resource's own schema, with the fields every object has."""
        schema = copy.deepcopy(given)
        schema.setdefault("type", "object")
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"type": "string", "description": FIELD_DOCS["apiVersion"]}
        props["kind"] = {"type": "string", "description": FIELD_DOCS["kind"]}
        meta = _struct_info(ObjectMeta)
        props["metadata"] = {"allOf": [self._struct_ref(meta, META)], "description": FIELD_DOCS["metadata"]}
        return schema

    def _struct_ref(self, info: mi.StructType, prefix: str) -> Schema:
        cls = info.cls
        name = self._names.get(cls)
        if name is None:
            name = RENAMED.get(cls.__name__) or f"{MODULE_PREFIX.get(cls.__module__, prefix)}.{cls.__name__}"
            n, base = 2, name
            while name in self.schemas or name in self._names.values():
                name, n = f"{base}{n}", n + 1
            self._names[cls] = name
            self.schemas[name] = {}  # reserved: recursive types refer to it while it is built
            self.schemas[name] = self._struct_body(info, MODULE_PREFIX.get(cls.__module__, prefix))
        return ref(name)

    def _struct_body(self, info: mi.StructType, prefix: str) -> Schema:
        cls = info.cls
        props: dict[str, Schema] = {}
        required: list[str] = []
        owner = cls.__name__
        for f in info.fields:
            props[f.encode_name] = self._field(owner, f.encode_name, f.type, prefix)
            if f.required:
                required.append(f.encode_name)
        schema: Schema = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        doc = _doc(cls)
        if doc:
            schema["description"] = doc
        return schema

    def _field(self, owner: str, field: str, t: mi.Type, prefix: str) -> Schema:
        schema = self._type(owner, field, t, prefix)
        desc = TYPE_FIELD_DOCS.get((owner, field)) or FIELD_DOCS.get(field)
        strategy = STRUCT_STRATEGY.get((owner, field))
        if "$ref" in schema and (desc or strategy):
            schema = {"allOf": [schema]}
        if desc:
            schema["description"] = desc
        if strategy:
            schema["x-kubernetes-patch-strategy"] = strategy
        if schema.get("type") == "array":
            tags = LISTS.get((owner, field), ListTags())
            schema["x-kubernetes-list-type"] = tags.list_type
            if tags.map_keys:
                schema["x-kubernetes-list-map-keys"] = list(tags.map_keys)
            if tags.merge_key:
                schema["x-kubernetes-patch-merge-key"] = tags.merge_key
            if tags.strategy:
                schema["x-kubernetes-patch-strategy"] = tags.strategy
        if (owner, field) in ATOMIC_MAPS:
            schema["x-kubernetes-map-type"] = "atomic"
        return schema

    def _type(self, owner: str, field: str, t: mi.Type, prefix: str) -> Schema:
        if isinstance(t, mi.UnionType):
            members = [m for m in t.types if not isinstance(m, mi.NoneType)]
            kinds = {type(m) for m in members}
            if len(members) == 1:
                return self._type(owner, field, members[0], prefix)
            if kinds == {mi.IntType, mi.StrType}:
                return self.add_fixed(INT_OR_STRING)
            if kinds == {mi.IntType, mi.StrType, mi.FloatType}:
                return self.add_fixed(QUANTITY)
            return {"x-kubernetes-preserve-unknown-fields": True}
        if isinstance(t, mi.StrType):
            if field in TIME_FIELDS:
                return self.add_fixed(TIME)
            if field in MICRO_TIME_FIELDS:
                return self.add_fixed(MICRO_TIME)
            return {"type": "string"}
        if isinstance(t, mi.BoolType):
            return {"type": "boolean"}
        if isinstance(t, mi.IntType):
            return {"type": "integer", "format": "int64" if field in INT64_FIELDS else "int32"}
        if isinstance(t, mi.FloatType):
            return {"type": "number", "format": "double"}
        if isinstance(t, mi.LiteralType):
            values = list(t.values)
            return {"type": "integer" if all(isinstance(v, int) for v in values) else "string", "enum": values}
        if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            return {"type": "array", "items": self._type(owner, field, t.item_type, prefix)}
        if isinstance(t, mi.DictType):
            if isinstance(t.value_type, mi.AnyType):
                return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            if (owner, field) in BYTE_MAPS:
                return {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}
            return {"type": "object", "additionalProperties": self._type(owner, "", t.value_type, prefix)}
        if isinstance(t, mi.StructType):
            return self._struct_ref(t, prefix)
        if isinstance(t, mi.AnyType):
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return {}


@cache
def _struct_info(cls: type) -> mi.StructType:
    """msgspec's description of a Struct type, nested types included (walked once per type)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return info


# --- Swagger 2.0 --------------------------------------------------------------------------------

# JSON Schema keywords that Swagger 2.0 (and kubectl's parser of it) does not have.
_V3_ONLY = ("oneOf", "anyOf", "not", "nullable", "x-kubernetes-int-or-string")


def to_v2(schema: Schema, name: str = "") -> Schema:
    """One schema in its Swagger 2.0 form: refs into ``#/definitions``, a single ``$ref``
    instead of an ``allOf`` wrapper, no v3-only keywords (the unions become formatted strings,
    as the Kubernetes v2 document has them)."""
    if name in _FIXED:
        return copy.deepcopy(_FIXED[name])
    return _v2(schema)


def _v2(s: Any) -> Any:
    if not isinstance(s, dict):
        return s
    out: Schema = {}
    for key, value in s.items():
        if key in _V3_ONLY:
            continue
        if key == "$ref":
            out[key] = value.replace("#/components/schemas/", "#/definitions/")
        elif key == "properties":
            out[key] = {k: _v2(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _v2(value)
        elif key == "allOf":
            continue
        else:
            out[key] = value
    all_of = s.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0] and "properties" not in s:
        out["$ref"] = all_of[0]["$ref"].replace("#/components/schemas/", "#/definitions/")
    if "$ref" in out:
        # kubectl's parser refuses a reference with a type or properties beside it.
        return {k: v for k, v in out.items() if k == "$ref" or k == "description" or k.startswith("x-")}
    if out.get("type") == "array" and not isinstance(out.get("items"), dict):
        del out["type"]  # an array without one item schema: kubectl's parser refuses it
    if isinstance(out.get("type"), list):
        del out["type"]
    return out
