"""Request rate limits by route group (fixed windows) and per-caller concurrency caps. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.domain.errors import TooManyRequests


class RouteGroup(StrEnum):
    AUTH = "auth"
    OTP = "otp"
    VERIFICATION = "verification"
    DEFAULT = "default"


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True)
class RateLimit:
    """`count` requests per `seconds`-long fixed window."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, spec: str) -> RateLimit:
        """`"20/minute"` (units: second, minute, hour, day)."""
        match = _SPEC.match(spec)
        if not match or int(match.group(1)) < 1:
            raise ValueError(f"{spec!r}: expected '<n>/<second|minute|hour|day>' with n >= 1")
        return cls(int(match.group(1)), _UNITS[match.group(2)])

    def window_start(self, now: datetime) -> int:
        """Epoch second at which the window holding `now` began (windows align on the epoch)."""
        epoch = int(now.timestamp())
        return epoch - epoch % self.seconds


DEFAULT_LIMITS: dict[str, str] = {"auth": "60/minute", "otp": "30/minute", "verification": "60/minute",
                                  "default": "600/minute"}

# Routes under the API prefix, by path (a route and everything below it); the first match wins.
# Routes that send or check one-time codes are `otp`; the rest of /auth is `auth`.
_GROUPS: tuple[tuple[str, RouteGroup], ...] = (
    ("/auth/resend-otp", RouteGroup.OTP), ("/auth/verify-otp", RouteGroup.OTP),
    ("/auth/login/otp", RouteGroup.OTP), ("/auth/login/verify-otp", RouteGroup.OTP),
    ("/auth/password/forgot", RouteGroup.OTP), ("/auth/password/reset", RouteGroup.OTP),
    ("/auth", RouteGroup.AUTH),
    ("/kyc/verify", RouteGroup.VERIFICATION), ("/ocr/extract", RouteGroup.VERIFICATION),
    ("/liveness", RouteGroup.VERIFICATION),
)
# Never limited: load balancers and probes poll health; docs are static.
UNLIMITED = ("/health",)


def _under(path: str, route: str) -> bool:
    return path == route or path.startswith(route + "/")


def group_for(path: str) -> RouteGroup | None:
    """The group of a path below the API prefix; None for unlimited routes."""
    if any(_under(path, p) for p in UNLIMITED):
        return None
    return next((group for route, group in _GROUPS if _under(path, route)), RouteGroup.DEFAULT)


class TooManyConcurrent(TooManyRequests):
    """Too many of this caller's requests that run a model are already in flight."""

    code = "too_many_concurrent"
