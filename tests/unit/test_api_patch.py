"""Patch formats of the API: JSON merge patch, strategic merge patch, JSON patch, apply."""

from __future__ import annotations

from typing import Any

import pytest

from kins.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch, three_way


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_merge_patch_does_not_modify_its_input() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def pod_spec(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"containers": list(containers)}}


def test_strategic_merges_containers_by_name() -> None:
    live = pod_spec(
        {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]},
        {"name": "side", "image": "busybox"},
    )
    out = strategic_merge_patch(live, pod_spec({"name": "web", "image": "nginx:2"}))
    assert out == pod_spec(
        {"name": "web", "image": "nginx:2", "ports": [{"containerPort": 80}]},
        {"name": "side", "image": "busybox"},
    )
    # A plain merge patch replaces the list, losing the other container and the ports.
    assert merge_patch(live, pod_spec({"name": "web", "image": "nginx:2"})) == pod_spec(
        {"name": "web", "image": "nginx:2"}
    )


def test_strategic_delete_directive_order_and_new_elements() -> None:
    live = pod_spec({"name": "a", "image": "x"}, {"name": "b", "image": "y"})
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}],
            "containers": [{"name": "a", "$patch": "delete"}, {"name": "c", "image": "z"}],
        }
    }
    assert strategic_merge_patch(live, patch) == pod_spec({"name": "c", "image": "z"}, {"name": "b", "image": "y"})


def test_strategic_service_ports_keep_allocated_node_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "nodePort": 30080, "targetPort": 8080}]}}
    out = strategic_merge_patch(live, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert out == {"spec": {"ports": [{"port": 80, "nodePort": 30080, "targetPort": 9090}]}}


def test_strategic_replace_directive_and_primitive_lists() -> None:
    live = {"metadata": {"labels": {"a": "1", "b": "2"}}, "args": ["x"]}
    out = strategic_merge_patch(live, {"metadata": {"labels": {"$patch": "replace", "c": "3"}}, "args": ["y"]})
    assert out == {"metadata": {"labels": {"c": "3"}}, "args": ["y"]}


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "9"},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "add", "path": "/spec/list/0", "value": 0},
            {"op": "remove", "path": "/spec/list/1"},
            {"op": "copy", "from": "/metadata/labels/a", "path": "/spec/a"},
            {"op": "move", "from": "/spec/a", "path": "/spec/moved"},
            {"op": "test", "path": "/spec/moved", "value": "9"},
        ],
    )
    assert out == {"metadata": {"labels": {"a": "9", "b/c": "2"}}, "spec": {"list": [0, 2, 3], "moved": "9"}}
    assert doc == {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "frobnicate", "path": "/a"}],
        {"op": "add"},
    ],
)
def test_json_patch_errors(ops: Any) -> None:
    with pytest.raises(PatchError):
        json_patch({"a": 1}, ops)


def test_three_way_apply() -> None:
    live = {
        "metadata": {"name": "web", "uid": "u1", "labels": {"app": "web", "old": "x"}},
        "spec": {
            "clusterIP": "10.254.0.10",
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 443, "nodePort": 30443}],
        },
        "status": {"loadBalancer": {}},
    }
    last = {
        "metadata": {"name": "web", "labels": {"app": "web", "old": "x"}},
        "spec": {"ports": [{"port": 80}, {"port": 443}]},
    }
    new = {
        "metadata": {"name": "web", "labels": {"app": "web2"}},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}]},
    }
    assert three_way(live, last, new) == {
        "metadata": {"name": "web", "uid": "u1", "labels": {"app": "web2"}},
        "spec": {"clusterIP": "10.254.0.10", "ports": [{"port": 80, "nodePort": 30080, "targetPort": 8080}]},
        "status": {"loadBalancer": {}},
    }
    # Without a previous apply nothing is removed that the manifest does not mention.
    assert three_way({"a": 1, "b": 2}, None, {"b": 3}) == {"a": 1, "b": 3}
