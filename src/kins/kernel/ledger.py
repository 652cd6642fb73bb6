"""The record of every kernel object and host file a cluster created.

``ledger.json`` in the cluster's state directory lists namespaces (with their kind and owning
node) and host-side files. An entry is written *before* the object is made, so a crash between
the two leaves at most a record of something absent, never an object nobody knows about.
``teardown`` removes exactly what is listed and nothing else, and may run any number of times.

Writes are atomic (temp file, fsync, rename) and serialised with an flock, because the node agent
and the pod runtime may record into the same ledger.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import netns

LEDGER_FILE = "ledger.json"
_LOCK_FILE = ".ledger.lock"
# Teardown order: pods first (their veths hang off nodes), the underlay last.
_ORDER = {"pod": 0, "host": 1, "node": 2, "underlay": 3}


@dataclass
class NetnsEntry:
    kind: str  # underlay | node | host | pod
    owner: str | None = None  # pods: the node they run on


@dataclass
class Ledger:
    cluster: str
    state_dir: Path
    netns: dict[str, NetnsEntry] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # small per-cluster facts (e.g. applied hashes)

    # --- reading / writing ---
    @property
    def path(self) -> Path:
        return self.state_dir / LEDGER_FILE

    @classmethod
    def load(cls, cluster: str, state_dir: str | Path) -> Ledger:
        netns.cluster_prefix(cluster)  # validates the name
        led = cls(cluster, Path(state_dir))
        led._read()
        return led

    def _read(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.netns, self.files, self.data = {}, [], {}
            return
        if raw.get("cluster") != self.cluster:
            raise ValueError(f"{self.path} belongs to cluster {raw.get('cluster')!r}, not {self.cluster!r}")
        self.netns = {k: NetnsEntry(**v) for k, v in raw.get("netns", {}).items()}
        self.files = list(raw.get("files", []))
        self.data = dict(raw.get("data", {}))

    def _write(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        doc = {
            "cluster": self.cluster,
            "netns": {k: {"kind": v.kind, "owner": v.owner} for k, v in sorted(self.netns.items())},
            "files": self.files,
            "data": self.data,
        }
        tmp = self.path.with_name(f".{LEDGER_FILE}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def update(self) -> Iterator[Ledger]:
        """Lock, re-read, let the caller change the record, write it back if it changed."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / _LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._read()
                before = (dict(self.netns), list(self.files), json.dumps(self.data, sort_keys=True))
                yield self
                after = (self.netns, self.files, json.dumps(self.data, sort_keys=True))
                if before != after:
                    self._write()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- recording ---
    def add_netns(self, name: str, kind: str, owner: str | None = None) -> None:
        netns.check_owned(name, self.cluster)
        want = NetnsEntry(kind, owner)
        if self.netns.get(name) == want:
            return
        with self.update():
            self.netns[name] = want

    def drop_netns(self, name: str) -> None:
        if name not in self.netns:
            return
        with self.update():
            self.netns.pop(name, None)

    def add_file(self, path: str | Path) -> None:
        """Record a host-side file or directory (e.g. ``/etc/netns/<ns>/resolv.conf``)."""
        p = str(Path(path).absolute())
        self._check_file(p)
        if p in self.files:
            return
        with self.update():
            if p not in self.files:
                self.files.append(p)

    def set_data(self, key: str, value: Any) -> None:
        if self.data.get(key) == value:
            return
        with self.update():
            self.data[key] = value

    def pods_of(self, node: str) -> list[str]:
        return sorted(n for n, e in self.netns.items() if e.kind == "pod" and e.owner == node)

    def _check_file(self, p: str) -> None:
        # Only paths that are plainly the cluster's: inside its state dir or named after one of
        # its namespaces. Anything else is refused rather than ever deleted.
        sd = str(self.state_dir.absolute())
        if p == sd or p.startswith(sd + "/"):
            return
        if netns.cluster_prefix(self.cluster) in p and "/.." not in p:
            return
        raise ValueError(f"{p} is neither in {sd} nor named after a kins-{self.cluster}- namespace")


def teardown(cluster: str, state_dir: str | Path) -> list[str]:
    """Remove every namespace and host file the ledger lists, then the ledger itself.

    Returns what was removed. Idempotent; the host's own namespace is never touched (removing a
    kins namespace destroys its devices, and the veth peers in other kins namespaces with them).
    """
    led = Ledger.load(cluster, state_dir)
    removed: list[str] = []
    if not led.path.exists():
        return removed
    with led.update():
        for name, _entry in sorted(led.netns.items(), key=lambda kv: (_ORDER.get(kv[1].kind, 9), kv[0])):
            netns.check_owned(name, cluster)
            if netns.remove(name):
                removed.append(f"netns {name}")
            del led.netns[name]
        for p in reversed(led.files):
            led._check_file(p)
            try:
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
                removed.append(f"file {p}")
            except FileNotFoundError:
                pass
        led.files = []
        led.data = {}
    for own in (led.path, led.state_dir / _LOCK_FILE):
        with contextlib.suppress(FileNotFoundError):
            own.unlink()
    return removed


def prefixed_namespaces(cluster: str, others: Iterable[str] = ()) -> list[str]:
    """The cluster's namespaces found by their prefix alone (for a cluster whose state directory,
    and ledger, is gone), in teardown order: pods first, the underlay last. ``others``: the
    names of other clusters on this machine, whose namespaces are left out even where this
    cluster's prefix also fits them (cluster ``a`` and cluster ``a-node``'s ``kins-a-node-node-n1``)."""
    spare: set[str] = set()
    for other in others:
        if other != cluster and other.startswith(cluster + "-"):
            spare.update(netns.list_namespaces(other))
    pre = netns.cluster_prefix(cluster)

    def order(name: str) -> tuple[int, str]:
        return _ORDER.get(name[len(pre) :].split("-", 1)[0], 9), name

    return sorted((n for n in netns.list_namespaces(cluster) if n not in spare), key=order)


def sweep(cluster: str, names: Iterable[str]) -> list[str]:
    """Remove the namespaces ``names`` (``prefixed_namespaces``), each checked to carry the
    cluster's prefix; what was removed."""
    removed: list[str] = []
    for name in names:
        netns.check_owned(name, cluster)
        if netns.remove(name):
            removed.append(f"netns {name}")
    return removed
