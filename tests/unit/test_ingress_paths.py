"""Path and host matching: what nginx picks from the rendered locations (``route``, mirroring
nginx's selection) agrees with the Ingress v1 rules (``spec_matches`` + longest path, Exact on
a tie), on the docs' table and on generated paths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kins.api.core import Service, ServicePort, ServiceSpec
from kins.api.discovery import Endpoint, EndpointSlice, EndpointSlicePort
from kins.api.meta import ObjectMeta
from kins.api.networking import (
    HTTPIngressPath,
    HTTPIngressRuleValue,
    Ingress,
    IngressBackend,
    IngressRule,
    IngressServiceBackend,
    IngressSpec,
    ServiceBackendPort,
)
from kins.ingress.model import IngressConfig, Model, build_model, nginx_locations, route, spec_matches

CFG = IngressConfig(dir="/d")


def _backend(svc: str) -> IngressBackend:
    return IngressBackend(service=IngressServiceBackend(name=svc, port=ServiceBackendPort(number=80)))


def model_for(paths: list[tuple[str, str]], host: str = "h.example") -> Model:
    """One Ingress, a Service per path (named after its index) with one endpoint each."""
    hpaths = [HTTPIngressPath(path=p, pathType=t, backend=_backend(f"s{i}")) for i, (p, t) in enumerate(paths)]
    ing = Ingress(
        metadata=ObjectMeta(name="ing", namespace="default"),
        spec=IngressSpec(
            ingressClassName="nginx", rules=[IngressRule(host=host, http=HTTPIngressRuleValue(paths=hpaths))]
        ),
    )
    services, slices = [], []
    for i in range(len(paths)):
        meta = ObjectMeta(name=f"s{i}", namespace="default")
        services.append(Service(metadata=meta, spec=ServiceSpec(ports=[ServicePort(port=80, targetPort=8080)])))
        slices.append(
            EndpointSlice(
                metadata=ObjectMeta(
                    name=f"s{i}-x", namespace="default", labels={"kubernetes.io/service-name": f"s{i}"}
                ),
                ports=[EndpointSlicePort(port=8080)],
                endpoints=[Endpoint(addresses=[f"10.0.0.{i + 1}"])],
            )
        )
    return build_model([ing], services, slices, [], CFG)


def served_by(model: Model, uri: str, host: str = "h.example") -> str | None:
    loc = route(model, host, uri)
    return loc.target.service if loc is not None and loc.target.upstream else None


def spec_choice(paths: list[tuple[str, str]], uri: str) -> str | None:
    """The Ingress v1 answer: among matching paths the longest (by elements), Exact on a tie,
    the first listed on a full tie."""
    best: tuple[int, int, int] | None = None
    for i, (p, t) in enumerate(paths):
        if spec_matches(t, p, uri):
            key = (len([e for e in p.split("/") if e]), 1 if t == "Exact" else 0, -i)
            if best is None or key > best:
                best = key
    return None if best is None else f"s{-best[2]}"


# The Kubernetes docs' examples table (path, type) x request -> matches?
DOCS_TABLE = [
    ([("/", "Prefix")], "/anything", 0),
    ([("/foo", "Exact")], "/foo", 0),
    ([("/foo", "Exact")], "/bar", None),
    ([("/foo", "Exact")], "/foo/", None),
    ([("/foo/", "Exact")], "/foo", None),
    ([("/foo", "Prefix")], "/foo", 0),
    ([("/foo", "Prefix")], "/foo/", 0),
    ([("/foo/", "Prefix")], "/foo", 0),
    ([("/foo/", "Prefix")], "/foo/", 0),
    ([("/aaa/bb", "Prefix")], "/aaa/bbb", None),
    ([("/aaa/bbb", "Prefix")], "/aaa/bbb", 0),
    ([("/aaa/bbb/", "Prefix")], "/aaa/bbb", 0),
    ([("/aaa/bbb", "Prefix")], "/aaa/bbb/", 0),
    ([("/aaa/bbb", "Prefix")], "/aaa/bbb/ccc", 0),
    ([("/aaa/bbb", "Prefix")], "/aaa/bbbxyz", None),
    ([("/", "Prefix"), ("/aaa", "Prefix")], "/aaa/ccc", 1),
    ([("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")], "/aaa/bbb", 2),
    ([("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")], "/ccc", 0),
    ([("/aaa", "Prefix")], "/ccc", None),
    ([("/foo", "Prefix"), ("/foo", "Exact")], "/foo", 1),
    ([("/foo", "Exact"), ("/foo", "Prefix")], "/foo", 0),
    ([("/foo", "Exact"), ("/foo", "Prefix")], "/foo/x", 1),
    ([("/FOO", "Prefix")], "/foo", None),
]


@pytest.mark.parametrize(("paths", "uri", "want"), DOCS_TABLE)
def test_docs_table(paths: list[tuple[str, str]], uri: str, want: int | None) -> None:
    expected = None if want is None else f"s{want}"
    assert spec_choice(paths, uri) == expected
    assert served_by(model_for(paths), uri) == expected


def test_prefix_renders_as_ingress_nginx_does() -> None:
    assert nginx_locations("/foo", "Prefix") == [(False, "/foo/"), (True, "/foo")]
    assert nginx_locations("/foo/", "Prefix") == [(False, "/foo/"), (True, "/foo")]
    assert nginx_locations("/", "Prefix") == [(False, "/")]
    assert nginx_locations("/foo", "Exact") == [(True, "/foo")]
    assert nginx_locations("/foo", "ImplementationSpecific") == [(False, "/foo")]


def test_implementation_specific_is_a_string_prefix() -> None:
    m = model_for([("/foo", "ImplementationSpecific"), ("/foo/bar", "Prefix")])
    assert served_by(m, "/foobar") == "s0"  # nginx prefix: not element-wise
    assert served_by(m, "/foo/bar/x") == "s1"
    assert served_by(m, "/foo/barx") == "s0"


def test_nginx_merges_slashes_like_the_element_rule() -> None:
    m = model_for([("/aaa/bbb", "Prefix")])
    assert served_by(m, "//aaa//bbb") == "s0"
    assert served_by(m, "/aaa/bbb?x=/y") == "s0"


_segment = st.sampled_from(["a", "b", "ab", "ba", "A"])
_path = st.lists(_segment, min_size=0, max_size=3).map(lambda xs: "/" + "/".join(xs))
_req = st.tuples(_path, st.booleans()).map(lambda t: t[0] + ("/" if t[1] and t[0] != "/" else ""))
_rule = st.tuples(
    st.tuples(_path, st.booleans()).map(lambda t: t[0] + ("/" if t[1] and t[0] != "/" else "")),
    st.sampled_from(["Exact", "Prefix"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_rule, min_size=1, max_size=5, unique=True), _req)
def test_rendered_locations_follow_the_spec(paths: list[tuple[str, str]], uri: str) -> None:
    """For Exact/Prefix rules whose normalised forms do not collide, the nginx locations pick
    what the Ingress v1 rules pick."""
    norm = {(p.rstrip("/") or "/", t) if t == "Prefix" else (p, t) for p, t in paths}
    if len(norm) != len(paths):
        return  # "/a" and "/a/" Prefix: one nginx location, the first wins (checked elsewhere)
    assert served_by(model_for(paths), uri) == spec_choice(paths, uri)


def test_wildcard_host_covers_one_label() -> None:
    m = model_for([("/", "Prefix")], host="*.foo.com")
    assert served_by(m, "/", host="bar.foo.com") == "s0"
    assert served_by(m, "/", host="BAR.foo.com:8080") == "s0"
    assert served_by(m, "/", host="baz.bar.foo.com") is None
    assert served_by(m, "/", host="foo.com") is None
    assert m.servers[1].server_name == r"~^[^.]+\.foo\.com$"


def test_exact_host_beats_wildcard() -> None:
    wild = model_for([("/", "Prefix")], host="*.foo.com")
    exact = model_for([("/", "Prefix")], host="bar.foo.com")
    merged = Model(wild.servers + exact.servers[1:], [], {}, [], [])
    assert route(merged, "bar.foo.com", "/") is exact.servers[1].locations[(False, "/")]
    assert route(merged, "x.foo.com", "/") is wild.servers[1].locations[(False, "/")]
