"""Contest-date windows: select problems released in [date_from, date_to), as LiveCodeBench versions do."""
from __future__ import annotations

import datetime
from typing import Any

# LiveCodeBench release windows (contest dates, start inclusive, end exclusive).
NAMED_WINDOWS = {
    "v5": ("2024-08-01", "2025-02-01"),
    "v6": ("2025-02-01", "2025-05-01"),
}


def contest_date(metadata: dict[str, Any]) -> datetime.date | None:
    """The problem's contest date from metadata['contest_date'] (ISO date or datetime), None if absent."""
    value = metadata.get("contest_date")
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"contest_date {value!r} is not an ISO date (YYYY-MM-DD...)") from None


def resolve_window(name: str | None, date_from: str | None, date_to: str | None) -> tuple[str | None, str | None]:
    if name is None:
        return date_from, date_to
    if name not in NAMED_WINDOWS:
        raise ValueError(f"unknown date window {name!r}; known: {sorted(NAMED_WINDOWS)}")
    if date_from or date_to:
        raise ValueError(f"give either the window {name!r} or --date-from/--date-to, not both")
    return NAMED_WINDOWS[name]


def in_window(metadata: dict[str, Any], date_from: str | None, date_to: str | None) -> bool:
    """True when no window is set, or the problem's date lies in it (undated problems are then excluded)."""
    if date_from is None and date_to is None:
        return True
    date = contest_date(metadata)
    if date is None:
        return False
    if date_from is not None and date < datetime.date.fromisoformat(date_from):
        return False
    return date_to is None or date < datetime.date.fromisoformat(date_to)
