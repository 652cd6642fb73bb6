"""The committed protobuf schema is what scripts/gen_protobuf_schema.py writes from upstream."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "src/kins/apiserver/protobuf_schema.json"
MIRRORS = Path("/work/.mirror")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protobuf_schema", ROOT / "scripts/gen_protobuf_schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_committed_schema_is_regenerated_unchanged() -> None:
    committed = json.loads(SCHEMA.read_text())
    for source in committed["sources"]:
        repo = source["repository"].removeprefix("github.com/").replace("/", "+")
        git_dir = MIRRORS / repo / "repo"
        if not git_dir.is_dir():
            pytest.skip(f"no mirror of {source['repository']} at {git_dir}: cannot regenerate the schema here")
        head = subprocess.run(
            ["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if head != source["commit"]:
            pytest.skip(f"the mirror of {source['repository']} is at {head}, the schema at {source['commit']}")
    regenerated = _generator().build(MIRRORS)
    assert regenerated == committed


def test_json_names_come_from_the_go_tags() -> None:
    """Where a JSON name differs from the protobuf field's, the Go struct tag wins."""
    gen = _generator()
    go = gen.parse_go(
        """
type Volume struct {
	Name string `json:"name" protobuf:"bytes,1,opt,name=name"`
	VolumeSource `json:",inline" protobuf:"bytes,2,opt,name=volumeSource"`
}
type Rule struct {
	APIGroups []string `json:"apiGroups,omitempty" protobuf:"bytes,1,rep,name=aPIGroups"`
	Replicas *int32 `json:"replicas,omitempty" protobuf:"varint,2,opt,name=replicas"`
	Skipped string `json:"-" protobuf:"bytes,3,opt,name=skipped"`
}
"""
    )
    assert go["Volume"][2].inline and go["Volume"][1].json_name == "name"
    assert go["Rule"][1].json_name == "apiGroups" and go["Rule"][1].omitempty and not go["Rule"][1].pointer
    assert go["Rule"][2].pointer
    assert 3 not in go["Rule"]
