"""Webhook endpoints, their signing secrets and delivery attempts; the URL policy. No I/O.

Deliveries follow the Standard Webhooks specification (https://www.standardwebhooks.com): body
`{type, timestamp, data}`, headers `webhook-id` (the event id, the same on every retry and
redelivery, so receivers drop duplicates), `webhook-timestamp` and `webhook-signature`
(`v1,<base64 HMAC-SHA256>`, space-separated when several secrets sign, as during a rotation).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.events import EVENT_TYPES

WEBHOOK_DELIVERY_JOB = "webhook_delivery"
# Deliveries wait on other people's servers: they run on workers of their own (WEBHOOK_DELIVERY_WORKERS),
# never on the JOB_WORKERS that run KYC checks, profile risk and notices.
WEBHOOK_DELIVERY_LANE = "webhooks"
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class SigningSecret:
    secret: str  # `whsec_...`; stored encrypted, shown once
    created_at: datetime
    expires_at: datetime | None = None  # set when rotated away: it keeps signing until then

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class WebhookEndpoint:
    id: str
    url: str
    events: tuple[str, ...]
    description: str
    enabled: bool
    secrets: tuple[SigningSecret, ...]
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None  # "admin", "gone" (a 410) or "failing" (WEBHOOK_DISABLE_AFTER_DAYS)
    failing_since: datetime | None = None  # the first failed try since the last success
    rev: int = 0  # bumped by every secret rotation (the repository's race guard)

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret first, then any rotated-away one still in its grace period."""
        live = [s for s in self.secrets if s.active(now)]
        return [s.secret for s in sorted(live, key=lambda s: s.expires_at is not None)]

    def previous_secret_expires_at(self, now: datetime) -> datetime | None:
        return max((s.expires_at for s in self.secrets if s.expires_at and s.expires_at > now), default=None)


@dataclass(frozen=True)
class DeliveryAttempt:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    delivery: str  # which delivery this try belongs to: "auto" or "redeliver:<id>"
    attempt: int  # 1-based within its delivery
    at: datetime
    url: str
    status_code: int | None = None
    duration_ms: float | None = None
    error: str | None = None
    next_retry_at: datetime | None = None
    success: bool = field(default=False)


# Svix's schedule (https://docs.svix.com/retries): the waits after each failed try, ~27.6 h in all.
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


def retry_delay(schedule: tuple[float, ...], attempt: int, *, jitter: float, rand: float,
                retry_after: float | None = None, retry_after_cap: float = 86_400.0) -> float | None:
    """Seconds from the failed try `attempt` (1-based) to the next; None after the last. The wait is
    scaled by a factor in [1 - jitter, 1 + jitter] (`rand` in [0, 1]), so receivers that come back are
    not hit by every retry at once; a receiver's `Retry-After` (429, 503) makes it longer, never
    shorter, up to `retry_after_cap`."""
    if attempt > len(schedule):
        return None
    delay = schedule[attempt - 1] * (1 + jitter * (2 * rand - 1))
    return delay if retry_after is None else max(delay, min(retry_after, retry_after_cap))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP date (RFC 9110 10.2.3); None if absent or bad."""
    if not value:
        return None
    if value.strip().isdecimal():  # not isdigit(): "²" is a digit that float() refuses
        return float(value.strip())
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (at - now).total_seconds()) if at.tzinfo else None


# --- the URL policy -------------------------------------------------------------------------

@dataclass(frozen=True)
class WebhookTarget:
    scheme: str
    host: str  # as written (a name or an address literal, without brackets)
    port: int
    literal: bool  # the host is an IP address


def _refuse(message: str) -> InvalidWebhookUrl:
    return InvalidWebhookUrl(message, errors=[{"field": "url", "message": message}])


def parse_target(url: str, *, production: bool) -> WebhookTarget:
    """Scheme, host and port of an endpoint URL, refusing what the policy never allows, before any
    lookup: `https` only in production, no credentials, a host."""
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("The URL is not valid.") from None
    scheme = parts.scheme.lower()
    allowed = ("https",) if production else ("https", "http")
    if scheme not in allowed:
        raise _refuse("Webhook URLs must use https." if production else "Webhook URLs must use http or https.")
    if parts.username is not None or parts.password is not None:
        raise _refuse("The URL must not carry credentials.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refuse("The URL has no host.")
    literal = True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        literal = False
    return WebhookTarget(scheme, host, port or (443 if scheme == "https" else 80), literal)


# IPv6 prefixes that carry an IPv4 address in their last 32 bits (the standard library extracts the
# IPv4-mapped, 6to4 and Teredo forms itself). The well-known NAT64 prefix may only carry public IPv4
# (RFC 6052 3.1), so an address in it is judged by that IPv4 alone.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_LAST_32_BITS = (("NAT64", _NAT64_WELL_KNOWN), ("local-use NAT64", ipaddress.IPv6Network("64:ff9b:1::/48")),
                 ("IPv4-translated", ipaddress.IPv6Network("::ffff:0:0:0/96")),
                 ("IPv4-compatible", ipaddress.IPv6Network("::/96")))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """Every IPv4 address `ip` carries, with the name of the form that carries it: a packet to it
    may end up at that IPv4 address (a 6to4 relay, a Teredo server or client, a NAT64 gateway)."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip.ipv4_mapped is not None:
        found.append(("IPv4-mapped", ip.ipv4_mapped))
    if ip.sixtofour is not None:
        found.append(("6to4", ip.sixtofour))
    if ip.teredo is not None:
        found += [("Teredo server", ip.teredo[0]), ("Teredo client", ip.teredo[1])]
    for form, network in _LAST_32_BITS:
        if ip in network and int(ip) > 1:  # `::` and `::1` are themselves, not IPv4-compatible
            found.append((form, ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return found


def _judged(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for what, bad in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                      ("reserved", ip.is_reserved), ("unspecified", ip.is_unspecified), ("private", ip.is_private)):
        if bad:
            return f"{what} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


def address_refusal(address: str, *, target: WebhookTarget, production: bool) -> str | None:
    """Why a resolved address may not be called, or None. Only public (globally routable) unicast
    addresses pass; outside production an IPv4 loopback written as such (`http://127.0.0.1:port`)
    is allowed for local receivers. A name that resolves to loopback is refused everywhere: that
    is how DNS rebinding reaches the service's own network. An IPv6 address that carries an IPv4
    address (IPv4-mapped, 6to4, Teredo server and client, NAT64, IPv4-compatible) is refused when
    that IPv4 address would be, always: the loopback allowance is for plain IPv4 only."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        if not production and target.literal and ip.is_loopback:
            return None
        return _judged(ip)
    for form, v4 in embedded_ipv4(ip):
        reason = _judged(v4)
        if reason:
            return f"{reason} (carried by the {form} address {ip})"
    if ip.ipv4_mapped is not None or ip in _NAT64_WELL_KNOWN:
        return None  # the IPv4 address it stands for passed: that is where the packet goes
    return _judged(ip)


def check_addresses(addresses: list[str], *, target: WebhookTarget, production: bool) -> None:
    """Every address the host resolves to must pass (a name with one private address among
    public ones is refused: the client may pick either)."""
    if not addresses:
        raise _refuse(f"The host {target.host} does not resolve.")
    for address in addresses:
        reason = address_refusal(address, target=target, production=production)
        if reason:
            raise _refuse(f"The host {target.host} resolves to a {reason}; webhooks go to public addresses only.")


def check_events(events: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        message = f"Unknown event types: {', '.join(unknown)}; use: {', '.join(EVENT_TYPES)}."
        raise InvalidWebhookEvents(message, errors=[{"field": "events", "message": message}])
    if not events:
        message = "Subscribe to at least one event type."
        raise InvalidWebhookEvents(message, errors=[{"field": "events", "message": message}])
    return tuple(dict.fromkeys(events))


class InvalidWebhookUrl(InvalidInput):
    """The URL is not an allowed webhook target."""

    code = "invalid_webhook_url"


class InvalidWebhookEvents(InvalidInput):
    """Unknown or missing event types."""

    code = "invalid_webhook_events"


class WebhookNotFound(NotFound):
    """No such webhook endpoint."""

    code = "webhook_not_found"


class DeliveryAttemptNotFound(NotFound):
    """No such delivery attempt for this endpoint."""

    code = "webhook_attempt_not_found"


class WebhookDisabled(Conflict):
    """The endpoint is disabled."""

    code = "webhook_disabled"
