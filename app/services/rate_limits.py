"""Sliding-window limits over `rate_events` (OTP sends, failed logins, lockouts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.errors import TooManyRequests
from app.repositories.rate_events import RateEventRepository
from app.services.clock import Clock


@dataclass(frozen=True)
class Quota:
    """What is left of a limit: sent back as X-RateLimit-* headers."""

    limit: int
    remaining: int
    reset_at: datetime


class RateLimiter:
    def __init__(self, repo: RateEventRepository, clock: Clock) -> None:
        self.repo, self.clock = repo, clock

    async def check(self, key: str, *, cooldown: timedelta | None = None, limit: int, window: timedelta) -> None:
        """Raise 429 if one more event for `key` would break the cooldown or the window limit.

        The two are reported apart: `Retry-After` says when the next try may succeed (the later of
        the two waits), the quota (`remaining`, `reset_at`) describes the window limit alone, so a
        caller in its one-minute cooldown is not told its hourly quota is spent."""
        now = self.clock.now()
        times = await self.repo.times_since(key, now - window)  # newest first
        quota = Quota(limit=limit, remaining=max(limit - len(times), 0), reset_at=times[-1] + window if times else now)
        waits = []
        if cooldown and times and now - times[0] < cooldown:
            waits.append(cooldown - (now - times[0]))
        if quota.remaining == 0:
            waits.append(quota.reset_at - now)
        if not waits:
            return
        message = ("Too many requests; try again later." if quota.remaining == 0
                   else "Please wait before asking for another code.")
        raise TooManyRequests(message, retry_after=int(max(waits).total_seconds()) + 1, limit=limit,
                              remaining=quota.remaining, reset_at=quota.reset_at)

    async def hit(self, key: str, window: timedelta) -> int:
        """Record an event; return how many fall in the window, this one included."""
        now = self.clock.now()
        await self.repo.add(key, now, window)
        return len(await self.repo.times_since(key, now - window))

    async def record(self, key: str, *, limit: int, window: timedelta) -> Quota:
        """Record an event and say how much of `limit` is left in the window."""
        now = self.clock.now()
        await self.repo.add(key, now, window)
        times = await self.repo.times_since(key, now - window)
        return Quota(limit=limit, remaining=max(limit - len(times), 0), reset_at=times[-1] + window)

    async def clear(self, key: str) -> None:
        await self.repo.clear(key)

    async def locked_for(self, key: str) -> int:
        """Seconds left on a lock stored as an event whose window is its duration; 0 when free."""
        now = self.clock.now()
        until = await self.repo.latest_expiry(key, now)
        return int((until - now).total_seconds()) + 1 if until else 0

    async def lock(self, key: str, duration: timedelta) -> None:
        await self.repo.add(key, self.clock.now(), duration)
