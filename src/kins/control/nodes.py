"""The node lifecycle controller: its events (a Node joining or leaving the cluster) and the
eviction of the pods a Node that is gone leaves behind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from .._errors import NotFound
from ..api.core import Node, Pod
from ..store.base import DELETED, Store, WatchEvent
from .base import split_key
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


class PodGC:
    """Deletes the pods bound to a Node that no longer exists, as the pod garbage collector does
    for orphaned pods: the workload controllers then replace them on the nodes that are left,
    and DaemonSets simply lose that node's pod."""

    name = "pod-gc"
    kinds = frozenset({"Node", "Pod"})

    def __init__(self, store: Store) -> None:
        self.store = store
        self._nodes: set[str] = set()
        self._on_node: dict[str, set[str]] = {}  # node name -> keys of the pods bound to it

    def observe(self, ev: WatchEvent) -> Iterable[str]:
        o = ev.object
        if isinstance(o, Node):
            if ev.type == DELETED:
                self._nodes.discard(o.name)
                return sorted(self._on_node.get(o.name, ()))
            self._nodes.add(o.name)
            return ()
        assert isinstance(o, Pod)
        node = o.spec.nodeName
        if not node:
            return ()
        if ev.type == DELETED:
            keys = self._on_node.get(node)
            if keys is not None:
                keys.discard(o.key)
                if not keys:
                    del self._on_node[node]
            return ()
        self._on_node.setdefault(node, set()).add(o.key)
        return () if node in self._nodes or o.terminating else (o.key,)

    def start_keys(self) -> Iterable[str]:
        return ()

    def reconcile(self, key: str) -> bool:
        ns, name = split_key(key)
        try:
            pod = self.store.get("Pod", ns, name)
        except NotFound:
            return False
        assert isinstance(pod, Pod)
        node = pod.spec.nodeName
        if not node or pod.terminating:
            return False
        try:
            self.store.get("Node", None, node)
        except NotFound:
            with contextlib.suppress(NotFound):
                self.store.delete("Pod", ns, name)
                return True
        return False
