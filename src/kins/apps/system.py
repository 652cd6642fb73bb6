"""Built-in images of the cluster's own add-ons and of the upstream install manifests kins
runs: cluster DNS, the nginx ingress controller, kube-webhook-certgen and metrics-server.

They are kins programs with their own dependencies (dnslib, httpx, cryptography), so the
container replaces its forked process with a fresh interpreter running the program: the fork
server stays lean and the container keeps its pid.

Where the API is: the kubelet gives system pods ``KINS_API`` and ``KINS_TOKEN_FILE`` (the
daemon's socket, and their projected ServiceAccount token). Other pods reach it as in-cluster
clients do: the ``kubernetes`` Service (``KUBERNETES_SERVICE_HOST``/``_PORT``) with the
service-account token and CA mounted at ``/var/run/secrets/kubernetes.io/serviceaccount``.
"""

from __future__ import annotations

import os
import sys

import kins

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def api_args(env: dict[str, str] | None = None, sa_dir: str = SERVICE_ACCOUNT_DIR) -> list[str] | None:
    """``--api``/``--token-file`` (and ``--ca-file``) for the program, or None when the pod has
    no way to the API."""
    env = dict(os.environ) if env is None else env
    api, token = env.get("KINS_API"), env.get("KINS_TOKEN_FILE")
    if api and token:
        return ["--api", _reachable(api), "--token-file", _reachable(token)]
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT") or "443"
    token = os.path.join(sa_dir, "token")
    if host and os.path.exists(token):
        out = ["--api", f"https://{host}:{port}", "--token-file", token]
        ca = os.path.join(sa_dir, "ca.crt")
        return [*out, "--ca-file", ca] if os.path.exists(ca) else out
    return None


def _reachable(path: str) -> str:
    """``path`` (or ``unix:path``) of the host's filesystem as this pod can reach it: a volume
    the pod mounts above it (an emptyDir at /tmp, the state directory below /tmp) hides it in
    the pod's mount namespace, while kins' fork server, the container's parent, still sees the
    host's: through its ``/proc/<pid>/root``."""
    prefix = "unix:" if path.startswith("unix:") else ""
    plain = path.removeprefix(prefix)
    if not plain.startswith("/") or os.path.exists(plain):
        return path
    via = f"/proc/{os.getppid()}/root{plain}"
    return prefix + via if os.path.exists(via) else path


def _exec(module: str, argv: list[str]) -> int:
    api = api_args()
    if api is None:
        sys.stderr.write(
            f"{module}: no API to talk to: KINS_API and KINS_TOKEN_FILE (system pods get them) or a"
            f" service-account token in {SERVICE_ACCOUNT_DIR} and KUBERNETES_SERVICE_HOST must be set\n"
        )
        return 1
    # The interpreter and the kins of the fork server, reached as the pod can reach them: a
    # volume at /tmp (metrics-server's emptyDir) hides a checkout or a venv below /tmp.
    exe = _reachable(sys.executable)
    args = [exe, "-m", module, *api, *argv]
    # The program comes from the same kins as the fork server (the pod's environment has no
    # PYTHONPATH of its own to say otherwise).
    src = _reachable(os.path.dirname(os.path.abspath(next(iter(kins.__path__)))))
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src}
    # Libraries the image would preload (ingress-nginx's LD_PRELOAD=/usr/local/lib/libmimalloc.so)
    # are files of that image: the host's loader would complain about each missing one.
    preload = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if os.path.exists(p)]
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
    else:
        env.pop("LD_PRELOAD", None)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(exe, args, env)
    return 127  # not reached


def coredns_main(argv: list[str]) -> int:
    """``registry.k8s.io/coredns/coredns``: kins' DNS server, answering per the Kubernetes DNS spec."""
    return _exec("kins.dns", argv)


def ingress_main(argv: list[str]) -> int:
    """``registry.k8s.io/ingress-nginx/controller``: kins' controller driving real nginx."""
    return _exec("kins.ingress", argv)


def certgen_main(argv: list[str]) -> int:
    """``registry.k8s.io/ingress-nginx/kube-webhook-certgen``: the admission webhook's certificate."""
    return _exec("kins.certgen", argv)


def metrics_server_main(argv: list[str]) -> int:
    """``registry.k8s.io/metrics-server/metrics-server``: the serving side of an APIService whose
    group kins' API serves itself (``metrics.k8s.io``)."""
    return _exec("kins.metricsserver", argv)
