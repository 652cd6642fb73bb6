"""The cluster's kubeconfig: how kubectl and Kubernetes client libraries reach the API.

It names the API's loopback URL, trusts the cluster's self-signed certificate (embedded, so
the file works when copied elsewhere) and carries the bearer token, so it is written 0600 like
the token itself. The cluster, user and context are all ``kins-<name>``, and the context is the
current one.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from . import auth

KUBECONFIG_FILE = "kubeconfig"


def kubeconfig_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / KUBECONFIG_FILE


def context_name(cluster: str) -> str:
    return f"kins-{cluster}"


def _q(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar: safe for any name, URL or token.
    return json.dumps(text)


def render_kubeconfig(cluster: str, server: str, ca_pem: bytes, token: str) -> str:
    """The kubeconfig text (YAML) for ``cluster`` served at ``server``."""
    ctx = _q(context_name(cluster))
    ca = base64.b64encode(ca_pem).decode()
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "preferences: {}\n"
        "clusters:\n"
        f"- name: {ctx}\n"
        "  cluster:\n"
        f"    server: {_q(server)}\n"
        f"    certificate-authority-data: {ca}\n"
        "users:\n"
        f"- name: {ctx}\n"
        "  user:\n"
        f"    token: {_q(token)}\n"
        "contexts:\n"
        f"- name: {ctx}\n"
        "  context:\n"
        f"    cluster: {ctx}\n"
        f"    user: {ctx}\n"
        "    namespace: default\n"
        f"current-context: {ctx}\n"
    )


def write_kubeconfig(state_dir: str | os.PathLike[str], cluster: str, server: str) -> Path:
    """Write ``<state dir>/kubeconfig`` (0600) from the stored token and certificate."""
    cert = Path(state_dir) / auth.CERT_FILE
    text = render_kubeconfig(cluster, server, cert.read_bytes(), auth.read_token(state_dir))
    return auth.write_private_file(kubeconfig_path(state_dir), text)
