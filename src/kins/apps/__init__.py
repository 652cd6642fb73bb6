"""Built-in images: container images kins runs as Python code in a forked process.

``resolve`` maps an image plus the container's command/args to an ``App``, or returns None when
the container should run its command as a host binary. It raises ``AppError`` for a built-in
image asked to do something kins does not implement.

Importing this package loads every built-in app: the fork server does it once, so all pods
share those pages copy-on-write. Only standard-library modules are used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kins.apps import agnhost, shop, system

Main = Callable[[list[str]], int]


class AppError(ValueError):
    """A built-in image cannot run with these arguments."""


@dataclass(frozen=True)
class App:
    name: str  # short, shown by ps
    main: Main
    argv: tuple[str, ...]

    def run(self) -> int:
        return self.main(list(self.argv))


AGNHOST_SUBCOMMANDS: dict[str, Main] = {
    "netexec": agnhost.netexec_main,
    "serve-hostname": agnhost.serve_hostname_main,
    "connect": agnhost.connect_main,
    "pause": agnhost.pause_main,
}


def image_repository(image: str) -> str:
    """``registry/path/name`` without ``:tag`` or ``@digest``."""
    repo = image.split("@", 1)[0]
    head, slash, last = repo.rpartition("/")
    return head + slash + last.split(":", 1)[0]


def _entry(command: Sequence[str], *names: str) -> bool:
    return bool(command) and command[0].rsplit("/", 1)[-1] in names


def resolve(image: str, command: Sequence[str] = (), args: Sequence[str] = ()) -> App | None:
    repo = image_repository(image)
    base = repo.rsplit("/", 1)[-1]
    if base == "agnhost":
        # The image's entrypoint is /agnhost: a command naming it is the same as no command.
        if command and not _entry(command, "agnhost"):
            return None
        argv = [*command[1:], *args]
        if not argv:
            raise AppError(f"{image}: agnhost needs a subcommand (one of {', '.join(AGNHOST_SUBCOMMANDS)})")
        main = AGNHOST_SUBCOMMANDS.get(argv[0])
        if main is None:
            raise AppError(
                f"{image}: agnhost subcommand {argv[0]!r} is not built into kins"
                f" (built in: {', '.join(AGNHOST_SUBCOMMANDS)})"
            )
        return App(argv[0], main, tuple(argv[1:]))
    if repo.endswith("ingress-nginx/controller") or base == "nginx-ingress-controller":
        # The image's entrypoint runs /nginx-ingress-controller with the args; the upstream
        # manifests put that path first in args (or in command): the same as leaving it out.
        if command and not _entry(command, "nginx-ingress-controller"):
            return None
        argv = [*command[1:], *args]
        if not command and _entry(argv, "nginx-ingress-controller"):
            argv = argv[1:]
        return App("nginx-ingress-controller", system.ingress_main, tuple(argv))
    if repo.endswith("ingress-nginx/kube-webhook-certgen") or base == "kube-webhook-certgen":
        return None if command else App("kube-webhook-certgen", system.certgen_main, tuple(args))
    if repo.endswith("metrics-server/metrics-server") or base == "metrics-server":
        if command and not _entry(command, "metrics-server"):
            return None
        return App("metrics-server", system.metrics_server_main, (*command[1:], *args))
    if command:
        return None
    if repo.endswith("coredns/coredns") or base in ("kube-dns", "k8s-dns-kube-dns"):
        return App("coredns", system.coredns_main, tuple(args))
    if base == "pause":
        return App("pause", agnhost.pause_main, tuple(args))
    if "business-manager" in base:
        return App("business-manager", shop.business_manager_main, tuple(args))
    if "data-product" in base:
        return App("data-product", shop.data_product_main, tuple(args))
    return None


def is_builtin(image: str) -> bool:
    base = image_repository(image).rsplit("/", 1)[-1]
    return base in ("agnhost", "pause") or "business-manager" in base or "data-product" in base
