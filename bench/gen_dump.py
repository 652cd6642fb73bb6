"""Generate a `kubectl get svc,endpointslices -A -o yaml`-style dump of N Services with M endpoints.

Used by the scale benchmarks; writes ``<out>.json`` and a block-style ``<out>.yaml`` (the layout
kubectl prints), both a ``kind: List``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def make_objects(n_services: int, n_endpoints: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i in range(n_services):
        ns = f"ns{i % 50}"
        name = f"svc{i}"
        cip = f"10.254.{(i // 250) + 1}.{(i % 250) + 1}"
        meta = {
            "name": name,
            "namespace": ns,
            "uid": f"00000000-0000-0000-0000-{i:012d}",
            "resourceVersion": str(1000 + i),
            "creationTimestamp": "2026-11-01T10:00:00Z",
            "labels": {"app": name, "tier": "backend"},
            "managedFields": []
            if i
            else [
                {
                    "apiVersion": "v1",
                    "fieldsType": "FieldsV1",
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "time": "2026-11-01T10:00:00Z",
                    "fieldsV1": {"f:spec": {"f:ports": {}, "f:selector": {}}},
                }
            ],
        }
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": cip,
                    "clusterIPs": [cip],
                    "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack",
                    "internalTrafficPolicy": "Cluster",
                    "sessionAffinity": "None",
                    "selector": {"app": name},
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                },
                "status": {"loadBalancer": {}},
            }
        )
        eps = []
        for j in range(n_endpoints):
            k = i * n_endpoints + j
            node = "node1" if j % 2 == 0 else "node2"
            third = (k // 250) % 250 + (1 if node == "node1" else 0)
            eps.append(
                {
                    "addresses": [f"172.30.{76 if node == 'node1' else 9}.{(k % 250) + 2}"]
                    if n_endpoints <= 2
                    else [f"172.{31 + (k // 62500) % 14}.{third}.{(k % 250) + 2}"],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": node,
                }
            )
        items.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-abcde",
                    "namespace": ns,
                    "resourceVersion": str(200000 + i),
                    "labels": {
                        "kubernetes.io/service-name": name,
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    },
                    "generateName": f"{name}-",
                },
                "addressType": "IPv4",
                "endpoints": eps,
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        )
    return items


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if s == "" or s[0] in "-?:,[]{}#&*!|>'\"%@`" or s in ("true", "false", "null") or s.replace(".", "").isdigit():
        return json.dumps(s)
    if ": " in s or " #" in s:
        return json.dumps(s)
    return s


def to_block_yaml(obj: Any, indent: int = 0, out: list[str] | None = None) -> list[str]:
    """kubectl's block layout: maps as `key: value`, lists as `- ` items at the parent's indent."""
    out = [] if out is None else out
    pad = " " * indent
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append(f"{pad}{k}:")
                to_block_yaml(v, indent + 2, out)
            elif isinstance(v, list) and v:
                out.append(f"{pad}{k}:")
                to_block_yaml(v, indent, out)
            elif isinstance(v, dict):
                out.append(f"{pad}{k}: {{}}")
            elif isinstance(v, list):
                out.append(f"{pad}{k}: []")
            else:
                out.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                sub = to_block_yaml(item, indent + 2, [])
                sub[0] = f"{pad}- {sub[0][indent + 2 :]}"
                out.extend(sub)
            else:
                out.append(f"{pad}- {_scalar(item)}")
    return out


def write_dump(out: Path, n_services: int, n_endpoints: int) -> tuple[Path, Path]:
    items = make_objects(n_services, n_endpoints)
    doc = {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
    jpath = out.with_suffix(".json")
    ypath = out.with_suffix(".yaml")
    jpath.write_text(json.dumps(doc))
    ypath.write_text("\n".join(to_block_yaml(doc)) + "\n")
    return jpath, ypath


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("/tmp/kins-dump"))
    a = ap.parse_args()
    j, y = write_dump(a.out, a.services, a.endpoints)
    print(f"{j} {j.stat().st_size / 1e6:.1f} MB\n{y} {y.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
