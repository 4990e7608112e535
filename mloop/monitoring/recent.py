"""The live data of a model version over its monitor's latest windows, as one profile: what "recent traffic" is
when a page measures drift against the version's training profile.

Each window's profile is kept on the training profile's bins, so the last ``windows`` of them merge into one
profile exactly (no rows are read again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.monitoring._tables import monitor_profiles
from mloop.store.sql import open_database
from mloop.validation.profile import Profile

__all__ = ["MAX_WINDOWS", "RecentProfile", "recent_profile"]

MAX_WINDOWS = 1000


@dataclass(frozen=True, slots=True)
class RecentProfile:
    """The merged profile of ``windows`` windows, the first starting at ``first`` and the last at ``last`` (ms)."""

    profile: Profile
    windows: int
    first: int
    last: int


def recent_profile(monitor: str, version: str, windows: int = 12, role: str = "primary",
                   settings: Settings | None = None) -> RecentProfile:
    """The last ``windows`` windows of ``version``'s ``role`` traffic that ``monitor`` computed, merged.

    >>> import tempfile
    >>> recent_profile("none", "1", settings=Settings.load(home=tempfile.mkdtemp()))
    Traceback (most recent call last):
    ...
    mloop.errors.NotFoundError: Monitor 'none' has no window of v1 (primary) yet: run it first (mloop monitor run none).
    """
    if not 1 <= int(windows) <= MAX_WINDOWS:
        raise InvalidInputError(field="windows", value=windows, expected=f"1 to {MAX_WINDOWS} windows")
    settings = settings or Settings.load()
    t = monitor_profiles.c
    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(select(t.start, t.profile).where(t.monitor == monitor, t.version == str(version),
                                                              t.role == role)
                            .order_by(t.start.desc()).limit(int(windows))).all()
    if not rows:
        raise NotFoundError(f"Monitor {monitor!r} has no window of v{version} ({role}) yet: run it first "
                            f"(mloop monitor run {monitor}).", field="monitor")
    merged = Profile.from_dict(json.loads(rows[0].profile))
    for row in rows[1:]:
        merged = merged.merge(Profile.from_dict(json.loads(row.profile)))
    return RecentProfile(merged, len(rows), rows[-1].start, rows[0].start)
