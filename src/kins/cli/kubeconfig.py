"""``kins kubeconfig``: the running cluster's kubeconfig, for kubectl and client libraries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .common import NameOpt, out


@app.command()
def kubeconfig(
    name: NameOpt = None,
    path: Annotated[bool, typer.Option("--path", help="Print the file's path instead of its content.")] = False,
) -> None:
    """Print the cluster's kubeconfig (e.g. `export KUBECONFIG=$(kins kubeconfig --path)`)."""
    from ..apiserver.kubeconfig import kubeconfig_path, write_kubeconfig
    from ..daemon.state import pick_cluster

    info = pick_cluster(name)
    file = kubeconfig_path(info.state_dir)
    if not file.exists():
        # A daemon started by an older kins wrote none: the same file from what it did write.
        write_kubeconfig(info.state_dir, info.name, info.url)
    out(str(file) if path else Path(file).read_text())
