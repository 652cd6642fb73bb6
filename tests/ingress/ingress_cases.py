"""The Ingress test cases under tests/golden/ingress, with Services and EndpointSlices made up
for every backend a case names but does not define (like the conformance harness: Service port
8080 named ``http`` -> targetPort 3000 on two pods)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kins.api.core import Secret, Service, ServicePort, ServiceSpec
from kins.api.discovery import Endpoint, EndpointConditions, EndpointSlice, EndpointSlicePort
from kins.api.load import load_paths
from kins.api.meta import Object, ObjectMeta
from kins.api.networking import Ingress, IngressClass
from kins.ingress import IngressConfig, Rendered, render

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "ingress"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml") if p.stem != "secrets")

# Endpoint addresses of made-up backend number i (0-based): two pods, one per article node.
Addresses = Callable[[int], list[tuple[str, int]]]


def article_addresses(i: int) -> list[tuple[str, int]]:
    return [(f"172.30.76.{10 + i}", 3000), (f"172.30.9.{10 + i}", 3000)]


@dataclass
class Case:
    name: str
    ingresses: list[Ingress] = field(default_factory=list)
    classes: list[IngressClass] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)

    def render(self, cfg: IngressConfig) -> Rendered:
        return render(self.ingresses, self.services, self.slices, self.secrets, cfg, self.classes)

    def endpoints(self) -> dict[tuple[str, int], str]:
        """(ip, port) -> the Service it belongs to."""
        out: dict[tuple[str, int], str] = {}
        for sl in self.slices:
            for ep in sl.endpoints or []:
                for p in sl.ports or []:
                    out[(ep.addresses[0], p.port or 0)] = sl.service_name or ""
        return out


def _backend_names(ing: Ingress) -> list[str]:
    names = []
    backends = [ing.spec.defaultBackend] if ing.spec.defaultBackend else []
    for r in ing.spec.rules or []:
        backends += [p.backend for p in (r.http.paths if r.http else [])]
    for b in backends:
        if b.service is not None and b.service.name not in names:
            names.append(b.service.name)
    return names


def load_case(name: str, addresses: Addresses = article_addresses) -> Case:
    objs: list[Object] = load_paths([str(GOLDEN / f"{name}.yaml"), str(GOLDEN / "secrets.yaml")])
    case = Case(name)
    for o in objs:
        if isinstance(o, Ingress):
            case.ingresses.append(o)
        elif isinstance(o, IngressClass):
            case.classes.append(o)
        elif isinstance(o, Service):
            case.services.append(o)
        elif isinstance(o, EndpointSlice):
            case.slices.append(o)
        elif isinstance(o, Secret):
            case.secrets.append(o)
    defined = {s.key for s in case.services}
    made = 0
    for ing in case.ingresses:
        for svc_name in _backend_names(ing):
            key = f"{ing.namespace}/{svc_name}"
            if key in defined or svc_name.startswith("no-such"):
                continue
            defined.add(key)
            meta = ObjectMeta(name=svc_name, namespace=ing.namespace)
            port = ServicePort(name="http", port=8080, targetPort=3000)
            case.services.append(Service(metadata=meta, spec=ServiceSpec(selector={"app": svc_name}, ports=[port])))
            eps = [Endpoint(addresses=[ip], conditions=EndpointConditions(ready=True)) for ip, _ in addresses(made)]
            labels = {"kubernetes.io/service-name": svc_name}
            case.slices.append(
                EndpointSlice(
                    metadata=ObjectMeta(name=f"{svc_name}-abcde", namespace=ing.namespace, labels=labels),
                    ports=[EndpointSlicePort(name="http", port=addresses(made)[0][1])],
                    endpoints=eps,
                )
            )
            made += 1
    return case
