"""``pods/NAME/ephemeralcontainers``: what a write through it may change (``kubectl debug``).

GET answers the Pod; PUT and PATCH (strategic, merge, JSON patch) are applied to the whole Pod
by the generic verbs, and ``merge`` keeps of the result only ``spec.ephemeralContainers``. As
upstream, ephemeral containers are only ever added: one already there may be neither removed
nor changed. The new list is then validated with the rest of the pod spec (names unique across
all containers, no ports, probes or resources, a target that exists).
"""

from __future__ import annotations

import msgspec
from msgspec.structs import replace

from .._errors import ValidationError
from ..api.core import Pod
from ..api.resources import BY_KIND
from ..api.validation.common import describe
from .errors import invalid


def check_create(pod: Pod) -> None:
    """A new pod has none: they are added to running pods only (422 as upstream words it)."""
    if pod.spec.ephemeralContainers:
        err = ValidationError(describe(pod), "spec.ephemeralContainers", "Forbidden: cannot be set on create")
        raise invalid(BY_KIND["Pod"], pod.name, [err])


def merge(old: Pod, new: Pod) -> Pod:
    """``old`` with the ephemeral containers of ``new`` (422 when one already there went or changed)."""
    path = "spec.ephemeralContainers"
    before = {c.name: c for c in old.spec.ephemeralContainers or []}
    after = {c.name: (i, c) for i, c in enumerate(new.spec.ephemeralContainers or [])}
    errors = []
    for name, c in before.items():
        if name not in after:
            errors.append(
                ValidationError(
                    describe(old), path, f'Forbidden: existing ephemeral containers "{name}" may not be removed'
                )
            )
        elif msgspec.to_builtins(after[name][1]) != msgspec.to_builtins(c):
            errors.append(
                ValidationError(
                    describe(old),
                    f"{path}[{after[name][0]}]",
                    f'Forbidden: existing ephemeral containers "{name}" may not be changed',
                )
            )
    if errors:
        raise invalid(BY_KIND["Pod"], old.name, errors)
    spec = replace(old.spec, ephemeralContainers=new.spec.ephemeralContainers)
    return replace(old, spec=spec, metadata=replace(old.metadata, resourceVersion=new.metadata.resourceVersion))
