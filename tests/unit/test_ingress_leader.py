"""The ingress controller's leader election on a coordination.k8s.io/v1 Lease, through the API
over TLS: one replica leads and renews, another takes over once the leader stops renewing."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kubectl_bin import NEWEST, tls_api

from kins.apiserver.auth import ensure_tls
from kins.client import connect
from kins.ingress.leader import LeaderElector
from kins.store.memory import MemoryStore


def test_one_leader_then_a_takeover(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=100), tmp_path / "state") as api:
        ca = str(ensure_tls(tmp_path / "state")[0])
        with connect(api.url, api.token, ca) as client:
            a = LeaderElector(client, "default", "ingress-nginx-leader", "pod-a", duration=1)
            b = LeaderElector(client, "default", "ingress-nginx-leader", "pod-b", duration=1)
            assert a.try_acquire() and a.leading.is_set()
            assert not b.try_acquire() and not b.leading.is_set()
            assert a.try_acquire()  # renewing keeps it
            lease = json.loads(api.kubectl(NEWEST)("get", "lease", "ingress-nginx-leader", "-o", "json"))
            assert lease["spec"]["holderIdentity"] == "pod-a"
            assert lease["spec"]["leaseDurationSeconds"] == 1 and lease["spec"]["leaseTransitions"] == 0
            time.sleep(1.3)  # a stops renewing: the lease expires
            assert b.try_acquire() and b.leading.is_set()
            assert not a.try_acquire() and not a.leading.is_set()
            lease = json.loads(api.kubectl(NEWEST)("get", "lease", "ingress-nginx-leader", "-o", "json"))
            assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("pod-b", 1)
