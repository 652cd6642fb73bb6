"""-o yaml / -o json in kubectl's style."""

from __future__ import annotations

import json
from typing import Any

import yaml_rs

from kins.api.core import ConfigMap, Service
from kins.api.load import load_text
from kins.api.meta import ObjectMeta
from kins.views import dump_yaml, to_json, to_yaml


def test_yaml_quotes_only_what_would_not_read_back_as_a_string() -> None:
    doc = {
        "int-like": "80",
        "octal-like": "0755",
        "float-like": "1.5e3",
        "bool-like": "yes",
        "null-like": "~",
        "empty": "",
        "time": "2024-05-01T12:00:00Z",
        "date": "2024-05-01",
        "base60": "1:20",
        "plain": "nginx:1.25",
        "url": "http://a.example/x?y=1",
        "star": "*",
        "colon-space": "a: b",
        "hash": "a #b",
        "dash": "-c",
        "dash-space": "- x",
        "quote": "it's",
        "lead-space": " x",
        "number": 80,
        "bool": True,
        "none": None,
    }
    assert dump_yaml(doc) == (
        'base60: "1:20"\n'
        "bool: true\n"
        'bool-like: "yes"\n'
        "colon-space: 'a: b'\n"
        "dash: -c\n"
        "dash-space: '- x'\n"
        'date: "2024-05-01"\n'
        'empty: ""\n'
        'float-like: "1.5e3"\n'
        "hash: 'a #b'\n"
        'int-like: "80"\n'
        "lead-space: ' x'\n"
        "none: null\n"
        'null-like: "~"\n'
        "number: 80\n"
        'octal-like: "0755"\n'
        "plain: nginx:1.25\n"
        "quote: it's\n"
        "star: '*'\n"
        'time: "2024-05-01T12:00:00Z"\n'
        "url: http://a.example/x?y=1\n"
    )


def test_yaml_block_layout() -> None:
    doc = {"b": [{"y": 1, "x": [1, [2, 3]]}, "s"], "a": {"m": {}, "l": []}, "c": "l1\nl2\n", "d": "l1\nl2"}
    assert dump_yaml(doc) == (
        "a:\n  l: []\n  m: {}\n"
        # "y" reads back as a YAML 1.1 boolean, so even a key gets quoted.
        'b:\n- x:\n  - 1\n  - - 2\n    - 3\n  "y": 1\n- s\n'
        "c: |\n  l1\n  l2\n"
        "d: |-\n  l1\n  l2\n"
    )


def test_yaml_folds_long_text_past_column_80() -> None:
    text = " ".join(f"word{i}" for i in range(30))
    out = dump_yaml({"spec": {"description": text}})
    lines = out.splitlines()
    assert lines[1].startswith("  description: word0 ")
    assert all(line.startswith("    word") for line in lines[2:])
    # Each break happens at the first space once the line is longer than 80 columns.
    assert all(len(line) > 80 and len(line) < 90 for line in lines[1:-1])
    loaded: Any = yaml_rs.loads(out)
    assert loaded["spec"]["description"] == text


def test_yaml_round_trips_through_a_yaml_parser() -> None:
    cm = ConfigMap(
        metadata=ObjectMeta(name="nginx", namespace="ingress-nginx", labels={"app": "x", "version": "1.0"}),
        data={"nginx.conf": "server {\n  listen 80;\n}\n", "port": "80", "flag": "true", "empty": ""},
    )
    text = to_yaml([cm])
    back: Any = yaml_rs.loads(text)
    assert back["data"] == cm.data
    assert back["metadata"]["labels"] == {"app": "x", "version": "1.0"}
    assert text.startswith("apiVersion: v1\ndata:\n")


def test_single_object_and_list_wrappers() -> None:
    a, b = load_text(
        """
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {clusterIP: 10.254.0.10, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {clusterIP: 10.254.0.11, ports: [{port: 81}]}
"""
    )
    assert isinstance(a, Service) and isinstance(b, Service)
    one = json.loads(to_json([a]))
    assert one["kind"] == "Service" and one["metadata"]["name"] == "a"
    both = json.loads(to_json([a, b]))
    assert both["kind"] == "List" and both["apiVersion"] == "v1"
    assert both["metadata"] == {"resourceVersion": ""}
    assert [i["metadata"]["name"] for i in both["items"]] == ["a", "b"]
    assert json.loads(to_json([a], as_list=True))["kind"] == "List"
    assert to_yaml([a, b]).endswith('kind: List\nmetadata:\n  resourceVersion: ""\n')
    # Loading the printed list gives the same objects back.
    assert load_text(to_yaml([a, b])) == [a, b]


def test_json_style_matches_go() -> None:
    cm = ConfigMap(metadata=ObjectMeta(name="c", annotations={"note": "<a & b>"}), data={"k": "é"})
    text = to_json([cm])
    assert '    "apiVersion": "v1",\n' in text
    assert '"note": "\\u003ca \\u0026 b\\u003e"' in text
    assert '"k": "é"' in text
    assert text.endswith("}\n")
    assert list(json.loads(text)) == ["apiVersion", "data", "kind", "metadata"]
