"""A Warning Event on a NetworkPolicy whose podSelector selects no pod of its namespace: such a
policy protects nothing, usually because of a typo in a label."""

from __future__ import annotations

from collections.abc import Iterable

from ..api.core import Pod
from ..api.meta import LabelSelector, selector_matches
from ..api.networking import NetworkPolicy
from ..store.base import DELETED, WatchEvent
from .events import WARNING, EventSink

COMPONENT = "network-policy-controller"
REASON = "NoPodsSelected"

_FINISHED = ("Succeeded", "Failed")


class NetworkPolicyEvents:
    """Checks a policy when it is created or its podSelector changes, and again whenever a pod
    of its namespace changes; records the event when a check finds no pod (again after pods
    had matched in between, or after a change of the policy). Repeats of one message are
    folded by the recorder into one Event with a growing count."""

    name = "netpol-events"
    kinds = frozenset({"NetworkPolicy", "Pod"})

    def __init__(self, events: EventSink) -> None:
        self.events = events
        self._policies: dict[str, dict[str, NetworkPolicy]] = {}  # namespace -> name -> policy
        self._pods: dict[str, dict[str, dict[str, str]]] = {}  # namespace -> pod name -> labels
        self._empty: set[str] = set()  # policies found selecting nothing at their last check
        self._fresh: set[str] = set()  # policies created or re-targeted since their last check

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        ns = o.namespace
        if isinstance(o, NetworkPolicy):
            policies = self._policies.setdefault(ns, {})
            if ev.type == DELETED:
                policies.pop(o.name, None)
                self._empty.discard(o.key)
                self._fresh.discard(o.key)
                return ()
            old = policies.get(o.name)
            policies[o.name] = o
            if old is None or old.spec.podSelector != o.spec.podSelector:
                self._fresh.add(o.key)
                return (o.key,)
            return ()
        assert isinstance(o, Pod)
        pods = self._pods.setdefault(ns, {})
        phase = o.status.phase if o.status else None
        labels = o.labels
        if ev.type == DELETED or phase in _FINISHED:
            if pods.pop(o.name, None) is None:
                return ()
        elif pods.get(o.name) == labels:
            return ()
        else:
            pods[o.name] = labels
        return [f"{ns}/{name}" for name in self._policies.get(ns, ())]

    def start_keys(self) -> Iterable[str]:
        return ()

    def _selects_any(self, ns: str, selector: LabelSelector) -> bool:
        return any(selector_matches(selector, labels) for labels in self._pods.get(ns, {}).values())

    def reconcile(self, key: str) -> bool:
        ns, _, name = key.partition("/")
        np = self._policies.get(ns, {}).get(name)
        fresh = key in self._fresh
        self._fresh.discard(key)
        if np is None:
            return False
        if self._selects_any(ns, np.spec.podSelector):
            self._empty.discard(key)
            return False
        if fresh or key not in self._empty:
            self._empty.add(key)
            self.events.event(np, WARNING, REASON, f"NetworkPolicy {key} selects no pods", component=COMPONENT)
        return False
