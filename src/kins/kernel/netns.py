"""Network namespaces kins owns: naming, creation, removal, listing.

Every namespace kins makes is called ``kins-<cluster>-<plan name>`` (``kins-demo-node-node1``,
``kins-demo-pod-default-web-0``, ``kins-demo-underlay``). The prefix is the ownership mark: this
module refuses to create or remove any namespace without it, so a bug elsewhere can never touch a
namespace that some other program made.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from pyroute2 import netns as _netns

from .._errors import KernelError
from . import nsexec
from .syscalls import CLONE_NEWNET, setns

PREFIX = "kins-"
NETNS_DIR = "/var/run/netns"
IFNAMSIZ = 15  # usable characters of a Linux interface name

# Plan-level kinds: what follows the cluster prefix. Listing by kind keeps cluster "a" from
# claiming cluster "a-b"'s namespaces.
KINDS = ("underlay", "node-", "host-", "pod-")

_CLUSTER_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

T = TypeVar("T")


def cluster_prefix(cluster: str) -> str:
    if not _CLUSTER_RE.match(cluster):
        raise KernelError("netns", "", f"cluster name {cluster!r} must be a DNS-1123 label")
    return f"{PREFIX}{cluster}-"


def ns_name(cluster: str, plan_name: str) -> str:
    """Full namespace name for a plan-level name (``node-node1``, ``pod-default-web-0``)."""
    return cluster_prefix(cluster) + plan_name


def underlay_ns(cluster: str) -> str:
    return ns_name(cluster, "underlay")


def node_ns(cluster: str, node: str) -> str:
    return ns_name(cluster, f"node-{node}")


def host_ns(cluster: str, host: str) -> str:
    return ns_name(cluster, f"host-{host}")


def pod_ns(cluster: str, plan_netns: str) -> str:
    """A pod's namespace from ``PodPlan.netns``; the ``pod-`` kind is added if the plan lacks it."""
    name = plan_netns if plan_netns.startswith("pod-") else f"pod-{plan_netns}"
    return ns_name(cluster, name)


def ifname(prefix: str, name: str) -> str:
    """``<prefix><name>`` if it fits IFNAMSIZ, else ``<prefix>`` + a stable hash of the name."""
    full = prefix + name
    if len(full) <= IFNAMSIZ:
        return full
    return prefix + hashlib.sha256(name.encode()).hexdigest()[: IFNAMSIZ - len(prefix)]


def check_owned(name: str, cluster: str | None = None) -> None:
    """Raise unless ``name`` carries kins' prefix (and this cluster's, when given)."""
    want = cluster_prefix(cluster) if cluster is not None else PREFIX
    if not name.startswith(want) or "/" in name or name in (".", ".."):
        raise KernelError("netns", name, f"refusing a namespace without the {want!r} prefix")


def path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def exec_argv(name: str, argv: list[str]) -> list[str]:
    """The host command line that runs ``argv`` in kins' namespace ``name`` (as ``ip netns
    exec`` would: see ``nsexec``)."""
    if not argv:
        raise ValueError("exec needs a command")
    check_owned(name)
    if not exists(name):
        raise KernelError("netns exec", name, "no such network namespace")
    boot = nsexec.BOOT.format(kins=nsexec.KINS_DIR)
    return [sys.executable, "-I", "-S", "-c", boot, path(name), *argv]


def run_tool(name: str, argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """A netfilter tool (iptables, ipset, ...) in the namespace's network, its output captured:
    ``nsenter --net`` so that only that namespace's tables and sets are seen."""
    check_owned(name)
    if not exists(name):
        raise KernelError(argv[0], name, "no such namespace")
    return subprocess.run(
        ["nsenter", f"--net={path(name)}", "--", *argv], input=stdin, capture_output=True, text=True, check=False
    )


def create(name: str) -> bool:
    """Create the namespace if missing; True when it was created now."""
    check_owned(name)
    if exists(name):
        return False
    try:
        _netns.create(name)
    except OSError as e:
        if e.errno == errno.EEXIST:
            return False
        raise KernelError("netns add", name, os.strerror(e.errno or 0) or str(e)) from e
    return True


def remove(name: str) -> bool:
    """Remove the namespace if present; True when it was removed now. Devices inside it go with
    it once no process holds the namespace any more."""
    check_owned(name)
    if not exists(name):
        return False
    try:
        _netns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise KernelError("netns del", name, os.strerror(e.errno or 0) or str(e)) from e
    return True


def list_namespaces(cluster: str | None = None) -> list[str]:
    """kins namespaces on this machine, of one cluster or of all clusters, sorted."""
    names = sorted(n for n in _netns.listnetns() if n.startswith(PREFIX))
    if cluster is None:
        return names
    pre = cluster_prefix(cluster)
    return [n for n in names if n.startswith(pre) and n[len(pre) :].startswith(KINDS)]


def _setns(name: str) -> None:
    fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
    except OSError as e:
        raise KernelError("setns", name, os.strerror(e.errno or 0)) from None
    finally:
        os.close(fd)


def run_in(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a short-lived thread that has entered the namespace.

    setns(CLONE_NEWNET) changes only the calling thread, and the thread ends right after, so the
    process (and the host's /proc/sys/net as the rest of the program sees it) is never moved.
    """
    check_owned(name)
    box: dict[str, object] = {}

    def target() -> None:
        try:
            _setns(name)
            box["value"] = fn()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    t = threading.Thread(target=target, name=f"netns:{name}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
