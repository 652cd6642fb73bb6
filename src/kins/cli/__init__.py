"""The ``kins`` command."""

from __future__ import annotations

import gc
import sys

from .._errors import KinsError, MultiValidationError
from .app import app

# Each command module registers its commands on the app when imported: the help lists them in
# import order, so show (render, get, describe) comes first.
# isort: off
from . import show
from . import cluster, kubeconfig, trace, wait
from . import policy
from . import agent

# isort: on

__all__ = ["agent", "app", "cluster", "kubeconfig", "main", "policy", "show", "trace", "wait"]


def main() -> None:
    # Commands are short-lived and build large object graphs without cycles (a 10,000-Service
    # dump is millions of objects): the cyclic collector would only rescan them, again and again.
    gc.disable()
    try:
        app()
    except MultiValidationError as e:
        for err in e.errors:
            sys.stderr.write(f"error: {err.render()}\n")
        sys.exit(1)
    except KinsError as e:
        sys.stderr.write(f"{e}\n" if str(e).startswith(("error", "Error")) else f"error: {e}\n")
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
