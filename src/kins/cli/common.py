"""What the CLI's commands share: output helpers, the source of objects (offline or live), and
starting and filling a live cluster (used by both `apply` and `up`)."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .._errors import KinsError, NotFound
from ..api.meta import LabelSelector, Object

if TYPE_CHECKING:
    from ..clientexec import Endpoint

FilesOpt = Annotated[
    list[str],
    typer.Option("-f", "--filename", help="Manifest file, directory or - for stdin (repeatable)."),
]
ClusterOpt = Annotated[
    str | None, typer.Option("--cluster", help="Cluster file (kind: Cluster); default: the article's cluster.")
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="Cluster name (default: $KINS_CLUSTER, else the only running cluster)."),
]


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


class Source:
    """Objects to show: from manifests (offline, converged in memory) or from a live cluster."""

    def list(self, kind: str, ns: str | None, sel: LabelSelector | None) -> list[Object]:
        raise NotImplementedError

    def learn_custom_kinds(self) -> bool:
        """Serve here the kinds of the source's CustomResourceDefinitions; True if any was new."""
        from ..api.apiextensions import CustomResourceDefinition
        from ..api.custom import DefinitionConflict, owner_of, register_definition

        new = False
        for crd in self.list("CustomResourceDefinition", None, None):
            assert isinstance(crd, CustomResourceDefinition)
            if owner_of(crd.spec.names.kind) == crd.name:
                continue
            try:
                new = register_definition(crd) or new
            except DefinitionConflict:
                continue
        return new


class OfflineSource(Source):
    def __init__(self, files: list[str], cluster: str | None) -> None:
        from ..offline import open_offline

        self.oc = open_offline(files, cluster)

    def list(self, kind: str, ns: str | None, sel: LabelSelector | None) -> list[Object]:
        return self.oc.store.list(kind, ns, sel)[0]


class LiveSource(Source):
    def __init__(self, name: str | None) -> None:
        self.client = live_client(name)

    def list(self, kind: str, ns: str | None, sel: LabelSelector | None) -> list[Object]:
        return self.client.list(kind, ns, selector=sel, all_namespaces=ns is None)


def live_client(name: str | None):  # type: ignore[no-untyped-def]
    from ..apiserver.auth import read_token
    from ..client import Client
    from ..daemon.state import pick_cluster

    info = pick_cluster(name)
    return Client(info.url, read_token(info.state_dir), ca_file=info.ca_file)


def live_endpoint(name: str | None) -> Endpoint:
    """Where the live cluster's API is, for exec's own connections (no HTTP client to load)."""
    from ..apiserver.auth import read_token
    from ..clientexec import Endpoint
    from ..daemon.state import pick_cluster

    info = pick_cluster(name)
    return Endpoint(info.url, read_token(info.state_dir), info.ca_file)


def source(files: list[str], cluster: str | None, name: str | None) -> Source:
    if files:
        return OfflineSource(files, cluster)
    try:
        return LiveSource(name)
    except KinsError as e:
        raise KinsError(f"{e} (or read manifests offline with -f)") from None


# The cluster's add-ons among the article's manifests: what kind and k3d always run (cluster DNS)
# and the article's ingress controller. The rest are the article's workloads.
ADDON_MANIFESTS = frozenset({"kube-dns.yaml", "kube-dns-service.yaml", "ingress-nginx.yaml"})


def article_manifests(*, addons_only: bool = False) -> list[str]:
    """The article's manifests shipped with kins (deployments, services, DNS, ingress); with
    ``addons_only`` the cluster DNS and ingress controller only."""
    base = resources.files("kins").joinpath("data/article")
    names = [p.name for p in base.iterdir() if p.name.endswith(".yaml")]
    return sorted(str(base.joinpath(n)) for n in names if not addons_only or n in ADDON_MANIFESTS)


def apply_all(client, objs: list, *, report: bool = False) -> None:  # type: ignore[no-untyped-def]
    """All or nothing: every object is first applied as a dry run (validation, address and port
    allocation on the server), and only if all pass are they applied for real; namespaces that
    the objects live in are created first."""
    from ..api.apiextensions import CustomResourceDefinition
    from ..api.core import Namespace
    from ..control.offline import namespace_object

    # Definitions go first; objects of the kinds they define cannot be tried on the server before
    # them (they were checked against their schema when loaded).
    defined = {o.spec.names.kind for o in objs if isinstance(o, CustomResourceDefinition)}
    objs = sorted(objs, key=lambda o: not isinstance(o, CustomResourceDefinition))
    for o in objs:
        if o.KIND not in defined:
            client.apply(o, dry_run=True)
    have = {n.name for n in client.list("Namespace")}
    for ns in sorted(
        {o.namespace for o in objs if o.NAMESPACED} - have - {o.name for o in objs if isinstance(o, Namespace)}
    ):
        client.create(namespace_object(ns))
    for o in objs:
        existed = True
        try:
            client.get(o.KIND, o.namespace if o.NAMESPACED else None, o.name)
        except NotFound:
            existed = False
        client.apply(o)
        if report:
            out(f"{o.kind.lower()}/{o.name} {'configured' if existed else 'created'}")


def spawn_daemon(name: str, state: Path) -> subprocess.Popen[bytes]:
    log = open(state / "daemon.out", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "kins.daemon.main", "--name", name, "--state-dir", str(state)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
    )
