"""The NoPodsSelected warning on NetworkPolicies that protect nothing."""

from __future__ import annotations

import random
from contextlib import ExitStack

from msgspec.structs import replace

from kins.api.config import default_cluster
from kins.api.core import Event, Pod, PodStatus
from kins.api.load import load_text
from kins.api.meta import Object
from kins.api.networking import NetworkPolicy
from kins.control.base import ControllerSet
from kins.control.defaults import default_controllers
from kins.control.events import EventRecorder
from kins.control.netpolevents import NetworkPolicyEvents
from kins.store.memory import MemoryStore


def _obj(text: str) -> Object:
    [o] = load_text(text)
    return o


def _pod(name: str, app: str, ns: str = "default") -> Object:
    return _obj(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}}}}}\n"
        "spec: {containers: [{name: c, image: i}]}\n"
    )


def _policy(name: str, app: str, ns: str = "default") -> Object:
    return _obj(
        f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\n"
        f"spec: {{podSelector: {{matchLabels: {{app: {app}}}}}}}\n"
    )


class Env:
    """The controller fed from one live watch, as the daemon runs it."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.events = EventRecorder(self.store)
        self.ctrl = NetworkPolicyEvents(self.events)
        self.cs = ControllerSet([self.ctrl])
        self._watch = ExitStack()
        self.watch = self._watch.enter_context(self.store.watch(self.cs.kinds, self.store.resource_version))
        self.cs.start(self.store)

    def settle(self) -> None:
        self.cs.feed(self.watch.drain())
        while self.cs.pending:
            self.cs.run_round(self.watch.drain, self.store)
        self.events.flush()

    def warnings(self) -> list[tuple[str, str | None, str | None, int | None]]:
        evs = [e for e in self.store.list("Event")[0] if isinstance(e, Event)]
        return sorted((e.involvedObject.name or "", e.reason, e.message, e.count) for e in evs if e.type == "Warning")


def test_policy_selecting_nothing_is_warned_about_once_per_check() -> None:
    env = Env()
    env.store.create(_pod("web-1", "web"))
    env.store.create(_pod("db-1", "db", ns="other"))  # another namespace does not count
    env.store.create(_policy("web", "web"))
    env.store.create(_policy("deny", "db"))
    env.settle()
    assert env.warnings() == [("deny", "NoPodsSelected", "NetworkPolicy default/deny selects no pods", 1)]
    [ev] = [e for e in env.store.list("Event", "default")[0] if isinstance(e, Event)]
    assert ev.involvedObject.kind == "NetworkPolicy" and ev.source is not None
    assert ev.source.component == "network-policy-controller"

    # More pods that it still does not select, and label-free updates: no repeat.
    env.store.create(_pod("web-2", "web"))
    pod = env.store.get("Pod", "default", "web-1")
    env.store.update(replace(pod, metadata=replace(pod.metadata, annotations={"a": "b"})))
    env.settle()
    assert env.warnings()[0][3] == 1

    # It comes to select a pod, then that pod goes: warned again (the same Event, counted).
    env.store.create(_pod("db-2", "db"))
    env.settle()
    env.store.delete("Pod", "default", "db-2")
    env.settle()
    assert env.warnings() == [("deny", "NoPodsSelected", "NetworkPolicy default/deny selects no pods", 2)]


def test_policy_update_is_checked_again() -> None:
    env = Env()
    env.store.create(_pod("web-1", "web"))
    env.store.create(_policy("np", "web"))
    env.settle()
    assert env.warnings() == []
    np = env.store.get("NetworkPolicy", "default", "np")
    assert isinstance(np, NetworkPolicy)
    typo = _policy("x", "typo")
    assert isinstance(typo, NetworkPolicy)
    moved = replace(np, spec=typo.spec)
    moved = env.store.update(moved)
    env.settle()
    assert [w[1:] for w in env.warnings()] == [("NoPodsSelected", "NetworkPolicy default/np selects no pods", 1)]
    # Finished pods are not selected either.
    env.store.update(replace(moved, spec=np.spec))
    env.settle()
    pod = env.store.get("Pod", "default", "web-1")
    assert isinstance(pod, Pod)
    env.store.update(replace(pod, status=PodStatus(phase="Succeeded")))
    env.settle()
    assert [w[3] for w in env.warnings()] == [2]


def test_the_daemon_runs_it_and_offline_does_not() -> None:
    store = MemoryStore()
    live = default_controllers(store, default_cluster(), random.Random(0), kubelet=False)
    assert any(isinstance(c, NetworkPolicyEvents) for c in live)
    offline = default_controllers(store, default_cluster(), random.Random(0))
    assert not any(isinstance(c, NetworkPolicyEvents) for c in offline)
