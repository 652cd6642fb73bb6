"""Root tests: containers started with stdin and a terminal (what attach, ``kubectl run -it`` and
``kubectl debug -it`` use): the stdin FIFO and its relay, stdinOnce, the terminal's output in the
log, and shell images started with their CMD."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import time
from pathlib import Path

import pytest
from runtime_helpers import Netns

from kins.runtime import ContainerSpec, Runtime
from kins.runtime.stdio import stdin_fifo, tty_record
from kins.runtime.types import Container, ProcessExit

pytestmark = pytest.mark.root


def wait_exit(rt: Runtime, c: Container, timeout: float = 10.0) -> ProcessExit:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = rt.exited(c)
        if ev is not None:
            return ev
        time.sleep(0.02)
    raise AssertionError(f"{c.id} did not exit")


def wait_for(path: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = path.read_text(errors="replace") if path.exists() else ""
        if text in got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in {path}: {got!r}")


def write_stdin(c: Container, data: bytes) -> None:
    fd = os.open(stdin_fifo(c.log_path), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def test_stdin_survives_attaches_and_stdin_once_ends_it(
    runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path]
) -> None:
    (ns,) = netns.make()
    sb = runtime.create_sandbox("default/io", netns.path(ns), "io", *map(str, pod_files))
    # stdin without stdinOnce: each writer that leaves is not the end.
    cat = runtime.start_container(sb, ContainerSpec("cat", "busybox", command=("cat",), stdin=True))
    time.sleep(0.2)
    assert runtime.exited(cat) is None  # waits for input: nobody has attached yet
    write_stdin(cat, b"first\n")
    write_stdin(cat, b"second\n")
    assert wait_for(Path(cat.log_path), "second") == "first\nsecond\n"
    assert runtime.exited(cat) is None
    # stdinOnce: the first writer's end is the container's end of input.
    once = runtime.start_container(
        sb, ContainerSpec("once", "busybox", command=("sh", "-c", "cat; echo done"), stdin=True, stdin_once=True)
    )
    write_stdin(once, b"only\n")
    assert wait_exit(runtime, once).exit_code == 0
    assert wait_for(Path(once.log_path), "done") == "only\ndone\n"


def test_terminal_output_to_the_log_size_and_exit(runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path]) -> None:
    (ns,) = netns.make()
    sb = runtime.create_sandbox("default/tty", netns.path(ns), "tty", *map(str, pod_files))
    # busybox without a command runs its CMD, a shell, here on a terminal of its own.
    sh = runtime.start_container(sb, ContainerSpec("sh", "busybox", stdin=True, stdin_once=True, tty=True))
    device = Path(tty_record(sh.log_path))
    deadline = time.monotonic() + 10
    while not device.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    fd = os.open(device.read_text(), os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 77, 0, 0))
    finally:
        os.close(fd)
    write_stdin(sh, b"stty size; tty; exit 4\n")
    assert wait_exit(runtime, sh).exit_code == 4
    log = wait_for(Path(sh.log_path), "/dev/pts/")
    assert "24 77" in log  # the terminal echoes what was typed, then the answers


def test_args_of_a_shell_image_are_its_command(runtime: Runtime, netns: Netns, pod_files: tuple[Path, Path]) -> None:
    (ns,) = netns.make()
    sb = runtime.create_sandbox("default/args", netns.path(ns), "args", *map(str, pod_files))
    c = runtime.start_container(sb, ContainerSpec("a", "docker.io/library/busybox:1.36", args=("echo", "hi")))
    assert wait_exit(runtime, c).exit_code == 0
    assert Path(c.log_path).read_text() == "hi\n"
