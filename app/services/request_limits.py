"""Request rate limits shared by every instance (fixed windows in MongoDB), and the per-caller
cap on heavy requests in flight (per process).

The rate limit costs one atomic `$inc` upsert per request. A fixed window lets a caller burst up
to twice its limit across a window boundary; that is the price of a single write (a sliding
window needs a read of many events or two counters).

The in-flight cap is counted in this process only: N instances allow N times the cap in all.
It exists to stop one caller queueing unbounded model work on an instance, which is a per-instance
resource; the shared rate limit bounds the total."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from app.domain.rate_limits import RateLimit, RouteGroup, TooManyConcurrent
from app.repositories.rate_counters import RateCounterRepository
from app.services.clock import Clock


@dataclass(frozen=True)
class WindowQuota:
    """What is left of a limit in the current window: sent back as X-RateLimit-* headers."""

    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the window ends
    retry_after: int  # seconds until then (at least 1)

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-ratelimit-limit", str(self.limit).encode()),
                (b"x-ratelimit-remaining", str(max(self.remaining, 0)).encode()),
                (b"x-ratelimit-reset", str(self.reset_at).encode())]


class RequestLimiter:
    def __init__(self, repo: RateCounterRepository, clock: Clock, limits: dict[RouteGroup, RateLimit]) -> None:
        self.repo, self.clock, self.limits = repo, clock, limits

    async def hit(self, subject: str, group: RouteGroup, per_minute: int | None = None) -> WindowQuota:
        """Count a request of `subject` (`key:<id>`, `user:<id>` or `ip:<address>`) in `group`.
        `per_minute` (an API key's own limit) replaces the group's limit."""
        limit = RateLimit(per_minute, 60) if per_minute else self.limits[group]
        now = self.clock.now()
        start = limit.window_start(now)
        count = await self.repo.hit(subject, group.value, start, limit.seconds)
        reset_at = start + limit.seconds
        return WindowQuota(limit=limit.count, remaining=limit.count - count, reset_at=reset_at,
                           retry_after=max(1, int(reset_at - now.timestamp() + 0.999)))


class InFlightLimiter:
    """At most `cap` heavy requests per caller in flight in this process; more are refused at once."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._in_flight: Counter[str] = Counter()

    def acquire(self, caller: str) -> None:
        """Take a slot, or raise 429 `too_many_concurrent` at once; `release` gives it back."""
        if self._in_flight[caller] >= self.cap:
            raise TooManyConcurrent(f"At most {self.cap} of your verification requests may run at once; "
                                    "wait for one to finish.", retry_after=1, cap=self.cap)
        self._in_flight[caller] += 1

    def release(self, caller: str) -> None:
        self._in_flight[caller] -= 1
        if self._in_flight[caller] <= 0:
            del self._in_flight[caller]

    def in_flight(self, caller: str) -> int:
        return self._in_flight[caller]
