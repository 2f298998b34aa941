"""Instants and dates accepted by the vetting core: aware, in UTC, within bounds.

Bounds keep every derived date (validity up to 50 years, deadlines up to 60
business days) representable, so arithmetic never overflows on hostile input.
"""

from __future__ import annotations

import datetime as dt

from relto.vetting.errors import VettingInputError

__all__ = ["EARLIEST", "LATEST", "check_date", "utc"]

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def utc(at: dt.datetime, what: str = "at") -> dt.datetime:
    """``at`` in UTC; naive datetimes are a caller's bug (``ValueError``)."""
    if not isinstance(at, dt.datetime):
        raise TypeError(f"{what} must be a datetime")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    try:
        value = at.astimezone(dt.UTC)
    except OverflowError:
        raise VettingInputError(f"{what} is out of range") from None
    if not EARLIEST <= value < LATEST:
        raise VettingInputError(f"{what} must be between 1900 and 9000")
    return value


def check_date(d: dt.date, what: str = "date") -> dt.date:
    if isinstance(d, dt.datetime) or not isinstance(d, dt.date):
        raise VettingInputError(f"{what} must be a date")
    if not EARLIEST.date() <= d < LATEST.date():
        raise VettingInputError(f"{what} must be between 1900 and 9000")
    return d
