"""The controller's command line: kins' own flags and ingress-nginx's upstream ones.

Upstream's manifests run ``/nginx-ingress-controller --election-id=... --configmap=...
--validating-webhook=:8443 ...`` (Go flags: ``--name=value``, ``--name value``, bare booleans).
Every flag upstream's controller documents is accepted; those kins' controller acts on are
``HONOURED``, the others are accepted and named in one log line, and anything else is an error
naming the flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..apps.flags import FlagError, FlagValue, parse_flags

# kins' own flags (the system pod gets --api and --token-file from the kubelet's environment).
KINS_FLAGS: dict[str, FlagValue] = {
    "api": "",
    "token-file": "",
    "ca-file": "",
    "dir": "",
    "class": "",  # kins' older spelling of --ingress-class
    "nginx": "/usr/sbin/nginx",
}

# ingress-nginx's flags (cmd/nginx/flags.go) with upstream's defaults; the type is the default's.
UPSTREAM_FLAGS: dict[str, FlagValue] = {
    "ingress-class": "nginx",
    "controller-class": "k8s.io/ingress-nginx",
    "watch-ingress-without-class": False,
    "ingress-class-by-name": False,
    "configmap": "",
    "publish-service": "",
    "publish-status-address": "",
    "update-status": True,
    "update-status-on-shutdown": True,
    "report-node-internal-ip-address": False,
    "default-ssl-certificate": "",
    "http-port": 80,
    "https-port": 443,
    "healthz-port": 10254,
    "healthz-host": "",
    "health-check-path": "/healthz",
    "election-id": "ingress-controller-leader",
    "election-ttl": "30s",
    "validating-webhook": "",
    "validating-webhook-certificate": "",
    "validating-webhook-key": "",
    "enable-metrics": True,
    # accepted, not acted on
    "annotations-prefix": "nginx.ingress.kubernetes.io",
    "apiserver-host": "",
    "kubeconfig": "",
    "default-backend-service": "",
    "default-server-port": 8181,
    "status-port": 10246,
    "stream-port": 10247,
    "profiler-port": 10245,
    "profiling": True,
    "ssl-passthrough-proxy-port": 442,
    "enable-ssl-passthrough": False,
    "enable-ssl-chain-completion": False,
    "enable-topology-aware-routing": False,
    "enable-annotation-validation": True,
    "disable-catch-all": False,
    "disable-full-test": False,
    "disable-svc-external-name": False,
    "disable-sync-events": False,
    "disable-leader-election": False,
    "tcp-services-configmap": "",
    "udp-services-configmap": "",
    "sync-period": "0s",
    "sync-rate-limit": "0.3",
    "watch-namespace": "",
    "watch-namespace-selector": "",
    "metrics-per-host": True,
    "metrics-per-undefined-host": False,
    "exclude-socket-metrics": "",
    "time-buckets": "",
    "length-buckets": "",
    "size-buckets": "",
    "monitor-max-batch-size": 10000,
    "post-shutdown-grace-period": 10,
    "shutdown-grace-period": 0,
    "dynamic-configuration-retries": 15,
    "internal-logger-address": "127.0.0.1:11514",
    "deep-inspect": True,
    "maxmind-license-key": "",
    "maxmind-edition-ids": "GeoLite2-City,GeoLite2-ASN",
    "v": 0,
    "logtostderr": True,
    "alsologtostderr": False,
    "stderrthreshold": "2",
}

HONOURED = frozenset(
    {
        "ingress-class",
        "controller-class",
        "watch-ingress-without-class",
        "configmap",
        "publish-service",
        "publish-status-address",
        "update-status",
        "report-node-internal-ip-address",
        "default-ssl-certificate",
        "http-port",
        "https-port",
        "healthz-port",
        "healthz-host",
        "health-check-path",
        "election-id",
        "validating-webhook",
        "validating-webhook-certificate",
        "validating-webhook-key",
        "disable-leader-election",
    }
)


@dataclass(frozen=True)
class Flags:
    """The parsed command line."""

    values: dict[str, FlagValue]
    given: frozenset[str]  # names that appeared on the command line
    ignored: tuple[str, ...] = field(default=())  # given, accepted, not acted on

    def text(self, name: str) -> str:
        v = self.values[name]
        assert isinstance(v, str)
        return v

    def number(self, name: str) -> int:
        v = self.values[name]
        assert isinstance(v, int) and not isinstance(v, bool)
        return v

    def flag(self, name: str) -> bool:
        v = self.values[name]
        assert isinstance(v, bool)
        return v


def _names(argv: Sequence[str]) -> set[str]:
    out = set()
    for a in argv:
        if a.startswith("-") and a not in ("-", "--"):
            out.add(a.lstrip("-").partition("=")[0])
    return out


def parse(argv: Sequence[str]) -> Flags:
    """The flags of ``argv``; FlagError names an unknown flag, a missing value or a bad one."""
    defaults = {**UPSTREAM_FLAGS, **KINS_FLAGS}
    try:
        values, rest = parse_flags(argv, defaults)
    except FlagError as e:
        raise FlagError(f"{e} (kins' ingress controller takes ingress-nginx's flags and --dir, --api, ...)") from None
    if rest:
        raise FlagError(f"unexpected argument {rest[0]!r}: the controller takes flags only")
    given = frozenset(_names(argv) & set(defaults))
    if values["class"]:
        values["ingress-class"] = values["class"]
    for required in ("api", "token-file"):
        if not values[required]:
            raise FlagError(f"--{required} is required (system pods get the API from their environment)")
    ignored = tuple(sorted(n for n in given if n in UPSTREAM_FLAGS and n not in HONOURED))
    return Flags(values=values, given=given, ignored=ignored)


def split_ref(ref: str, flag: str) -> tuple[str, str]:
    """``namespace/name`` of a flag's value."""
    ns, slash, name = ref.partition("/")
    if not slash or not ns or not name or "/" in name:
        raise FlagError(f'invalid argument "{ref}" for "--{flag}" flag: expected namespace/name')
    return ns, name


def split_listen(addr: str, flag: str) -> tuple[str, int]:
    """``host:port`` or ``:port`` (all addresses) of a listening flag."""
    host, colon, port = addr.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise FlagError(f'invalid argument "{addr}" for "--{flag}" flag: expected [host]:port')
    return host.strip("[]") or "0.0.0.0", int(port)
