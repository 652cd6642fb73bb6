"""``GET pods/NAME/log``: a container's log with kubectl's options.

Each run of a container writes ``<state>/pods/<ns>_<pod>/<container>/<attempt>.log`` (stdout and
stderr, as the process wrote them). The options follow the kubelet: ``previous`` reads the run
before the last, ``sinceSeconds``/``sinceTime`` keep the lines written since then, ``tailLines``
the last N of those, ``timestamps`` prefixes each line with when it was written (RFC 3339, nine
fractional digits), ``limitBytes`` cuts the answer, and ``follow`` streams what the run writes
until it ends.

The log files carry no times, so a sampler notes every second how far each file has grown and
its modification time; a line is dated by the first note that covers it (to within a second, or
the first note after the daemon started for what was written before).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from .._errors import NotFound
from ..api.core import Pod
from ..runtime.runtime import pod_dir_name
from .errors import ApiError
from .keys import STORE_KEY
from .pods import container_name, get_pod, need_state_dir, state_dir

SAMPLE_SECONDS = 1.0
FOLLOW_POLL_SECONDS = 0.2
# A followed run counts as ended once its container was seen not running for this long (the
# pod's status may lag a moment behind a run that just started).
FOLLOW_END_GRACE = 1.0
MAX_MARKS = 4096
READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class LogOptions:
    container: str | None = None
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None  # seconds since the epoch
    limit_bytes: int | None = None

    def since(self, now: float) -> float | None:
        if self.since_seconds is not None:
            return now - self.since_seconds
        return self.since_time


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true", "yes")


def _int(query: Mapping[str, str], name: str) -> int | None:
    text = query.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name}: Invalid value: {text!r}: must be an integer") from None


def parse_time(text: str) -> float:
    """An RFC 3339 time (``sinceTime``), as seconds since the epoch."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError(400, "BadRequest", f'sinceTime: Invalid value: "{text}": must be an RFC 3339 time') from None


def parse_options(name: str, query: Mapping[str, str]) -> LogOptions:
    """The ``PodLogOptions`` of a query, refused (422) as the API server refuses them."""
    since_text = query.get("sinceTime")
    opts = LogOptions(
        container=query.get("container") or None,
        follow=_flag(query, "follow"),
        previous=_flag(query, "previous"),
        timestamps=_flag(query, "timestamps"),
        tail_lines=_int(query, "tailLines"),
        since_seconds=_int(query, "sinceSeconds"),
        since_time=parse_time(since_text) if since_text else None,
        limit_bytes=_int(query, "limitBytes"),
    )
    errors: list[str] = []
    if opts.tail_lines is not None and opts.tail_lines < 0:
        errors.append(f"tailLines: Invalid value: {opts.tail_lines}: must be greater than or equal to 0")
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        errors.append(f"limitBytes: Invalid value: {opts.limit_bytes}: must be greater than 0")
    if opts.since_seconds is not None and opts.since_seconds < 1:
        errors.append(f"sinceSeconds: Invalid value: {opts.since_seconds}: must be greater than 0")
    if opts.since_seconds is not None and opts.since_time is not None:
        errors.append("Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
    if errors:
        raise ApiError(422, "Invalid", f'PodLogOptions "{name}" is invalid: {", ".join(errors)}', kind="PodLogOptions")
    return opts


def format_time(ns: int) -> str:
    """The kubelet's log timestamp: RFC 3339 in UTC with nine fractional digits."""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def split_lines(data: bytes, base: int = 0) -> list[tuple[int, bytes]]:
    """(offset, line with its newline) of each line; the last may lack its newline."""
    out: list[tuple[int, bytes]] = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        out.append((base + start, data[start:end]))
        start = end
    return out


def render(lines: list[tuple[int, bytes]], opts: LogOptions, written: Callable[[int], int], now: float) -> bytes:
    """The answer for lines already written: since, then tail, then timestamps (``written``
    dates a line by its offset, in ns), then the byte limit."""
    since = opts.since(now)
    if since is not None:
        cut = int(since * 1e9)
        lines = [(off, line) for off, line in lines if written(off) >= cut]
    if opts.tail_lines is not None:
        lines = lines[len(lines) - opts.tail_lines :] if opts.tail_lines else []
    if opts.timestamps:
        out = b"".join(format_time(written(off)).encode() + b" " + line for off, line in lines)
    else:
        out = b"".join(line for _, line in lines)
    if opts.limit_bytes is not None:
        out = out[: opts.limit_bytes]
    return out


class LogClock:
    """When each part of each log file was written, from periodic notes of (size, mtime)."""

    def __init__(self) -> None:
        self._marks: dict[str, list[tuple[int, int]]] = {}

    def observe(self, path: str) -> None:
        try:
            st = os.stat(path)
        except OSError:
            self._marks.pop(path, None)
            return
        marks = self._marks.setdefault(path, [])
        if marks and st.st_size < marks[-1][0]:
            marks.clear()  # truncated or replaced: the notes no longer apply
        if not marks or st.st_size > marks[-1][0]:
            marks.append((st.st_size, st.st_mtime_ns))
            if len(marks) > MAX_MARKS:
                # Old lines keep a coarser date; the newest notes stay exact.
                half = len(marks) // 2
                marks[:half] = marks[1:half:2]

    def scan(self, root: Path) -> None:
        seen = set()
        for p in root.glob("*/*/*.log"):
            path = str(p)
            seen.add(path)
            self.observe(path)
        for gone in set(self._marks) - seen:
            del self._marks[gone]

    def written(self, path: str, offset: int) -> int:
        """When the byte at ``offset`` was written, in ns since the epoch (an upper bound)."""
        marks = self._marks.get(path) or []
        i = bisect.bisect_right(marks, offset, key=lambda m: m[0])
        if i < len(marks):
            return marks[i][1]
        return time.time_ns()


CLOCK_KEY = web.AppKey("log_clock", LogClock)


async def sample_logs(app: web.Application) -> AsyncIterator[None]:
    """The app's log sampler (a cleanup context: started with the app, stopped with it)."""
    clock = LogClock()
    app[CLOCK_KEY] = clock

    async def loop() -> None:
        while True:
            root = state_dir(app)
            if root is not None:
                clock.scan(root / "pods")
            await asyncio.sleep(SAMPLE_SECONDS)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def log_runs(root: Path, pod: Pod, container: str) -> list[Path]:
    """The container's log files, oldest run first."""
    cdir = root / "pods" / pod_dir_name(pod.key) / container
    try:
        runs = [p for p in cdir.iterdir() if p.suffix == ".log" and p.stem.isdigit()]
    except FileNotFoundError:
        return []
    return sorted(runs, key=lambda p: int(p.stem))


def container_state(pod: Pod, container: str) -> tuple[str, str]:
    """(state, reason) of a container from the pod's status: running, waiting or terminated."""
    st = pod.status
    statuses = (
        [*(st.containerStatuses or []), *(st.initContainerStatuses or []), *(st.ephemeralContainerStatuses or [])]
        if st is not None
        else []
    )
    for cs in statuses:
        if cs.name == container and cs.state:
            for state, detail in (
                ("waiting", cs.state.waiting),
                ("running", cs.state.running),
                ("terminated", cs.state.terminated),
            ):
                if detail is not None:
                    return state, getattr(detail, "reason", None) or ""
    return "waiting", "ContainerCreating"


def _pick_run(root: Path, pod: Pod, container: str, previous: bool) -> Path:
    runs = log_runs(root, pod, container)
    if previous:
        if len(runs) < 2:
            raise ApiError(
                400, "BadRequest", f'previous terminated container "{container}" in pod "{pod.name}" not found'
            )
        return runs[-2]
    if not runs:
        _, reason = container_state(pod, container)
        raise ApiError(
            400,
            "BadRequest",
            f'container "{container}" in pod "{pod.name}" is waiting to start: {reason or "ContainerCreating"}',
        )
    return runs[-1]


def _clock(app: web.Application) -> LogClock:
    if CLOCK_KEY not in app:
        app[CLOCK_KEY] = LogClock()  # an app served without its sampler (tests)
    return app[CLOCK_KEY]


async def handle(request: web.Request) -> web.StreamResponse:
    pod = get_pod(request)
    opts = parse_options(pod.name, request.query)
    container = container_name(pod, opts.container)
    root = need_state_dir(request.app)
    path = _pick_run(root, pod, container, opts.previous)
    clock = _clock(request.app)
    clock.observe(str(path))
    with open(path, "rb") as f:
        data = f.read()
    body = render(split_lines(data), opts, lambda off: clock.written(str(path), off), time.time())
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    if body:
        await resp.write(body)
    left = None if opts.limit_bytes is None else opts.limit_bytes - len(body)
    if opts.follow and not opts.previous and (left is None or left > 0):
        with contextlib.suppress(ConnectionResetError):
            await _follow(request, resp, pod, container, path, len(data), opts.timestamps, left)
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def _follow(
    request: web.Request,
    resp: web.StreamResponse,
    pod: Pod,
    container: str,
    path: Path,
    offset: int,
    timestamps: bool,
    left: int | None,
) -> None:
    """Streams what the run writes after ``offset`` until it ends, the pod goes, the byte limit
    is reached or the client leaves. With timestamps only whole lines are sent."""
    store = request.app[STORE_KEY]
    root = need_state_dir(request.app)
    pending = b""
    stopped_since: float | None = None
    with open(path, "rb") as f:
        f.seek(offset)
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            chunk = f.read(READ_CHUNK)
            if chunk:
                stopped_since = None
                if timestamps:
                    pending += chunk
                    cut = pending.rfind(b"\n") + 1
                    whole, pending = pending[:cut], pending[cut:]
                    stamp = format_time(time.time_ns()).encode() + b" "
                    out = b"".join(stamp + line for _, line in split_lines(whole))
                else:
                    out = chunk
                if left is not None:
                    out = out[:left]
                    left -= len(out)
                if out:
                    await resp.write(out)
                if left == 0:
                    return
                continue
            if not run_goes_on(store, root, pod, container, path):
                now = time.monotonic()
                stopped_since = stopped_since or now
                if now - stopped_since >= FOLLOW_END_GRACE:
                    break
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
    if pending:
        line = (format_time(time.time_ns()).encode() + b" " + pending) if timestamps else pending
        await resp.write(line if left is None else line[:left])


def run_goes_on(store: object, root: Path, pod: Pod, container: str, path: Path) -> bool:
    try:
        cur = store.get("Pod", pod.namespace, pod.name)  # type: ignore[attr-defined]
    except NotFound:
        return False
    if cur.metadata.uid != pod.metadata.uid:
        return False
    runs = log_runs(root, cur, container)
    if runs and runs[-1] != path:
        return False  # the container was restarted: this run is over
    state, _ = container_state(cur, container)
    return state == "running"
