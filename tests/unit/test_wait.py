"""``kins wait``: --for parsing, JSONPath, timeouts, and waiting on the real API's watch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import msgspec
import pytest
from test_api import serving

from kins._errors import KinsError
from kins.api.core import Pod, PodStatus
from kins.api.load import load_text
from kins.api.meta import Condition, parse_label_selector
from kins.cli.wait import display_name, jsonpath, parse_for, parse_timeout, wait_for
from kins.client import Client
from kins.store.memory import MemoryStore

READY_POD = {
    "metadata": {"name": "x", "generation": 1},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
}


def test_for_condition_defaults_to_true_and_ignores_case() -> None:
    assert parse_for("condition=Ready").met(READY_POD)
    assert parse_for("condition=ready").met(READY_POD)
    assert parse_for("condition=Ready=TRUE").met(READY_POD)
    assert not parse_for("condition=Ready=false").met(READY_POD)
    assert not parse_for("condition=Available").met(READY_POD)
    assert not parse_for("condition=Ready").met(None)


def test_a_condition_of_an_older_generation_does_not_count() -> None:
    deploy = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Available", "status": "True"}]},
    }
    assert not parse_for("condition=Available").met(deploy)
    deploy["status"]["observedGeneration"] = 2  # type: ignore[index]
    assert parse_for("condition=Available").met(deploy)


def test_for_delete_create_and_jsonpath() -> None:
    assert parse_for("delete").met(None) and not parse_for("delete").met(READY_POD)
    assert parse_for("create").met(READY_POD) and not parse_for("create").met(None)
    assert parse_for("jsonpath={.status.phase}=Running").met(READY_POD)
    assert parse_for("jsonpath='{.status.phase}'=Running").met(READY_POD)
    assert not parse_for("jsonpath={.status.phase}=Pending").met(READY_POD)
    assert parse_for("jsonpath={.status.phase}").met(READY_POD)
    assert not parse_for("jsonpath={.status.podIP}").met(READY_POD)
    with pytest.raises(KinsError, match="unrecognized condition"):
        parse_for("ready")


def test_jsonpath_steps() -> None:
    doc = {"a": {"b": [{"t": "x", "v": 1}, {"t": "y", "v": True}], "k.e": "dot"}}
    assert jsonpath(doc, "{.a.b[0].v}") == [1]
    assert jsonpath(doc, "{.a.b[*].t}") == ["x", "y"]
    assert jsonpath(doc, '{.a.b[?(@.t=="y")].v}') == [True]
    assert jsonpath(doc, "{.a['k.e']}") == ["dot"]
    assert jsonpath(doc, "{.a.missing}") == []


def test_timeouts_read_as_kubectl_reads_them() -> None:
    assert parse_timeout("30s") == 30
    assert parse_timeout("1m30s") == 90
    assert parse_timeout("500ms") == 0.5
    assert parse_timeout("2") == 2
    assert parse_timeout("-1s") == 7 * 86400
    with pytest.raises(KinsError, match="invalid --timeout"):
        parse_timeout("soon")


def test_display_names() -> None:
    assert display_name("Pod") == "pod"
    assert display_name("Deployment") == "deployment.apps"


# --- on the API -----------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[tuple[MemoryStore, Client]]:
    store = MemoryStore(history=1000)
    with serving(store) as served, served.client() as client:
        yield store, client


def make_pod(store: MemoryStore, name: str, ready: bool) -> Pod:
    [p] = load_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: w}}}}\n")
    assert isinstance(p, Pod)
    created = store.create(p)
    assert isinstance(created, Pod)
    return set_ready(store, created, ready) if ready else created


def set_ready(store: MemoryStore, p: Pod, ready: bool) -> Pod:
    cond = Condition(type="Ready", status="True" if ready else "False")
    cur = store.get("Pod", p.namespace, p.name)
    assert isinstance(cur, Pod)
    out = store.update(msgspec.structs.replace(cur, status=PodStatus(phase="Running", conditions=[cond])))
    assert isinstance(out, Pod)
    return out


def later(seconds: float, fn: Callable[[], object]) -> threading.Thread:
    """``fn`` run from another thread after ``seconds`` (a change the waiter must see)."""

    def run() -> None:
        time.sleep(seconds)
        fn()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_waits_on_the_watch_until_the_condition_is_met(api: tuple[MemoryStore, Client]) -> None:
    store, client = api
    a = make_pod(store, "a", ready=True)
    b = make_pod(store, "b", ready=False)
    met: list[str] = []
    t0 = time.monotonic()
    later(0.3, lambda: set_ready(store, b, True))
    left = wait_for(
        client,
        "Pod",
        parse_for("condition=Ready"),
        time.monotonic() + 10,
        namespace="default",
        selector=parse_label_selector("app=w"),
        on_met=lambda k: met.append(k[1]),
    )
    assert left == [] and met == ["a", "b"]
    assert 0.25 <= time.monotonic() - t0 < 5
    assert a.ready


def test_a_condition_never_met_times_out_with_the_objects_left(api: tuple[MemoryStore, Client]) -> None:
    store, client = api
    make_pod(store, "a", ready=False)
    t0 = time.monotonic()
    left = wait_for(client, "Pod", parse_for("condition=Ready"), time.monotonic() + 1.0, namespace=None, names=["a"])
    took = time.monotonic() - t0
    assert left == [("default", "a")]
    assert 0.9 <= took < 3.5


def test_for_delete_returns_once_the_object_is_gone(api: tuple[MemoryStore, Client]) -> None:
    store, client = api
    make_pod(store, "a", ready=True)
    later(0.3, lambda: store.delete("Pod", "default", "a"))
    left = wait_for(client, "Pod", parse_for("delete"), time.monotonic() + 10, namespace=None, names=["a", "gone"])
    assert left == []


def test_named_objects_must_exist_and_selectors_must_match(api: tuple[MemoryStore, Client]) -> None:
    _, client = api
    with pytest.raises(KinsError, match='pods "nope" not found'):
        wait_for(client, "Pod", parse_for("condition=Ready"), time.monotonic() + 1, namespace=None, names=["nope"])
    with pytest.raises(KinsError, match="no matching resources found"):
        wait_for(client, "Pod", parse_for("condition=Ready"), time.monotonic() + 1, namespace=None)
