#!/usr/bin/env python3
"""Writes src/kins/apiserver/protobuf_schema.json: the Kubernetes protobuf messages as a table
the API's codec reads at runtime (no generated code).

Wire facts (field numbers, scalar types, repeated and map fields, which messages wrap a bare list)
come from upstream's ``generated.proto`` files; JSON facts (each field's JSON name, ``omitempty``,
pointer or value, fields inlined into their parent) from the Go types beside them, whose struct
tags name the protobuf field they are. Sources are bare git mirrors, read at their HEAD:

    python scripts/gen_protobuf_schema.py [--mirrors /work/.mirror]

Field entries are ``[number, jsonName, type, flags]``: type is a scalar name, a message's full
name, or ``[keyType, valueType]`` for a map; flags are the FLAG_* bits below.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

FLAG_REPEATED = 1  # a list (or a map)
FLAG_POINTER = 2  # a Go pointer: present (even at its zero value) only when set
FLAG_OMITEMPTY = 4  # left out of JSON at its zero value
FLAG_INLINE = 8  # an embedded struct whose fields sit in the parent's JSON object

# (mirror directory, package directories holding a generated.proto). The groups the API serves
# or that kubectl's generators send, in all their versions, and apimachinery's shared types.
SOURCES: dict[str, tuple[str, ...]] = {
    "kubernetes+apimachinery": (
        "pkg/apis/meta/v1",
        "pkg/api/resource",
        "pkg/runtime",
        "pkg/runtime/schema",
        "pkg/util/intstr",
    ),
    "kubernetes+api": tuple(
        f"{group}/{version}"
        for group, versions in {
            "core": ("v1",),
            "apps": ("v1",),
            "batch": ("v1",),
            "networking": ("v1", "v1beta1"),
            "extensions": ("v1beta1",),
            "discovery": ("v1",),
            "policy": ("v1",),
            "rbac": ("v1",),
            "storage": ("v1",),
            "autoscaling": ("v1", "v2"),
            "coordination": ("v1",),
            "scheduling": ("v1",),
            "admissionregistration": ("v1",),
            "authorization": ("v1",),
            "authentication": ("v1",),
            "events": ("v1",),
            "certificates": ("v1",),
            "node": ("v1",),
            "flowcontrol": ("v1",),
        }.items()
        for version in versions
    ),
    "kubernetes+apiextensions-apiserver": ("pkg/apis/apiextensions/v1",),
    "kubernetes+kube-aggregator": ("pkg/apis/apiregistration/v1",),
}
GO_MODULES = {
    "kubernetes+apimachinery": "k8s.io/apimachinery",
    "kubernetes+api": "k8s.io/api",
    "kubernetes+apiextensions-apiserver": "k8s.io/apiextensions-apiserver",
    "kubernetes+kube-aggregator": "k8s.io/kube-aggregator",
}
SKIP_GO = re.compile(r"(_test\.go|generated\.pb\.go|zz_generated.*\.go|swagger_doc_generated\.go)$")


def git(mirror: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(mirror), *args], check=True, capture_output=True, text=True).stdout


@dataclass
class ProtoField:
    number: int
    name: str
    type: str | list[str]
    repeated: bool


@dataclass
class ProtoMessage:
    name: str
    fields: list[ProtoField] = field(default_factory=list)
    list_wrapper: bool = False  # a Go slice type: its JSON is the bare list of items


_MESSAGE = re.compile(r"^message (\w+) \{")
_FIELD = re.compile(r"^\s+(optional|repeated) ([\w.]+) (\w+) = (\d+)")
_MAP = re.compile(r"^\s+map<([\w.]+), ?([\w.]+)> (\w+) = (\d+)")


def _qualify(type_name: str, package: str) -> str:
    if type_name.startswith("."):
        return type_name[1:]
    if type_name in SCALARS:
        return type_name
    return type_name if "." in type_name else f"{package}.{type_name}"


SCALARS = frozenset(
    {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "double", "float"}
)


def parse_proto(text: str) -> tuple[str, list[ProtoMessage]]:
    package = re.search(r"^package ([\w.]+);", text, re.M)
    assert package is not None
    pkg = package.group(1)
    messages: list[ProtoMessage] = []
    current: ProtoMessage | None = None
    comments: list[str] = []
    for line in text.splitlines():
        m = _MESSAGE.match(line)
        if m:
            current = ProtoMessage(f"{pkg}.{m.group(1)}")
            current.list_wrapper = any("+protobuf.nullable=true" in c for c in comments)
            messages.append(current)
            comments = []
            continue
        if line.startswith("//"):
            comments.append(line)
            continue
        comments = [] if not line.strip().startswith("//") else comments
        if current is None:
            continue
        if line.startswith("}"):
            current = None
            continue
        m = _MAP.match(line)
        if m:
            key, value, name, number = m.groups()
            current.fields.append(ProtoField(int(number), name, [_qualify(key, pkg), _qualify(value, pkg)], True))
            continue
        m = _FIELD.match(line)
        if m:
            label, type_name, name, number = m.groups()
            current.fields.append(ProtoField(int(number), name, _qualify(type_name, pkg), label == "repeated"))
    return pkg, messages


@dataclass
class GoField:
    json_name: str
    pointer: bool
    omitempty: bool
    inline: bool


_STRUCT = re.compile(r"^type (\w+) struct \{")
_TAGGED = re.compile(r"^\s+(.*?)\s*`([^`]*)`")
_TAG = re.compile(r'(\w+):"([^"]*)"')


def parse_go(text: str) -> dict[str, dict[int, GoField]]:
    """Go struct name -> protobuf field number -> what its JSON looks like."""
    out: dict[str, dict[int, GoField]] = {}
    current: dict[int, GoField] | None = None
    for line in text.splitlines():
        m = _STRUCT.match(line)
        if m:
            current = out.setdefault(m.group(1), {})
            continue
        if current is None:
            continue
        if line.startswith("}"):
            current = None
            continue
        m = _TAGGED.match(line)
        if not m:
            continue
        decl, tags_text = m.groups()
        tags = dict(_TAG.findall(tags_text))
        if "protobuf" not in tags or tags["protobuf"] == "-":
            continue
        parts = decl.split()
        embedded = len(parts) == 1
        go_name = parts[0].lstrip("*").rpartition(".")[2]
        go_type = parts[0] if embedded else " ".join(parts[1:])
        json_name, *opts = tags.get("json", "").split(",")
        if json_name == "-":
            continue
        inline = "inline" in opts or (embedded and json_name == "")
        number = int(tags["protobuf"].split(",")[1])
        current[number] = GoField(
            json_name=json_name or ("" if inline else go_name),
            pointer=go_type.startswith("*"),
            omitempty="omitempty" in opts,
            inline=inline,
        )
    return out


def group_versions(mirror: Path, pkg_dir: str, package: str) -> str | None:
    """The API group/version the package's types are served as (its register.go's GroupName)."""
    try:
        text = git(mirror, "show", f"HEAD:{pkg_dir}/register.go")
    except subprocess.CalledProcessError:
        return None
    m = re.search(r'GroupName\s*=\s*"([^"]*)"', text)
    if m is None:
        return None
    version = package.rpartition(".")[2]
    return f"{m.group(1)}/{version}" if m.group(1) else version


def build(mirrors: Path) -> dict[str, object]:
    messages: dict[str, list[list[object]]] = {}
    wrappers: list[str] = []
    packages: dict[str, str] = {}
    sources: list[dict[str, str]] = []
    for repo, dirs in SOURCES.items():
        mirror = mirrors / repo / "repo"
        commit = git(mirror, "rev-parse", "HEAD").strip()
        sources.append({"repository": f"github.com/{repo.replace('+', '/')}", "commit": commit})
        for pkg_dir in dirs:
            package, parsed = parse_proto(git(mirror, "show", f"HEAD:{pkg_dir}/generated.proto"))
            go: dict[str, dict[int, GoField]] = {}
            for path in git(mirror, "ls-tree", "--name-only", "HEAD", f"{pkg_dir}/").split():
                if path.endswith(".go") and not SKIP_GO.search(path):
                    go.update(parse_go(git(mirror, "show", f"HEAD:{path}")))
            gv = group_versions(mirror, pkg_dir, package)
            if gv is not None:
                packages[gv] = package
            for msg in parsed:
                go_fields = go.get(msg.name.rpartition(".")[2], {})
                entries: list[list[object]] = []
                for f in msg.fields:
                    g = go_fields.get(f.number)
                    flags = FLAG_REPEATED if f.repeated else 0
                    if g is None:
                        flags |= FLAG_OMITEMPTY
                        json_name = f.name
                    else:
                        json_name = g.json_name
                        flags |= (FLAG_POINTER if g.pointer else 0) | (FLAG_OMITEMPTY if g.omitempty else 0)
                        flags |= FLAG_INLINE if g.inline else 0
                    entries.append([f.number, json_name, f.type, flags])
                messages[msg.name] = entries
                if msg.list_wrapper:
                    wrappers.append(msg.name)
    return {
        "about": "Kubernetes protobuf messages, from upstream's generated.proto files and the Go types "
        "beside them (JSON names, omitempty, pointers, inlined fields); written by scripts/gen_protobuf_schema.py.",
        "sources": sources,
        "flags": {
            "repeated": FLAG_REPEATED,
            "pointer": FLAG_POINTER,
            "omitempty": FLAG_OMITEMPTY,
            "inline": FLAG_INLINE,
        },
        "packages": dict(sorted(packages.items())),
        "listWrappers": sorted(wrappers),
        "messages": dict(sorted(messages.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    default_out = Path(__file__).resolve().parent.parent / "src/kins/apiserver/protobuf_schema.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    schema = build(args.mirrors)
    # One message per line: small, and diffs of a regenerated table stay readable.
    lines = [
        "{",
        *(f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}," for k, v in schema.items() if k != "messages"),
        '"messages": {',
    ]
    msgs = schema["messages"]
    assert isinstance(msgs, dict)
    items = list(msgs.items())
    for i, (name, fields) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"{json.dumps(name)}: {json.dumps(fields, separators=(',', ':'))}{comma}")
    lines.extend(["}", "}"])
    args.out.write_text("\n".join(lines) + "\n")
    print(f"{args.out}: {len(msgs)} messages")


if __name__ == "__main__":
    main()
