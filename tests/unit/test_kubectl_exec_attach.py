"""``kubectl attach`` (1.27 over SPDY, 1.33 over WebSocket) against the in-process API, without a
kernel: the "container" is a thread of this test that reads the run's stdin FIFO and writes the
run's log, as the runtime's relay and a container would, and reports its end in the pod's status."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from kubectl_bin import NEWEST, OLDEST, TlsApi, tls_api
from msgspec.structs import replace

from kins.api.core import Container, ContainerState, ContainerStatus, Pod, PodSpec, PodStatus
from kins.api.meta import ObjectMeta
from kins.runtime.linux import process_start_time
from kins.runtime.stdio import make_fifo
from kins.runtime.types import Sandbox
from kins.store.memory import MemoryStore


def status(state: dict[str, object], phase: str) -> PodStatus:
    return PodStatus(
        phase=phase, containerStatuses=[ContainerStatus(name="c", state=msgspec.convert(state, ContainerState))]
    )


def sandbox_of_this_process(root: Path, name: str) -> Path:
    pid = os.getpid()
    start = process_start_time(pid)
    assert start is not None
    d = root / "pods" / f"default_{name}"
    d.mkdir(parents=True, exist_ok=True)
    sb = Sandbox(f"default_{name}", f"default/{name}", name, f"/proc/{pid}/ns/net", pid, start, str(d))
    sb.record_path.write_text(sb.to_json())
    return d


class Talker(threading.Thread):
    """Answers each line of its stdin in its log, then says bye and ends."""

    def __init__(self, store: MemoryStore, name: str, log: Path, fifo: str) -> None:
        super().__init__(daemon=True)
        self.store, self.name, self.log, self.fifo = store, name, log, fifo

    def run(self) -> None:
        with open(self.fifo, "rb") as stdin, open(self.log, "ab", buffering=0) as out:
            for line in stdin:
                out.write(b"got " + line)
            out.write(b"bye\n")
        pod = self.store.get("Pod", "default", self.name)
        assert isinstance(pod, Pod)
        self.store.update(replace(pod, status=status({"terminated": {"exitCode": 0}}, "Succeeded")), check_rv=False)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TlsApi, MemoryStore, Path]]:
    store = MemoryStore(history=100)
    with tls_api(store, tmp_path / "api", pods=tmp_path / "state") as a:
        yield a, store, tmp_path / "state"


def start_talker(store: MemoryStore, root: Path, name: str) -> Talker:
    spec = PodSpec(containers=[Container(name="c", image="busybox", stdin=True, stdinOnce=True)])
    store.create(
        Pod(metadata=ObjectMeta(name=name, namespace="default"), spec=spec, status=status({"running": {}}, "Running"))
    )
    d = sandbox_of_this_process(root, name) / "c"
    d.mkdir()
    log = d / "0.log"
    log.write_bytes(b"from before the attach\n")
    t = Talker(store, name, log, make_fifo(str(log)))
    t.start()
    return t


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_attach_stdin_output_and_end(api: tuple[TlsApi, MemoryStore, Path], version: str) -> None:
    a, store, root = api
    name = f"talk-{version.replace('.', '-')}"
    talker = start_talker(store, root, name)
    p = a.kubectl(version).run("attach", "-i", name, input="one\ntwo\n", timeout=30)
    talker.join(10)
    assert p.returncode == 0, p
    # Only what was written after attaching; the session ends with the container.
    assert p.stdout == "got one\ngot two\nbye\n", p


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_kubectl_attach_errors(api: tuple[TlsApi, MemoryStore, Path], version: str) -> None:
    a, store, root = api
    spec = PodSpec(containers=[Container(name="c", image="busybox")])
    waiting = status({"waiting": {"reason": "ContainerCreating"}}, "Pending")
    store.create(Pod(metadata=ObjectMeta(name="waiting", namespace="default"), spec=spec, status=waiting))
    sandbox_of_this_process(root, "waiting")
    k = a.kubectl(version)
    p = k.run("attach", "waiting", check=False)
    assert p.returncode == 1 and 'container "c" in pod "waiting" is not running' in p.stderr, p
    p = k.run("attach", "waiting", "-c", "nope", check=False)
    assert p.returncode == 1 and "nope" in p.stderr, p
