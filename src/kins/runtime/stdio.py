"""A container's stdin and terminal (``stdin: true`` / ``tty: true``), for attach.

Without either, a container reads /dev/null and writes its log file. With ``stdin`` it reads a
pipe; with ``tty`` its stdin, stdout and stderr are a terminal of its own (it is the session
leader, the terminal its controlling one). In both cases a small relay process, forked by the
container before it starts its program, stands where containerd's shim stands: it holds the
other end and reads ``<attempt>.stdin``, a FIFO beside the run's log, where ``attach`` writes
what its client types. A terminal's output goes through the relay into the log; the terminal's
device path is written to ``<attempt>.tty`` so an attach can size it.

The FIFO is opened by the relay without a writer, so the container waits for input until someone
attaches. When the writer leaves: with ``stdinOnce`` the container's stdin ends (EOF; a
terminal gets its end-of-file character), else the relay waits for the next one.

Runs in the fork server's children: os-level calls only, no heavy imports.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import termios
from typing import Any, NoReturn

from kins.runtime import linux

READ_CHUNK = 1 << 16


def stdin_fifo(log_path: str) -> str:
    """``<dir>/<attempt>.stdin`` beside ``<dir>/<attempt>.log``."""
    return log_path.removesuffix(".log") + ".stdin"


def tty_record(log_path: str) -> str:
    return log_path.removesuffix(".log") + ".tty"


def make_fifo(log_path: str) -> str:
    path = stdin_fifo(log_path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.mkfifo(path, 0o600)
    return path


def set_up(req: dict[str, Any], log: int, keep_closed: list[int]) -> None:
    """In the container's process, before its program starts: fd 0-2 and the relay. The relay
    closes ``keep_closed`` (the fork server's report pipe: it must see EOF when the program
    starts, not when the relay ends)."""
    path = req.get("stdin_fifo") if req.get("stdin") else None
    # Opened before the program starts, so a reader is there once the start is reported.
    fifo = os.open(path, os.O_RDONLY | os.O_NONBLOCK) if path else -1
    once = bool(req.get("stdin_once"))
    if req.get("tty"):
        master, slave = os.openpty()
        with open(tty_record(req["log"]), "w") as f:
            f.write(os.ttyname(slave))
        if os.fork() == 0:  # pragma: no cover - the relay
            os.close(slave)
            _relay(master, path, fifo, once, keep={master, log, fifo}, close=keep_closed, output=log)
        os.close(master)
        if fifo >= 0:
            os.close(fifo)
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.close(slave)
        return
    r, w = os.pipe()
    if os.fork() == 0:  # pragma: no cover - the relay
        os.close(r)
        _relay(w, path, fifo, once, keep={w, fifo}, close=keep_closed, output=None)
    os.close(w)
    if fifo >= 0:
        os.close(fifo)
    os.dup2(r, 0)
    os.close(r)
    os.dup2(log, 1)
    os.dup2(log, 2)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _close_others(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _relay(
    target: int,
    fifo_path: str | None,
    fifo: int,
    once: bool,
    *,
    keep: set[int],
    close: list[int],
    output: int | None,
) -> NoReturn:  # pragma: no cover - a forked process
    """Copies the FIFO (``fifo``, open; -1 without stdin) into ``target`` (the pipe, or the
    terminal's master side) and, for a terminal, the master's output into ``output`` (the log)
    until the terminal closes."""
    try:
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        _close_others(keep)
        os.setsid()  # out of the container's session: killing it does not cut its last output
        linux.set_comm("kins-stdio")
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        parent = os.getppid()
        if output is None:
            # A pipe's relay ends with its container; a terminal's once the terminal closes.
            linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(0)
        poller = select.poll()

        def open_fifo() -> int:
            assert fifo_path is not None
            fd = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)
            poller.register(fd, select.POLLIN)
            return fd

        if fifo >= 0:
            poller.register(fifo, select.POLLIN)
        if output is not None:
            poller.register(target, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == target and output is not None:
                    try:
                        data = os.read(target, READ_CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        os._exit(0)  # every holder of the terminal is gone
                    _write_all(output, data)
                elif fd == fifo:
                    try:
                        data = os.read(fifo, READ_CHUNK)
                    except BlockingIOError:
                        continue
                    if data:
                        try:
                            _write_all(target, data)
                        except OSError as e:
                            if e.errno == errno.EPIPE:
                                os._exit(0)
                        continue
                    # The writer left.
                    poller.unregister(fifo)
                    os.close(fifo)
                    fifo = -1
                    if not once:
                        fifo = open_fifo()
                    elif output is None:
                        os.close(target)  # stdin ends
                        os._exit(0)
                    else:
                        with contextlib.suppress(OSError):
                            os.write(target, b"\x04")
    finally:
        os._exit(0)
