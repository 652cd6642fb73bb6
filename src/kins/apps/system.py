"""Built-in images of the cluster's own add-ons: cluster DNS and the nginx ingress controller.

Both are kins programs with their own dependencies (dnslib, httpx), so the container replaces its
forked process with a fresh interpreter running the program: the fork server stays lean and the
container keeps its pid. The kubelet gives system pods ``KINS_API`` and ``KINS_TOKEN_FILE`` (their
projected ServiceAccount token).
"""

from __future__ import annotations

import os
import sys


def _exec(module: str, argv: list[str]) -> int:
    api = os.environ.get("KINS_API")
    token = os.environ.get("KINS_TOKEN_FILE")
    if not api or not token:
        sys.stderr.write(f"{module}: KINS_API and KINS_TOKEN_FILE must be set (system pods get them)\n")
        return 1
    args = [sys.executable, "-m", module, "--api", api, "--token-file", token, *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, args)
    return 127  # not reached


def coredns_main(argv: list[str]) -> int:
    """``registry.k8s.io/coredns/coredns``: kins' DNS server, answering per the Kubernetes DNS spec."""
    return _exec("kins.dns", argv)


def ingress_main(argv: list[str]) -> int:
    """``registry.k8s.io/ingress-nginx/controller``: kins' controller driving real nginx."""
    return _exec("kins.ingress", argv)
