"""Strategic merge patches in the shapes ``kubectl apply`` sends for the kinds kins holds."""

from __future__ import annotations

from typing import Any

from kins.api.patch import strategic_merge_patch


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "web", "image": "nginx:1", **fields}


def deploy(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"spec": {**spec, "template": {"spec": {"containers": list(containers)}}}}


def test_apply_changes_one_container_and_keeps_what_the_server_set() -> None:
    live = deploy(
        container(
            ports=[{"containerPort": 80, "protocol": "TCP"}],
            env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            terminationMessagePath="/dev/termination-log",
        ),
        {"name": "side", "image": "busybox"},
        replicas=3,
    )
    # New image, env B changed, env C added, env A removed since the last apply.
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                    "containers": [
                        {
                            "$setElementOrder/env": [{"name": "B"}, {"name": "C"}],
                            "name": "web",
                            "image": "nginx:2",
                            "env": [
                                {"name": "B", "value": "3"},
                                {"name": "C", "value": "4"},
                                {"$patch": "delete", "name": "A"},
                            ],
                        }
                    ],
                }
            }
        }
    }
    out = strategic_merge_patch(live, patch)
    web, side = out["spec"]["template"]["spec"]["containers"]
    assert web == container(
        image="nginx:2",
        ports=[{"containerPort": 80, "protocol": "TCP"}],
        env=[{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
        terminationMessagePath="/dev/termination-log",
    )
    assert side == {"name": "side", "image": "busybox"}
    assert out["spec"]["replicas"] == 3


def test_service_ports_merge_by_port_and_keep_node_ports() -> None:
    live = {
        "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080, "targetPort": 8080}]}
    }
    patch = {
        "spec": {
            "$setElementOrder/ports": [{"port": 443}, {"port": 80}],
            "ports": [{"name": "https", "port": 443, "targetPort": 8443}, {"port": 80, "targetPort": 9090}],
        }
    }
    assert strategic_merge_patch(live, patch)["spec"]["ports"] == [
        {"name": "https", "port": 443, "targetPort": 8443},
        {"name": "http", "port": 80, "nodePort": 30080, "targetPort": 9090},
    ]
    removed = strategic_merge_patch(live, {"spec": {"ports": [{"$patch": "delete", "port": 80}]}})
    assert removed["spec"]["ports"] == []


def test_volumes_by_name_and_retain_keys_switch_the_source() -> None:
    live = {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "a"}}]}
    patch = {
        "$setElementOrder/volumes": [{"name": "data"}, {"name": "conf"}],
        "volumes": [{"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "b"}}],
    }
    assert strategic_merge_patch(live, patch)["volumes"] == [
        {"name": "data", "configMap": {"name": "b"}},
        {"name": "conf", "configMap": {"name": "a"}},
    ]


def test_volume_mounts_merge_by_mount_path() -> None:
    live = {"volumeMounts": [{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/b", "readOnly": True}]}
    out = strategic_merge_patch(live, {"volumeMounts": [{"mountPath": "/b", "readOnly": None}]})
    assert out == {"volumeMounts": [{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/b"}]}


def test_finalizers_merge_and_delete_from_primitive_list() -> None:
    live = {"metadata": {"finalizers": ["a", "b"]}}
    assert strategic_merge_patch(live, {"metadata": {"finalizers": ["c"]}}) == {
        "metadata": {"finalizers": ["a", "b", "c"]}
    }
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "$setElementOrder/finalizers": ["b"]}}
    assert strategic_merge_patch(live, patch) == {"metadata": {"finalizers": ["b"]}}


def test_atomic_lists_are_replaced_and_new_lists_carry_no_directives() -> None:
    live = {"args": ["a", "b"], "tolerations": [{"key": "x"}]}
    out = strategic_merge_patch(live, {"args": ["c"], "tolerations": [{"key": "y"}]})
    assert out == {"args": ["c"], "tolerations": [{"key": "y"}]}
    fresh = strategic_merge_patch(
        {},
        {
            "containers": [
                {"$setElementOrder/env": [{"name": "A"}], "name": "web", "env": [{"name": "A", "value": "1"}]}
            ]
        },
    )
    assert fresh == {"containers": [{"name": "web", "env": [{"name": "A", "value": "1"}]}]}


def test_order_only_directive_reorders_without_other_changes() -> None:
    live = {"containers": [{"name": "a"}, {"name": "b"}]}
    assert strategic_merge_patch(live, {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}) == {
        "containers": [{"name": "b"}, {"name": "a"}]
    }


def test_replace_directive_in_a_list_and_in_a_map() -> None:
    live = {"containers": [{"name": "a", "image": "x"}], "selector": {"a": "1", "b": "2"}}
    patch = {"containers": [{"name": "z"}, {"$patch": "replace"}], "selector": {"$patch": "replace", "c": "3"}}
    assert strategic_merge_patch(live, patch) == {"containers": [{"name": "z"}], "selector": {"c": "3"}}
