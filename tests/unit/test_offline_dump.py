"""`kins render` of a live cluster's dump: dependents keep the owners the dump gives them, though
every object gets a new uid offline (the garbage collector would take them for orphans)."""

from __future__ import annotations

from kins.api.config import default_cluster
from kins.api.discovery import EndpointSlice
from kins.api.load import load_text
from kins.control.offline import build_offline_state

DUMP = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default, uid: 11111111-0000-0000-0000-000000000001}
spec:
  clusterIP: 10.254.10.10
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abcde
  namespace: default
  uid: 11111111-0000-0000-0000-000000000002
  labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io}
  ownerReferences:
  - {apiVersion: v1, kind: Service, name: web, uid: 11111111-0000-0000-0000-000000000001, controller: true,
     blockOwnerDeletion: true}
addressType: IPv4
endpoints:
- addresses: [172.30.76.9]
  conditions: {ready: true}
ports: [{port: 8080, protocol: TCP}]
"""


def test_a_dumped_slice_follows_its_service() -> None:
    store = build_offline_state(default_cluster(), load_text(DUMP, "dump"))
    svc = store.get("Service", "default", "web")
    (slice_,) = store.list("EndpointSlice", "default")[0]
    assert isinstance(slice_, EndpointSlice) and slice_.name == "web-abcde"
    assert [a for ep in slice_.endpoints or [] for a in ep.addresses] == ["172.30.76.9"]
    (ref,) = slice_.metadata.ownerReferences or []
    assert ref.uid == svc.metadata.uid != "11111111-0000-0000-0000-000000000001"


def test_an_owner_missing_from_the_input_leaves_an_orphan() -> None:
    text = DUMP.split("---")[1]  # the slice alone: its Service is not there, as upstream GC sees it
    store = build_offline_state(default_cluster(), load_text(text, "dump"))
    assert store.list("EndpointSlice", "default")[0] == []
