"""`kins down --force NAME` on a live cluster whose state directory was deleted under it."""

from __future__ import annotations

import shutil

import pytest
from e2e_helpers import cluster_namespaces, cluster_pids, leftovers, running_cluster

pytestmark = pytest.mark.root

POD = """
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers:
  - {name: sleep, image: busybox, command: [sleep, "600"]}
"""


def test_force_down_after_the_state_directory_is_gone() -> None:
    # running_cluster's own check afterwards fails on any namespace, mount or process left.
    with running_cluster(apps=False) as c:
        c.apply_text(POD)
        c.wait_ready("sleeper", 1)
        pids = cluster_pids(c.name, c.state)
        assert cluster_namespaces(c.name) and pids
        assert any(b"kins.daemon.main" in argv for argv in pids.values())
        assert any(b"kins.runtime.zygote" in argv for argv in pids.values())
        c.close()
        shutil.rmtree(c.state)
        res = c.kins("down", "--name", c.name, check=False)
        assert res.returncode != 0 and "--force" in res.stderr
        res = c.kins("down", "--force", c.name)
        assert f"cluster '{c.name}' removed" in res.stdout
        assert cluster_namespaces(c.name) == []
        # Every process the cluster had (daemon, fork server, pods) is gone.
        assert leftovers(c.name, c.state, pids) == []
