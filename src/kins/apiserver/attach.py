"""``pods/NAME/attach``: the stdio of a container that runs, over WebSocket or SPDY as exec.

What the container writes from the moment of attaching is read from its run's log (a terminal's
output reaches the log through its relay, ``runtime/stdio.py``) and sent on stdout: the log
holds stdout and stderr as one. What the client types goes into the run's ``<attempt>.stdin``
FIFO, which only containers started with ``stdin: true`` read; resizes size the container's
terminal (``tty: true``). The session ends when the run does (the pod's status says so, as for
``log?follow``) with a Success status, or when the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import struct
import termios
from pathlib import Path

from aiohttp import web

from ..api.core import Pod
from ..runtime.stdio import stdin_fifo, tty_record
from .errors import ApiError
from .exec import RESIZE, STDIN, STDOUT, Link, Upgrade, window_size
from .keys import STORE_KEY
from .logs import container_state, log_runs, run_goes_on
from .pods import all_containers, container_name, get_pod, need_state_dir, running_sandbox

READ_CHUNK = 1 << 15
POLL_SECONDS = 0.05
END_GRACE = 1.0  # a run counts as over once its container was seen not running this long


def attach_query(request: web.Request) -> dict[str, bool]:
    q = request.query
    want = {n: q.get(n, "").lower() in ("1", "true", "yes") for n in ("stdin", "stdout", "stderr", "tty")}
    if not (want["stdin"] or want["stdout"] or want["stderr"]):
        raise ApiError(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr")
    return want


def run_log(root: Path, pod: Pod, container: str) -> Path:
    """The log of the container's current run, when it runs (400 as the kubelet words it)."""
    state, _ = container_state(pod, container)
    runs = log_runs(root, pod, container)
    if state != "running" or not runs:
        raise ApiError(400, "BadRequest", f'container "{container}" in pod "{pod.name}" is not running')
    return runs[-1]


async def handle(request: web.Request) -> web.StreamResponse:
    pod = get_pod(request)
    want = attach_query(request)
    name = container_name(pod, request.query.get("container"))
    up = Upgrade(request, "attach")
    running_sandbox(request, pod, name)
    root = need_state_dir(request.app)
    log = run_log(root, pod, name)
    spec = next(c for c in all_containers(pod) if c.name == name)
    if not spec.tty:
        want["tty"] = False  # nothing to size; stderr stays a stream of its own
    try:
        link = await up.open(want)
        if link is not None:
            await Attach(request, link, pod, name, log, stdin=want["stdin"] and bool(spec.stdin)).run()
    finally:
        response = await up.close()
    return response


class Attach:
    def __init__(self, request: web.Request, link: Link, pod: Pod, container: str, log: Path, *, stdin: bool) -> None:
        self.request = request
        self.link = link
        self.pod = pod
        self.container = container
        self.log = log
        self.stdin = stdin
        self.fifo: int | None = None

    async def run(self) -> None:
        offset = self.log.stat().st_size
        if self.stdin:
            self.fifo = self._open_fifo()
        output = asyncio.create_task(self._output(offset))
        client = asyncio.create_task(self._from_client())
        try:
            done, _ = await asyncio.wait({output, client}, return_when=asyncio.FIRST_COMPLETED)
            if output in done and not client.done():
                await self.link.finish({"metadata": {}, "status": "Success"})
        finally:
            output.cancel()
            client.cancel()
            self._close_fifo()

    def _open_fifo(self) -> int | None:
        try:
            return os.open(stdin_fifo(str(self.log)), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno in (errno.ENXIO, errno.ENOENT):
                return None  # no relay reads it: the container's stdin is not open
            raise

    def _close_fifo(self) -> None:
        if self.fifo is not None:
            os.close(self.fifo)
            self.fifo = None

    async def _output(self, offset: int) -> None:
        store = self.request.app[STORE_KEY]
        root = need_state_dir(self.request.app)
        stopped: float | None = None
        loop = asyncio.get_running_loop()
        with open(self.log, "rb") as f:
            f.seek(offset)
            while True:
                chunk = f.read(READ_CHUNK)
                if chunk:
                    stopped = None
                    await self.link.send(STDOUT, chunk)
                    continue
                if not run_goes_on(store, root, self.pod, self.container, self.log):
                    stopped = stopped or loop.time()
                    if loop.time() - stopped >= END_GRACE:
                        return
                await asyncio.sleep(POLL_SECONDS)

    async def _from_client(self) -> None:
        async for channel, data in self.link.incoming():
            if channel == STDIN:
                if data is None:
                    self._close_fifo()  # the end of the client's stdin (stdinOnce: the container's)
                elif self.fifo is not None:
                    await self._write(data)
            elif channel == RESIZE and data:
                self._resize(data)

    async def _write(self, data: bytes) -> None:
        while data and self.fifo is not None:
            try:
                n = os.write(self.fifo, data)
            except BlockingIOError:
                await asyncio.sleep(POLL_SECONDS)
                continue
            except OSError:
                self._close_fifo()  # the relay is gone: the container has ended
                return
            data = data[n:]

    def _resize(self, data: bytes) -> None:
        size = window_size(data)
        if size is None:
            return
        with contextlib.suppress(OSError):
            device = Path(tty_record(str(self.log))).read_text().strip()
            fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
            finally:
                os.close(fd)
