"""The service's notion of now; tests move it forward instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        # Millisecond precision: what MongoDB stores, so values compare equal after a round trip.
        now = datetime.now(UTC) + self.offset
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)
