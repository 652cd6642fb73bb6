"""``kins agent``: one node's agents as a process (what the daemon starts per node with
``agents.mode: process``, and what runs on another host against a cluster's API)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import app


@app.command()
def agent(
    node: Annotated[str, typer.Option("--node", help="The node whose agents to run.")],
    api: Annotated[str, typer.Option("--api", help="The API: https://host:port or unix:/path/to/api.sock.")],
    token_file: Annotated[Path, typer.Option("--token-file", help="A file holding the API's bearer token.")],
    ca_file: Annotated[str | None, typer.Option("--ca-file", help="The API's CA certificate (https).")] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Where kernel objects are recorded (default: the cluster's).")
    ] = None,
    log_file: Annotated[Path | None, typer.Option("--log-file", help="Log here instead of stderr.")] = None,
) -> None:
    """Run a node's agents on the API: overlay, proxy, LB speaker, health checks, ipmasq, kubelet."""
    from ..agents.process import main as agent_main

    argv = ["--node", node, "--api", api, "--token-file", str(token_file)]
    for flag, value in (("--ca-file", ca_file), ("--state-dir", state_dir), ("--log-file", log_file)):
        if value is not None:
            argv += [flag, str(value)]
    sys.exit(agent_main(argv))
