"""Server-side apply's field sets, as pure functions: fieldsV1, list semantics, the structured
merge, ownership after updates and applies, conflicts and their messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kins.api import apply as ssa
from kins.api import fieldsets as fs
from kins.api.apps import Deployment
from kins.api.core import Pod, Service

DEP = fs.schema_of(Deployment)
POD = fs.schema_of(Pod)
SVC = fs.schema_of(Service)
T = "2026-01-01T00:00:00Z"


def deployment(replicas: int = 2, image: str = "nginx", env: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
        },
    }


def apply(live: Any, config: Any, managers: list[ssa.Manager], who: str, force: bool = False) -> ssa.Applied:
    return ssa.apply(live, config, DEP, managers, who, "apps/v1", force, when=T)


# --- schema and paths -------------------------------------------------------------------------


def test_list_semantics_follow_the_api_list_types() -> None:
    pod_spec = POD.fields["spec"]
    containers = pod_spec.fields["containers"]
    assert (containers.list_type, containers.keys) == ("map", ("name",))
    assert containers.elem is not None
    ports = containers.elem.fields["ports"]
    assert (ports.list_type, ports.keys) == ("map", ("containerPort", "protocol"))
    assert containers.elem.fields["env"].keys == ("name",)
    assert containers.elem.fields["volumeMounts"].keys == ("mountPath",)
    assert containers.elem.fields["args"].list_type == "atomic"
    assert pod_spec.fields["volumes"].keys == ("name",)
    assert pod_spec.fields["nodeSelector"] is fs.LEAF  # mapType=atomic
    svc_spec = SVC.fields["spec"]
    assert svc_spec.fields["ports"].keys == ("port", "protocol")
    assert svc_spec.fields["selector"] is fs.LEAF
    assert DEP.fields["spec"].fields["selector"] is fs.LEAF  # LabelSelector is structType=atomic
    assert POD.fields["metadata"].fields["finalizers"].list_type == "set"
    assert POD.fields["status"].fields["conditions"].keys == ("type",)


def test_field_set_of_an_applied_deployment_is_the_api_s() -> None:
    r = apply(None, deployment(), [], "kubectl")
    assert r.changed
    (entry,) = ssa.encode_managers(r.managers)
    assert entry == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"web"}': {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {
                                    'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}
                                },
                            }
                        }
                    },
                },
            },
        },
    }


def test_an_update_owns_what_it_filled_in_maps_and_lists_included() -> None:
    (m,) = ssa.update(None, deployment(), DEP, [], "kubectl-create", "apps/v1", when=T)
    fields = fs.to_fields_v1(m.fields)
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    web = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert "." in web["f:ports"]  # an omitempty list that appeared: its writer owns it too
    assert (m.operation, m.time) == ("Update", T)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("f:spec", "f:replicas"), ".spec.replicas"),
        (
            ("f:spec", 'k:{"containerPort":80,"protocol":"TCP"}', "f:name"),
            '.spec[containerPort=80,protocol="TCP"].name',
        ),
        (("f:metadata", "f:finalizers", 'v:"a/b"'), '.metadata.finalizers[="a/b"]'),
        (("f:items", "i:3"), ".items[3]"),
    ],
)
def test_paths_read_as_the_api_writes_them(path: fs.Path, text: str) -> None:
    assert fs.path_string(path) == text


_PE = st.sampled_from(["f:a", "f:b", "f:spec", 'k:{"name":"x"}', 'v:"s"', "i:0"])


@settings(max_examples=200, deadline=None)
@given(st.sets(st.lists(_PE, min_size=1, max_size=5).map(tuple), max_size=30))
def test_fields_v1_round_trips_any_field_set(paths: set[fs.Path]) -> None:
    trie = fs.to_fields_v1(paths)
    assert fs.from_fields_v1(trie) == paths
    for p in paths:
        assert fs.trie_has(trie, p)


# --- comparison -------------------------------------------------------------------------------

_names = st.sampled_from(["a", "b", "c", "d"])
_containers = st.dictionaries(
    _names,
    st.fixed_dictionaries(
        {"image": st.sampled_from(["nginx", "busybox"])},
        optional={
            "env": st.dictionaries(_names, st.sampled_from(["1", "2"]), max_size=3),
            "ports": st.sets(st.sampled_from([80, 443, 8080]), max_size=2),
            "args": st.lists(st.sampled_from(["x", "y"]), max_size=2),
        },
    ),
    max_size=3,
)


def _doc(replicas: int | None, labels: dict[str, str], containers: dict[str, Any], finalizers: list[str]) -> Any:
    cs = []
    for name, c in containers.items():
        out: dict[str, Any] = {"name": name, "image": c["image"]}
        if "env" in c:
            out["env"] = [{"name": k, "value": v} for k, v in c["env"].items()]
        if "ports" in c:
            out["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in sorted(c["ports"])]
        if "args" in c:
            out["args"] = c["args"]
        cs.append(out)
    spec: dict[str, Any] = {"template": {"spec": {"containers": cs}}}
    if replicas is not None:
        spec["replicas"] = replicas
    meta: dict[str, Any] = {"name": "web"}
    if labels:
        meta["labels"] = labels
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta, "spec": spec}


_docs = st.builds(
    _doc,
    st.one_of(st.none(), st.integers(0, 3)),
    st.dictionaries(_names, st.sampled_from(["x", "y"]), max_size=2),
    _containers,
    st.lists(st.sampled_from(["f1", "f2"]), unique=True, max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(_docs, _docs)
def test_comparison_skipping_equal_subtrees_is_the_full_comparison(old: Any, new: Any) -> None:
    """``compare`` descends only where values differ; it must say what comparing every field
    of both objects says."""
    fo, fn = fs.flatten(old, DEP, marks=True), fs.flatten(new, DEP, marks=True)
    c = fs.compare(old, new, DEP)
    assert c.added == fn.keys() - fo.keys()
    assert c.removed == fo.keys() - fn.keys()
    assert c.modified == {p for p in fo.keys() & fn.keys() if fo[p] is not fn[p] and fo[p] != fn[p]}


@settings(max_examples=200, deadline=None)
@given(_docs, _docs)
def test_applying_twice_changes_nothing_the_second_time(live: Any, config: Any) -> None:
    first = apply(live, config, [], "a", force=True)
    second = apply(first.obj, config, first.managers, "a")
    assert second.obj == first.obj
    assert not second.changed
    assert [m.fields for m in second.managers] == [m.fields for m in first.managers]


@settings(max_examples=200, deadline=None)
@given(_docs, _docs)
def test_the_applied_configuration_holds_in_the_result(live: Any, config: Any) -> None:
    r = apply(live, config, [], "a", force=True)
    merged = fs.flatten(r.obj, DEP)
    for path, value in fs.flatten(config, DEP).items():
        assert path in merged
        if value is not fs.MARK and not isinstance(value, dict):
            assert merged[path] == value


# --- apply ------------------------------------------------------------------------------------


def test_a_dropped_field_goes_unless_another_manager_owns_it() -> None:
    first = apply(None, deployment(env={"A": "1", "B": "2"}), [], "kubectl")
    second = apply(first.obj, deployment(env={"A": "1"}), first.managers, "kubectl")
    env = second.obj["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}]
    # Another manager applying B too keeps it when the first drops it.
    shared = apply(first.obj, deployment(env={"B": "2"}), first.managers, "other")
    third = apply(shared.obj, deployment(env={"A": "1"}), shared.managers, "kubectl")
    env = third.obj["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"] for e in env} == {"A", "B"}


def test_dropping_the_last_label_removes_the_map_it_left_empty() -> None:
    first = apply(None, deployment(), [], "kubectl")
    config = deployment()
    del config["metadata"]["labels"]
    second = apply(first.obj, config, first.managers, "kubectl")
    assert "labels" not in second.obj["metadata"]


def test_an_element_another_writer_added_stays() -> None:
    first = apply(None, deployment(), [], "kubectl")
    live = copy.deepcopy(first.obj)
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    managers = ssa.update(first.obj, live, DEP, first.managers, "editor", "apps/v1", when=T)
    again = apply(live, deployment(image="nginx:2"), managers, "kubectl")
    names = [c["name"] for c in again.obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["web", "sidecar"]


def test_a_value_another_manager_set_is_a_conflict_unless_forced() -> None:
    first = apply(None, deployment(), [], "kubectl")
    scaled = copy.deepcopy(first.obj)
    scaled["spec"]["replicas"] = 5
    managers = ssa.update(first.obj, scaled, DEP, first.managers, "kubectl", "apps/v1", subresource="scale", when=T)
    with pytest.raises(ssa.Conflicts) as e:
        apply(scaled, deployment(replicas=2), managers, "kubectl")
    assert e.value.message() == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas'
    )
    assert e.value.causes() == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl" with subresource "scale" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    forced = apply(scaled, deployment(replicas=2), managers, "kubectl", force=True)
    assert forced.obj["spec"]["replicas"] == 2
    assert [m.manager for m in forced.managers] == ["kubectl"]  # the scaler owned nothing else


def test_the_same_value_is_shared_not_a_conflict() -> None:
    first = apply(None, deployment(), [], "a")
    second = apply(first.obj, deployment(), first.managers, "b")
    assert not second.changed
    assert {m.manager for m in second.managers if ("f:spec", "f:replicas") in m.fields} == {"a", "b"}


def test_several_conflicts_are_listed_by_manager() -> None:
    first = apply(None, deployment(), [], "a")
    with pytest.raises(ssa.Conflicts) as e:
        apply(first.obj, deployment(replicas=3, image="busybox"), first.managers, "b")
    assert e.value.message() == (
        'Apply failed with 2 conflicts: conflicts with "a":\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="web"].image'
    )


def test_an_object_nobody_owned_is_owned_before_the_first_apply() -> None:
    live = deployment(replicas=3)
    with pytest.raises(ssa.Conflicts) as e:
        apply(live, deployment(replicas=1), [], "kubectl")
    assert e.value.conflicts[0].manager.describe() == '"before-first-apply" using apps/v1'


def test_an_update_takes_what_it_changed_from_others() -> None:
    first = apply(None, deployment(), [], "kubectl")
    new = copy.deepcopy(first.obj)
    new["spec"]["replicas"] = 7
    managers = ssa.update(first.obj, new, DEP, first.managers, "hpa", "apps/v1", when=T)
    owners = {m.manager: m.fields for m in managers}
    assert ("f:spec", "f:replicas") in owners["hpa"]
    assert ("f:spec", "f:replicas") not in owners["kubectl"]


def test_status_writes_own_only_status() -> None:
    old = {"spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}}
    new = {"spec": {"nodeName": "n2"}, "status": {"phase": "Running"}}
    (m,) = ssa.update(old, new, POD, [], "kubelet", "v1", subresource="status", when=T)
    assert m.fields == {("f:status", "f:phase")}
    assert m.entry()["subresource"] == "status"


def test_an_entry_no_write_touched_passes_through_unparsed() -> None:
    (creator,) = ssa.update(None, deployment(), DEP, [], "kubectl-create", "apps/v1", when=T)
    entries = ssa.encode_managers([creator])
    old = {"status": {"replicas": 1}}
    new = {"status": {"replicas": 2}}
    managers = ssa.update(old, new, DEP, ssa.parse_managers(entries), "ctl", "apps/v1", subresource="status", when=T)
    kept = next(m for m in managers if m.manager == "kubectl-create")
    assert kept.entry()["fieldsV1"] is entries[0]["fieldsV1"]


def test_keys_must_be_present_and_unique_in_an_applied_list() -> None:
    config = deployment()
    config["spec"]["template"]["spec"]["containers"].append({"image": "x"})
    with pytest.raises(fs.ApplyError, match="missing key field"):
        apply(None, config, [], "a")
    config = deployment(env={"A": "1"})
    config["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "A", "value": "2"})
    with pytest.raises(fs.ApplyError, match="duplicate entries"):
        apply(None, config, [], "a")


def test_last_applied_fields_still_live_are_kubectl_s_to_take_over() -> None:
    live = deployment(replicas=3)
    last = deployment(replicas=2)
    live["metadata"]["annotations"] = {ssa.LAST_APPLIED: ssa.last_applied_text(last)}
    allowed = ssa.allowed_by_last_applied(live, DEP)
    assert ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image") in allowed
    assert ("f:spec", "f:replicas") not in allowed  # scaled since: not what kubectl applied


def test_more_than_ten_updaters_fold_the_oldest_into_ancient_changes() -> None:
    live: dict[str, Any] = {"metadata": {"labels": {}}}
    managers: list[ssa.Manager] = []
    for i in range(12):
        new = copy.deepcopy(live)
        new["metadata"]["labels"][f"l{i}"] = "x"
        managers = ssa.update(live, new, DEP, managers, f"m{i:02d}", "apps/v1", when=f"2026-01-01T00:00:{i:02d}Z")
        live = new
    names = sorted(m.manager for m in managers)
    assert len(managers) == 10
    assert names == ["ancient-changes"] + [f"m{i:02d}" for i in range(3, 12)]
    ancient = next(m for m in managers if m.manager == "ancient-changes")
    # m00 filled the empty labels map in: it owned the map too.
    assert ancient.fields == {("f:metadata", "f:labels")} | {("f:metadata", "f:labels", f"f:l{i}") for i in range(3)}


def test_map_entries_are_owned_one_by_one() -> None:
    from kins.api.core import ConfigMap

    schema = fs.schema_of(ConfigMap)

    def cm(**data: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data}

    first = ssa.apply(None, cm(a="1", b="2"), schema, [], "one", "v1", False, when=T)
    assert fs.to_fields_v1(first.managers[0].fields) == {"f:data": {"f:a": {}, "f:b": {}}}
    second = ssa.apply(first.obj, cm(c="3"), schema, first.managers, "two", "v1", False, when=T)
    assert second.obj["data"] == {"a": "1", "b": "2", "c": "3"}
    third = ssa.apply(second.obj, cm(a="1"), schema, second.managers, "one", "v1", False, when=T)
    assert third.obj["data"] == {"a": "1", "c": "3"}


@settings(max_examples=300, deadline=None)
@given(_docs, _docs)
def test_a_sole_manager_s_object_is_its_last_configuration(first: Any, second: Any) -> None:
    """With nobody else owning fields, applying A then B leaves what applying B alone leaves:
    whatever A set and B dropped is gone (list order aside: live elements keep their places)."""
    a = apply(None, first, [], "a")
    b = apply(a.obj, second, a.managers, "a")
    assert fs.flatten(b.obj, DEP) == fs.flatten(apply(None, second, [], "a").obj, DEP)
