"""The node lifecycle controller's events: a Node joining or leaving the cluster."""

from __future__ import annotations

from collections.abc import Iterable

from ..store.base import DELETED, WatchEvent
from .events import NORMAL, EventSink

COMPONENT = "node-controller"


class NodeEvents:
    """``RegisteredNode`` when the controller first sees a Node (as kube-controller-manager's
    node lifecycle controller does, also on every start), ``RemovingNode`` when it goes."""

    name = "node-events"
    kinds = frozenset({"Node"})

    def __init__(self, events: EventSink) -> None:
        self.events = events
        self._known: set[str] = set()

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        node = ev.object
        name = node.name
        if ev.type == DELETED:
            self._known.discard(name)
            msg = f"Node {name} event: Removing Node {name} from Controller"
            self.events.event(node, NORMAL, "RemovingNode", msg, component=COMPONENT)
        elif name not in self._known:
            self._known.add(name)
            msg = f"Node {name} event: Registered Node {name} in Controller"
            self.events.event(node, NORMAL, "RegisteredNode", msg, component=COMPONENT)
        return ()

    def start_keys(self) -> Iterable[str]:
        return ()

    def reconcile(self, key: str) -> bool:
        return False
