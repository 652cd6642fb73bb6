"""Building blocks shared by the views: kubectl's duration text, timestamps, label and
selector strings, and a column aligner that behaves like Go's text/tabwriter.

kubectl renders both ``get`` tables and ``describe`` pages through text/tabwriter, so the
exact spacing (including which lines share a column) follows that writer's block rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from ..api.meta import LabelSelector

_SECOND_US = 1_000_000
_MINUTE_US = 60 * _SECOND_US
_HOUR_US = 60 * _MINUTE_US


def human_duration(d: timedelta) -> str:
    """k8s.io/apimachinery duration.HumanDuration: ~2-3 significant figures.

    Go truncates toward zero when converting durations, so integer division is done on the
    absolute microsecond count.
    """
    us = (d.days * 86_400 + d.seconds) * _SECOND_US + d.microseconds
    seconds = us // _SECOND_US if us >= 0 else -((-us) // _SECOND_US)
    # Up to 2 seconds of clock skew still counts as "now".
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = us // _MINUTE_US
    if minutes < 10:
        s = (us // _SECOND_US) % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = us // _HOUR_US
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 API timestamp as an aware datetime (None when absent or unparsable)."""
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def age(timestamp: str | None, now: datetime) -> str:
    """kubectl's AGE cell: ``<unknown>`` when the object carries no timestamp."""
    t = parse_time(timestamp)
    if t is None:
        return "<unknown>"
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return human_duration(now - t)


def rfc1123z(value: str | None) -> str:
    """Go's time.RFC1123Z layout (``Mon, 02 Jan 2006 15:04:05 -0700``), rendered in UTC so
    output does not depend on the machine's zone."""
    t = parse_time(value)
    if t is None:
        return ""
    return t.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def format_labels(labels: Mapping[str, str] | None) -> str:
    """labels.FormatLabels: sorted ``k=v`` pairs, ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: LabelSelector | None) -> str:
    """The String() of metav1.LabelSelectorAsSelector: requirements sorted by key, value
    sets sorted; "" for a nil or empty selector."""
    if selector is None:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.matchLabels or {}).items():
        reqs.append((k, f"{k}={v}"))
    for r in selector.matchExpressions or []:
        values = ",".join(sorted(r.values or []))
        if r.operator == "In":
            text = f"{r.key} in ({values})"
        elif r.operator == "NotIn":
            text = f"{r.key} notin ({values})"
        elif r.operator == "Exists":
            text = r.key
        elif r.operator == "DoesNotExist":
            text = f"!{r.key}"
        else:
            return "<error>"
        reqs.append((r.key, text))
    reqs.sort(key=lambda kv: kv[0])
    return ",".join(text for _, text in reqs)


def format_label_selector(selector: LabelSelector | None) -> str:
    """metav1.FormatLabelSelector: like selector_string but ``<none>`` when empty."""
    return selector_string(selector) or "<none>"


def join_host_port(host: str, port: int | str) -> str:
    """net.JoinHostPort: IPv6 literals get brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- text/tabwriter ---------------------------------------------------------------------------


def tabwrite(text: str, *, minwidth: int, padding: int) -> str:
    """Align tab-separated cells the way Go's text/tabwriter does (pad char ' ', no flags).

    A cell is tab-terminated text; the last cell of a line is not part of any column. A
    column is a run of consecutive lines that all have a cell at that index, and its width
    is the widest cell + padding (at least minwidth). Cells are left-aligned.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    trailing_newline = text.endswith("\n")
    if trailing_newline:
        lines.pop()
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for cells in lines[line0:line1]:
            parts: list[str] = []
            for j, c in enumerate(cells):
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(c + " " * (widths[j] - len(c)))
                else:
                    parts.append(c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    result = "\n".join(out)
    return result + "\n" if trailing_newline else result


_TERMINAL_ESCAPES = re.compile(r"[\x1b]")


def escape_terminal(text: str) -> str:
    """printers.WriteEscaped: ESC characters from object data are shown as ``^[``."""
    return _TERMINAL_ESCAPES.sub("^[", text)
