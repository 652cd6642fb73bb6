"""The ``kins`` typer application, on its own so that command modules register on it without
importing the package that assembles them."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="kins",
    help="Kubernetes IN Namespaces: a Kubernetes cluster's network, for real, in Linux network namespaces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
