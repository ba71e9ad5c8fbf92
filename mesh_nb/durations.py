"""Durations and moments, read in one place: the ISO 8601 periods of contracts and governance
rules (``P30D``, ``P6M``, through isoduration) and the short spans or ISO dates of the command
line (``--since 7d``, ``--expires 2027-01-31``)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from .errors import MeshError

MONTH_DAYS, YEAR_DAYS = 30, 365
"""How long a month and a year of a period are, in days (a budget window is whole days)."""
_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def period_days(text: object) -> int | None:
    """An ISO 8601 period in whole days (``P30D`` → 30, ``P4W`` → 28, ``P6M`` → 180,
    ``P1Y`` → 365); None for anything else, a time part (``PT12H``) or a fraction."""
    if not isinstance(text, str) or not text.strip().startswith("P"):
        return None
    from isoduration import parse_duration
    from isoduration.parser.exceptions import DurationParsingException

    try:
        d = parse_duration(text.strip())
    except (DurationParsingException, ValueError, ArithmeticError):
        return None
    t, dd = d.time, d.date
    if t.hours or t.minutes or t.seconds:
        return None
    days = dd.years * YEAR_DAYS + dd.months * MONTH_DAYS + dd.weeks * 7 + dd.days
    if days != int(days) or days < 0:
        return None
    return int(days)


def span(text: str) -> timedelta | None:
    """A short span of the command line (``90m``, ``12h``, ``7d``, ``2w``); None otherwise."""
    m = _SPAN.match(text)
    if m is None:
        return None
    return timedelta(**{_SPAN_UNITS[m.group(2).lower()]: int(m.group(1))})


def moment(value: datetime | date | str, *, now: datetime | None = None, ago: bool,
           flag: str) -> datetime:
    """``value`` as an aware UTC datetime: a datetime (naive means UTC), a date (its midnight),
    an ISO date or time, or a span before (``ago``) or after ``now``. ``flag`` names the
    option in the error (``--since``)."""
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, date):
        at = datetime.combine(value, time.min)
    elif isinstance(value, str):
        delta = span(value)
        if delta is not None:
            now = now or datetime.now(timezone.utc)
            return now - delta if ago else now + delta
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError:
            raise MeshError(f"{flag} {value[:40]!r} is not a date — use an ISO date or time "
                            f"(2026-11-01, 2026-11-01T08:00) or a span like 7d, 12h, 90m, "
                            f"2w") from None
    else:
        raise MeshError(f"{flag} must be a date, a datetime or a string, not "
                        f"{type(value).__name__}")
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc)
