"""Standard 5-field cron schedules, read as the CronJob controller's parser (robfig/cron's
ParseStandard) reads them: ``minute hour day-of-month month day-of-week``, with ``*``, ``?``,
ranges, steps, lists, month and weekday names, 7 for Sunday and the ``@hourly``-style macros.

When both day fields are restricted a day matching either one runs (cron's classic rule);
when one of them is ``*`` or ``?`` only the other one decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (low, high, names) for minute, hour, day of month, month, day of week
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (0, 7, _DAYS),
)


class CronError(ValueError):
    """A schedule cron cannot read (the message says which part)."""


def _number(text: str, names: dict[str, int]) -> int:
    v = names.get(text.lower())
    if v is not None:
        return v
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}")
    return int(text)


def _field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    """The values one field allows, and whether it was an unrestricted ``*`` / ``?``."""
    out: set[int] = set()
    star = False
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step in {part}")
            step = int(step_text)
        if rng in ("*", "?"):
            a, b = low, high
            star = star or step == 1
        elif "-" in rng:
            x, _, y = rng.partition("-")
            a, b = _number(x, names), _number(y, names)
        else:
            a = _number(rng, names)
            b = high if step_text else a  # "5/15" means 5-high/15
        if a < low or b > high:
            raise CronError(f"value out of range ({low}-{high}): {part}")
        if a > b:
            raise CronError(f"beginning of range ({a}) beyond end of range ({b}): {part}")
        out.update(range(a, b + 1, step))
    return frozenset(out), star


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month was * or ?
    any_weekday: bool

    def _day_ok(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def next_after(self, t: datetime) -> datetime:
        """The first scheduled minute strictly after ``t`` (in ``t``'s time zone)."""
        t = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_ok(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            return t
        raise CronError("the schedule never fires")


def parse(text: str) -> Schedule:
    """A 5-field schedule or macro; raises CronError."""
    spec = _MACROS.get(text.strip().lower(), text)
    parts = spec.split()
    if len(parts) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(parts)}: [{' '.join(parts)}]")
    values = [_field(p, *_FIELDS[i]) for i, p in enumerate(parts)]
    weekdays = frozenset(d % 7 for d in values[4][0])
    return Schedule(
        minutes=values[0][0],
        hours=values[1][0],
        days=values[2][0],
        months=values[3][0],
        weekdays=weekdays,
        any_day=values[2][1],
        any_weekday=values[4][1],
    )
