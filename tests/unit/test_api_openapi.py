"""The OpenAPI documents over HTTP: every served kind has a schema (v3 and v2), the schemas
accept what the API itself answers with, the v2 protobuf carries the same document, content
negotiation and caching, and kinds added at runtime (custom schemas through ``OPENAPI_SCHEMA``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import msgspec
import msgspec.inspect as mi
import pytest
import yaml
from test_api import Served, serving

from kins.api import resources as api_resources
from kins.api.meta import Object
from kins.api.patch import MERGE_KEYS, MERGED_SCALAR_LISTS
from kins.api.resources import ALL, Resource
from kins.apiserver import openapi
from kins.apiserver.openapi_schema import INT_OR_STRING, QUANTITY
from kins.apiserver.response import encode_obj
from kins.store.memory import MemoryStore

EXAMPLES = Path(__file__).with_name("openapi_examples.yaml")
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@pytest.fixture
def api() -> Iterator[Served]:
    with serving(MemoryStore(history=1000)) as s:
        yield s


def http(api: Served) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, timeout=30)


def examples() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(EXAMPLES.read_text()) if d]


# --- a checker of JSON values against the published schemas -----------------------------------


class SchemaChecker:
    """Walks a value along an OpenAPI schema (v3 ``components.schemas`` or v2 ``definitions``),
    collecting every mismatch with its path: types, formats, required and unknown fields."""

    def __init__(self, definitions: dict[str, Any], prefix: str) -> None:
        self.definitions = definitions
        self.prefix = prefix
        self.errors: list[str] = []

    def resolve(self, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = ""
        while True:
            if "$ref" in schema:
                ref = schema["$ref"]
                assert ref.startswith(self.prefix), ref
                name = ref[len(self.prefix) :]
                assert name in self.definitions, f"dangling reference {ref}"
                schema = self.definitions[name]
            elif len(schema.get("allOf", ())) == 1 and "properties" not in schema:
                schema = schema["allOf"][0]
            else:
                return name, schema

    def check(self, schema: dict[str, Any], value: Any, path: str = "") -> None:
        name, schema = self.resolve(schema)
        if name in (INT_OR_STRING, QUANTITY):
            kinds: tuple[type, ...] = (int, str) if name == INT_OR_STRING else (int, float, str)
            if not isinstance(value, kinds) or isinstance(value, bool):
                self.errors.append(f"{path}: {value!r} is not a {name.rsplit('.', 1)[1]}")
            return
        if "oneOf" in schema:
            if not any(self._fits(option, value) for option in schema["oneOf"]):
                self.errors.append(f"{path}: {value!r} fits none of {schema['oneOf']}")
            return
        kind = schema.get("type")
        if kind is None:
            assert schema.get("x-kubernetes-preserve-unknown-fields") or not schema.get("properties"), path
            return
        if kind == "object":
            self._object(schema, value, path)
        elif kind == "array":
            if not isinstance(value, list):
                self.errors.append(f"{path}: {value!r} is not an array")
                return
            for i, item in enumerate(value):
                self.check(schema["items"], item, f"{path}[{i}]")
        else:
            self._scalar(schema, value, path)

    def _fits(self, schema: dict[str, Any], value: Any) -> bool:
        inner = SchemaChecker(self.definitions, self.prefix)
        inner.check(schema, value)
        return not inner.errors

    def _object(self, schema: dict[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.errors.append(f"{path}: {value!r} is not an object")
            return
        for key in schema.get("required", ()):
            if key not in value:
                self.errors.append(f"{path}: required field {key!r} missing")
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if props is not None and key in props:
                self.check(props[key], item, sub)
            elif isinstance(extra, dict):
                self.check(extra, item, sub)
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                self.errors.append(f"{sub}: unknown field")

    def _scalar(self, schema: dict[str, Any], value: Any, path: str) -> None:
        kind, fmt = schema["type"], schema.get("format")
        ok = {
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
        }.get(kind, False)
        if not ok:
            self.errors.append(f"{path}: {value!r} is not of type {kind}")
            return
        if fmt == "int32" and not -(2**31) <= value < 2**31:
            self.errors.append(f"{path}: {value} out of int32 range")
        elif fmt == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                self.errors.append(f"{path}: {value!r} is not a date-time")
        elif fmt == "byte":
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                self.errors.append(f"{path}: {value!r} is not base64")
        if "enum" in schema and value not in schema["enum"]:
            self.errors.append(f"{path}: {value!r} not one of {schema['enum']}")


def kind_schema(definitions: dict[str, Any], group_version: str, kind: str) -> dict[str, Any]:
    group, _, version = group_version.rpartition("/")
    want = {"group": group, "version": version, "kind": kind}
    found = [s for s in definitions.values() if want in s.get("x-kubernetes-group-version-kind", [])]
    assert len(found) == 1, f"{group_version} {kind}: {len(found)} schemas"
    return found[0]


def v3_documents(h: httpx.Client) -> dict[str, dict[str, Any]]:
    index = h.get("/openapi/v3").json()["paths"]
    return {key: h.get(entry["serverRelativeURL"]).json() for key, entry in index.items()}


def check_object(docs: dict[str, dict[str, Any]], v2: dict[str, Any], gv: str, obj: dict[str, Any]) -> list[str]:
    """Mismatches of ``obj`` against its kind's schema, in the v3 document and in v2."""
    errors = []
    v3_defs = docs[openapi.gv_path(gv)]["components"]["schemas"]
    for defs, prefix in ((v3_defs, "#/components/schemas/"), (v2["definitions"], "#/definitions/")):
        checker = SchemaChecker(defs, prefix)
        checker.check(kind_schema(defs, gv, obj["kind"]), obj)
        errors += [f"{obj['kind']} ({prefix}): {e}" for e in checker.errors]
    return errors


# --- tests --------------------------------------------------------------------------------------


def test_every_served_kind_has_a_schema_in_v3_and_v2(api: Served) -> None:
    with http(api) as h:
        docs = v3_documents(h)
        v2 = h.get("/openapi/v2", headers={"Accept": "application/json"}).json()
    assert v2["swagger"] == "2.0"
    for res in ALL:
        doc = docs[openapi.gv_path(res.group_version)]
        for defs in (doc["components"]["schemas"], v2["definitions"]):
            schema = kind_schema(defs, res.group_version, res.kind)
            fields = set(schema["properties"])
            assert {"apiVersion", "kind", "metadata"} <= fields
            assert fields == {f.encode_name for f in struct_fields(res.cls)}
        # the v3 document lists the object path, its verbs and the query parameter kubectl asks about
        item = doc["paths"][openapi_object_path(res)]
        assert {"get", "put", "patch", "delete"} <= set(item)
        assert "fieldValidation" in [p["name"] for p in item["patch"]["parameters"]]
        assert item["patch"]["x-kubernetes-group-version-kind"] == {
            "group": res.group,
            "kind": res.kind,
            "version": res.version,
        }
    # every reference resolves, in every document
    for name, doc in docs.items():
        assert_refs_resolve(doc, doc["components"]["schemas"], "#/components/schemas/", name)
    assert_refs_resolve(v2, v2["definitions"], "#/definitions/", "v2")


def struct_fields(cls: type) -> tuple[mi.Field, ...]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return info.fields


def openapi_object_path(res: Resource) -> str:
    return res.path("{namespace}" if res.namespaced else None, "{name}")


def assert_refs_resolve(node: Any, definitions: dict[str, Any], prefix: str, where: str) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith(prefix) and ref[len(prefix) :] in definitions, f"{where}: {ref}"
            if prefix == "#/definitions/":
                # kubectl's v2 parser refuses a reference with a type or properties beside it
                assert not {"type", "properties", "items"} & set(node), f"{where}: {node}"
        for value in node.values():
            assert_refs_resolve(value, definitions, prefix, where)
    elif isinstance(node, list):
        for value in node:
            assert_refs_resolve(value, definitions, prefix, where)


def test_schemas_have_the_kubernetes_shape(api: Served) -> None:
    with http(api) as h:
        core = h.get("/openapi/v3/api/v1").json()["components"]["schemas"]
        apps = h.get("/openapi/v3/apis/apps/v1").json()["components"]["schemas"]
        v2 = h.get("/openapi/v2", headers={"Accept": "application/json"}).json()["definitions"]
    spec = apps["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
    assert spec["replicas"] == {"type": "integer", "format": "int32", "description": "The number of desired pods."}
    assert spec["template"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"}]
    assert spec["strategy"]["x-kubernetes-patch-strategy"] == "retainKeys"
    meta = core["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["creationTimestamp"]["allOf"][0]["$ref"].endswith("meta.v1.Time")
    assert meta["generation"]["format"] == "int64"
    assert core["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] == v2["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]
    assert core["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time"
    pod_spec = core["io.k8s.api.core.v1.PodSpec"]
    containers = pod_spec["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name" and containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map" and containers["x-kubernetes-list-map-keys"] == ["name"]
    volumes = pod_spec["properties"]["volumes"]
    assert volumes["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    container = core["io.k8s.api.core.v1.Container"]
    assert container["required"] == ["name"]
    assert container["properties"]["ports"]["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert container["properties"]["volumeMounts"]["x-kubernetes-patch-merge-key"] == "mountPath"
    assert core["io.k8s.api.core.v1.PodSecurityContext"]["properties"]["runAsUser"]["format"] == "int64"
    secret = core["io.k8s.api.core.v1.Secret"]
    assert secret["properties"]["data"]["additionalProperties"] == {"type": "string", "format": "byte"}
    assert secret["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Secret", "version": "v1"}]
    # the unions: oneOf in v3 (and an int-or-string mark), a formatted string in v2
    ios = core[INT_OR_STRING]
    assert ios["oneOf"] == [{"type": "integer"}, {"type": "string"}] and ios["x-kubernetes-int-or-string"] is True
    assert v2[INT_OR_STRING]["type"] == "string" and v2[INT_OR_STRING]["format"] == "int-or-string"
    assert core[QUANTITY]["oneOf"] == [{"type": "string"}, {"type": "number"}] and v2[QUANTITY]["type"] == "string"
    assert core["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"] == {
        "allOf": [{"$ref": f"#/components/schemas/{INT_OR_STRING}"}],
        "description": "The port (number or name) on the selected pods that traffic is sent to.",
    }
    assert v2["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]["$ref"] == f"#/definitions/{INT_OR_STRING}"


def test_merge_keys_agree_with_the_servers_patch(api: Served) -> None:
    """The merge keys kubectl computes patches from are the ones the server merges by."""
    with http(api) as h:
        docs = v3_documents(h)
    seen = 0
    for doc in docs.values():
        for schema in doc["components"]["schemas"].values():
            for field, prop in schema.get("properties", {}).items():
                key = prop.get("x-kubernetes-patch-merge-key")
                if key is not None:
                    assert key in MERGE_KEYS.get(field, ()), (field, key)
                    seen += 1
                elif prop.get("x-kubernetes-patch-strategy") == "merge":
                    assert field in MERGED_SCALAR_LISTS, field
    assert seen > 20


def test_the_schemas_accept_what_the_api_answers(api: Served) -> None:
    by_gvk = {(r.group_version, r.kind): r for r in ALL}
    manifests = examples()
    assert {(m["apiVersion"], m["kind"]) for m in manifests} == set(by_gvk), "an example of every served kind"
    errors: list[str] = []
    with http(api) as h:
        docs = v3_documents(h)
        v2 = h.get("/openapi/v2", headers={"Accept": "application/json"}).json()
        for manifest in manifests:
            res = by_gvk[(manifest["apiVersion"], manifest["kind"])]
            ns = manifest["metadata"].get("namespace")
            r = h.post(res.path(ns) + "?fieldValidation=Strict", json=manifest)
            assert r.status_code == 201, r.text
            # the manifest itself, and the object as read back with every default filled in
            errors += check_object(docs, v2, res.group_version, manifest)
            got = h.get(res.path(ns, manifest["metadata"]["name"])).json()
            assert got["kind"] == res.kind and got["apiVersion"] == res.group_version
            errors += check_object(docs, v2, res.group_version, got)
        assert errors == []
        # and the checker is not blind: a typo, a wrong type, a bad port and a bad time are seen
        bad = examples()[2]
        container = bad["spec"]["containers"][0]
        container.update(imagePullPolicyy="Always", tty="yes")
        container["ports"][0]["containerPort"] = "http"
        bad["metadata"]["creationTimestamp"] = "yesterday"
        found = check_object(docs, v2, "v1", bad)
    assert len(found) == 8, found


def maximal(t: mi.Type, field: str = "", depth: int = 0) -> Any:
    """A value of type ``t`` with every optional field set (what a schema must describe)."""
    if isinstance(t, mi.UnionType):
        members = [m for m in t.types if not isinstance(m, mi.NoneType)]
        if {type(m) for m in members} >= {mi.IntType, mi.StrType}:
            return "25%" if depth % 2 else 3
        return maximal(members[0], field, depth)
    if isinstance(t, mi.StructType):
        assert depth < 40, "a recursive type"
        return {f.encode_name: maximal(f.type, f.encode_name, depth + 1) for f in t.fields}
    if isinstance(t, mi.ListType):
        return [maximal(t.item_type, field, depth + 1)]
    if isinstance(t, mi.DictType):
        return {"key": maximal(t.value_type, field, depth + 1)}
    if isinstance(t, mi.StrType):
        if field.endswith(("Timestamp", "Time", "At", "timeAdded")):
            return "2026-01-02T03:04:05Z"
        return "x"
    if isinstance(t, mi.BoolType):
        return True
    if isinstance(t, mi.IntType):
        return 7
    if isinstance(t, mi.FloatType):
        return 1.5
    return {"any": ["thing"]}


def test_the_schemas_describe_every_field_of_every_kind(api: Served) -> None:
    """An object of each kind with every field set, as the API encodes it, fits its schema:
    no field of the types is missing from the schemas, none has the wrong type."""
    errors: list[str] = []
    with http(api) as h:
        docs = v3_documents(h)
        v2 = h.get("/openapi/v2", headers={"Accept": "application/json"}).json()
    for res in ALL:
        data = maximal(mi.type_info(res.cls))
        data.update(apiVersion=res.group_version, kind=res.kind)
        if res.kind == "Secret":
            data["data"] = {"key": "c2VjcmV0"}
        if res.kind == "ConfigMap":
            data["binaryData"] = {"key": "aGVsbG8="}
        obj = msgspec.convert(data, res.cls)
        encoded = encode_obj(res, obj)
        assert encoded["spec" if "spec" in encoded else "metadata"], res.kind
        errors += check_object(docs, v2, res.group_version, encoded)
    assert errors == []


def read_proto(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message's fields."""
    out: list[tuple[int, int, Any]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = n = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            out.append((num, wire, varint()))
        elif wire == 1:
            out.append((num, wire, data[i : i + 8]))
            i += 8
        elif wire == 2:
            n = varint()
            out.append((num, wire, data[i : i + n]))
            i += n
        else:
            raise AssertionError(f"wire type {wire}")
    return out


def test_v2_protobuf_carries_the_json_document(api: Served) -> None:
    with http(api) as h:
        r = h.get("/openapi/v2", headers={"Accept": PROTOBUF})
        assert r.status_code == 200
        # the dotted name: Go's media type parser (kubectl's) refuses the "@" of the asked one
        assert r.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        doc = h.get("/openapi/v2", headers={"Accept": "application/json"}).json()
    fields = read_proto(r.content)
    assert (1, 2, b"2.0") in fields  # swagger
    paths = next(read_proto(v) for n, _, v in fields if n == 8)
    path_names = [read_proto(v)[0][2].decode() for n, _, v in paths if n == 2]
    assert path_names == list(doc["paths"])
    definitions = next(read_proto(v) for n, _, v in fields if n == 9)
    named = {read_proto(v)[0][2].decode(): read_proto(v)[1][2] for _, _, v in definitions}
    assert list(named) == list(doc["definitions"])
    # Deployment: its description (4), properties (25) and the gvk vendor extension (31) as YAML
    deployment = dict((n, v) for n, _, v in read_proto(named["io.k8s.api.apps.v1.Deployment"]) if n != 31)
    assert deployment[4].decode() == doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["description"]
    props = [read_proto(v)[0][2].decode() for _, _, v in read_proto(deployment[25])]
    assert props == ["apiVersion", "kind", "metadata", "spec", "status"]
    ext = [read_proto(v) for n, _, v in read_proto(named["io.k8s.api.apps.v1.Deployment"]) if n == 31]
    assert ext[0][0][2] == b"x-kubernetes-group-version-kind"
    any_yaml = read_proto(ext[0][1][2])[0][2].decode()
    assert yaml.safe_load(any_yaml) == [{"group": "apps", "kind": "Deployment", "version": "v1"}]


def test_negotiation_and_caching(api: Served) -> None:
    with http(api) as h:
        for accept in ("application/json", "*/*", "application/json, */*"):
            r = h.get("/openapi/v2", headers={"Accept": accept})
            assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
        r = h.get("/openapi/v2", headers={"Accept": "text/html"})
        assert r.status_code == 406
        r = h.get("/openapi/v2", headers={"Accept": PROTOBUF})
        etag = r.headers["ETag"]
        again = h.get("/openapi/v2", headers={"Accept": PROTOBUF, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        index = h.get("/openapi/v3").json()["paths"]
        url = index["apis/apps/v1"]["serverRelativeURL"]
        r = h.get(url)
        assert r.headers["Cache-Control"] == "public, immutable"
        assert r.headers["ETag"] == f'"{url.rsplit("=", 1)[1]}"'
        stale = h.get("/openapi/v3/apis/apps/v1?hash=0123", follow_redirects=False)
        assert stale.status_code == 301 and stale.headers["Location"] == url
        assert h.get("/openapi/v3/apis/nothing/v9").status_code == 404


class Widget(Object):
    """A custom kind, as a CustomResourceDefinition would register it."""

    KIND = "Widget"
    API_VERSION = "example.com/v1"
    PLURAL = "widgets"
    OPENAPI_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "description": "A widget of the example shop.",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1, "description": "How big."},
                    "color": {"type": "string", "enum": ["red", "blue"], "nullable": True},
                    "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
        },
    }
    spec: dict[str, Any] | None = None


def test_a_kind_registered_at_runtime_is_published_with_its_own_schema(api: Served) -> None:
    with http(api) as h:
        assert "apis/example.com/v1" not in h.get("/openapi/v3").json()["paths"]
        res = Resource("Widget", "example.com/v1", "widgets", True, Widget, Widget)
        ALL.append(res)
        try:
            openapi.invalidate()
            index = h.get("/openapi/v3").json()["paths"]
            doc = h.get(index["apis/example.com/v1"]["serverRelativeURL"]).json()
            v2 = h.get("/openapi/v2", headers={"Accept": "application/json"}).json()
        finally:
            ALL.remove(res)
            openapi.invalidate()
        assert "apis/example.com/v1" not in h.get("/openapi/v3").json()["paths"]
    schema = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": "example.com", "kind": "Widget", "version": "v1"}]
    assert schema["description"] == "A widget of the example shop."
    assert schema["properties"]["spec"] == Widget.OPENAPI_SCHEMA["properties"]["spec"]
    assert schema["properties"]["metadata"]["allOf"][0]["$ref"].endswith("meta.v1.ObjectMeta")
    patch = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    # a custom kind takes no strategic merge patch: kubectl then sends a JSON merge patch
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    # v2 drops what Swagger 2.0 cannot say (nullable, anyOf), keeps the rest
    spec_v2 = v2["definitions"]["com.example.v1.Widget"]["properties"]["spec"]["properties"]
    assert spec_v2["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert spec_v2["port"] == {}
    assert spec_v2["size"] == {"type": "integer", "minimum": 1, "description": "How big."}
    assert Widget.OPENAPI_SCHEMA["properties"]["spec"]["properties"]["color"]["nullable"] is True  # not modified


def test_documents_follow_the_registry_without_invalidate(api: Served) -> None:
    """A registry changed behind the cache's back is still noticed (its fingerprint differs)."""
    first = openapi.index()
    res = replace(next(r for r in ALL if r.kind == "ConfigMap"), plural="configmapz")
    api_resources.ALL.append(res)
    try:
        doc = msgspec.json.decode(openapi.document("v1"))
        assert "/api/v1/namespaces/{namespace}/configmapz/{name}" in doc["paths"]
        assert openapi.index() != first
    finally:
        api_resources.ALL.remove(res)
    assert openapi.index() == first
