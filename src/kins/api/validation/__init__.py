"""Validation as the Kubernetes API server does it, with its wording.

Each error names the object (``Service default/web``), the field path (``spec.ports[0].port``) and
a message in the API server's words (``Invalid value: 0: must be between 1 and 65535, inclusive``),
so what kins refuses reads the way ``kubectl apply`` would have refused it.

The checks run on objects as written, before defaulting: a field left out is only an error where
the API server's defaulting would not fill it in. The allocator checks that depend on the cluster
(clusterIP inside ``services.cidr``, nodePort inside the node-port range) run when a ClusterConfig
is given.

``validate`` dispatches on the object's type to the checks of its API group (one module each);
``common`` holds what they share.
"""

from __future__ import annotations

from ..._errors import MultiValidationError, ValidationError
from ..config import ClusterConfig
from ..core import Service
from ..meta import Object
from . import apps, batch, core, discovery, extensions, networking, policy, rbac, scheduling, storage
from .common import Check, Errors, check_metadata, describe, format_value

__all__ = ["validate", "validate_all"]

_KIND_CHECKS: dict[type[Object], Check] = {
    **core.CHECKS,
    **apps.CHECKS,
    **batch.CHECKS,
    **discovery.CHECKS,
    **networking.CHECKS,
    **policy.CHECKS,
    **storage.CHECKS,
    **scheduling.CHECKS,
    **extensions.CHECKS,
    **rbac.CHECKS,
}


def validate(obj: Object, cfg: ClusterConfig | None = None) -> list[ValidationError]:
    """Every reason the API server would refuse ``obj`` (empty when it would accept it).

    With ``cfg``, the allocator checks too: clusterIP inside ``services.cidr`` and nodePort /
    healthCheckNodePort inside ``services.nodePortRange``.
    """
    e = Errors(obj)
    check_metadata(e, obj)
    check = _KIND_CHECKS.get(type(obj))
    if check is not None:
        check(e, obj, cfg)
    return e.errs


def validate_all(objs: list[Object], cfg: ClusterConfig | None = None) -> None:
    """Validates every object; raises MultiValidationError with all errors, including any
    object (same kind, namespace and name) that appears twice in the input."""
    errors: list[ValidationError] = []
    first: dict[tuple[str, str, str], int] = {}
    for i, obj in enumerate(objs):
        errors.extend(validate(obj, cfg))
        name = obj.metadata.name
        if not name:
            continue
        key = (obj.KIND, obj.namespace, name)
        if key in first:
            errors.append(
                ValidationError(
                    describe(obj),
                    "metadata.name",
                    f"Duplicate value: {format_value(name)}: the same {obj.KIND} is already object "
                    f"#{first[key] + 1} of the input",
                )
            )
        else:
            first[key] = i
    errors.extend(_requested_twice(objs))
    if errors:
        raise MultiValidationError(errors)


def _requested_twice(objs: list[Object]) -> list[ValidationError]:
    """Two Services of one input asking for the same ClusterIP or node port: the API server would
    refuse the second, so the input is refused as a whole before anything is written."""
    errors: list[ValidationError] = []
    ips: dict[str, str] = {}
    ports: dict[tuple[int, str], str] = {}
    for obj in objs:
        if not isinstance(obj, Service):
            continue
        who = describe(obj)
        ip = obj.spec.clusterIP
        if ip and ip != "None":
            if ip in ips and ips[ip] != who:
                errors.append(
                    ValidationError(
                        who,
                        "spec.clusterIP",
                        f"Invalid value: {format_value(ip)}: also requested by {ips[ip]} in this input",
                    )
                )
            ips.setdefault(ip, who)
        for i, p in enumerate(obj.spec.ports or []):
            if not p.nodePort:
                continue
            k = (p.nodePort, (p.protocol or "TCP").upper())
            if k in ports and ports[k] != who:
                errors.append(
                    ValidationError(
                        who,
                        f"spec.ports[{i}].nodePort",
                        f"Invalid value: {p.nodePort}: provided port is already allocated (requested by "
                        f"{ports[k]} in this input)",
                    )
                )
            ports.setdefault(k, who)
    return errors
