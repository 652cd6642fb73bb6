"""What the CLI's commands share: output helpers and the source of objects (offline or live)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .._errors import KinsError
from ..api.meta import LabelSelector, Object

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


def source(files: list[str], cluster: str | None, name: str | None) -> Source:
    if files:
        return OfflineSource(files, cluster)
    try:
        return LiveSource(name)
    except KinsError as e:
        raise KinsError(f"{e} (or read manifests offline with -f)") from None
