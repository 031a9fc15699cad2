"""Pure rules behind the integrator features: limit specs and windows, route groups, key scopes and
expiry, and which gateway paths and headers may cross."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.api_keys import LEGACY_SCOPES, ApiKey, InsufficientScope, Scope, check_expiry
from app.domain.errors import RuleViolation
from app.domain.gateway import GatewayPathRefused, check_path, request_headers, response_headers, upstream_url
from app.domain.rate_limits import RateLimit, RouteGroup, group_for

NOW = datetime(2026, 11, 22, 10, 15, 42, tzinfo=UTC)


@pytest.mark.parametrize("spec, expected", [("20/minute", (20, 60)), ("5 / hour", (5, 3600)), ("1/second", (1, 1)),
                                            ("1000/day", (1000, 86400)), ("3/minutes", (3, 60))])
def test_limit_specs(spec, expected):
    limit = RateLimit.parse(spec)
    assert (limit.count, limit.seconds) == expected


@pytest.mark.parametrize("spec", ["0/minute", "20", "20/week", "-1/minute", "twenty/minute", "20/minute/2", ""])
def test_bad_limit_specs_are_refused(spec):
    with pytest.raises(ValueError):
        RateLimit.parse(spec)


def test_windows_align_on_the_epoch():
    assert RateLimit(5, 60).window_start(NOW) == int(datetime(2026, 11, 22, 10, 15, tzinfo=UTC).timestamp())
    assert RateLimit(5, 3600).window_start(NOW) == int(datetime(2026, 11, 22, 10, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("path, group", [
    ("/auth/login", RouteGroup.AUTH), ("/auth/register", RouteGroup.AUTH), ("/auth/refresh", RouteGroup.AUTH),
    ("/auth/verify-otp", RouteGroup.OTP), ("/auth/login/verify-otp", RouteGroup.OTP),
    ("/auth/password/forgot", RouteGroup.OTP), ("/auth/resend-otp", RouteGroup.OTP),
    ("/kyc/verify", RouteGroup.VERIFICATION), ("/ocr/extract", RouteGroup.VERIFICATION),
    ("/liveness/challenge", RouteGroup.VERIFICATION),
    ("/users/me", RouteGroup.DEFAULT), ("/kyc/verifying", RouteGroup.DEFAULT), ("/gateway/x/y", RouteGroup.DEFAULT),
    ("/authority", RouteGroup.DEFAULT), ("/health", None),
])
def test_route_groups(path, group):
    assert group_for(path) == group


def test_scopes_and_expiry_of_a_key():
    key = ApiKey(id="k", name="n", prefix="p", created_at=NOW, revoked_at=None, last_used_at=None,
                 scopes=frozenset({Scope.OCR}), expires_at=NOW + timedelta(hours=1))
    key.require(Scope.OCR)
    with pytest.raises(InsufficientScope) as refused:
        key.require(Scope.VERIFY)
    assert refused.value.details["scope"] == "verify" and "'verify'" in refused.value.message
    assert not key.is_expired(NOW) and key.is_expired(NOW + timedelta(hours=1))
    assert Scope.GATEWAY not in LEGACY_SCOPES


def test_expiry_must_be_future_and_bounded():
    check_expiry(None, NOW)
    check_expiry(NOW + timedelta(days=730), NOW)
    for bad in (NOW, NOW - timedelta(seconds=1), NOW + timedelta(days=731)):
        with pytest.raises(RuleViolation) as refused:
            check_expiry(bad, NOW)
        assert refused.value.details["errors"][0]["field"] == "expires_at"


@pytest.mark.parametrize("tail", ["v1/users", "a/b.c/d..e/f", "search/100%25", "x%2Fy", "", "files/.well-known",
                                  "%E0%A4%95"])
def test_paths_inside_the_base_pass(tail):
    check_path(tail)


@pytest.mark.parametrize("tail", ["..", "a/../../b", "%2e%2e/x", "%2E%2e", "a/%252e%252e/b", "..%2fx", "a%5c..%5cb",
                                  "/etc/passwd", "%2Fetc", "http://evil/x", "http:%2F%2Fevil", "a/./b", "a%00b",
                                  "%25252e%25252e/x"])
def test_paths_leaving_the_base_are_refused(tail):
    with pytest.raises(GatewayPathRefused):
        check_path(tail)


def test_upstream_urls_stay_under_the_base():
    assert upstream_url("http://10.0.0.5:8080/svc/", "v1/a", "q=1") == "http://10.0.0.5:8080/svc/v1/a?q=1"
    assert upstream_url("http://10.0.0.5:8080", "", "") == "http://10.0.0.5:8080/"
    # After the base's slash, `@` and `:` are path characters: the host cannot change.
    assert upstream_url("http://10.0.0.5:8080", "@evil.example/x", "") == "http://10.0.0.5:8080/@evil.example/x"
    with pytest.raises(GatewayPathRefused):  # a first segment that reads as a scheme is refused outright
        upstream_url("http://10.0.0.5:8080/svc", "evil.example:80/x", "")


def test_headers_that_cross():
    incoming = [("Host", "api"), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "5"),
                ("Transfer-Encoding", "chunked"), ("Authorization", "Bearer t"), ("Cookie", "c"), ("X-API-Key", "k"),
                ("X-Forwarded-For", "1.2.3.4"), ("Accept", "a"), ("Accept", "b"), ("Content-Length", "3")]
    assert request_headers(incoming, forward_auth=False) == [("Accept", "a"), ("Accept", "b"), ("Content-Length", "3")]
    kept = request_headers(incoming, forward_auth=True)
    assert ("Authorization", "Bearer t") in kept and ("Cookie", "c") in kept and ("X-API-Key", "k") in kept
    out = response_headers([(b"content-length", b"3"), (b"connection", b"close, x-up"), (b"x-up", b"1"),
                            (b"set-cookie", b"a"), (b"link", b"a"), (b"link", b"b"), (b"server", b"nginx"),
                            (b"transfer-encoding", b"chunked")])
    assert out == [(b"content-length", b"3"), (b"link", b"a"), (b"link", b"b"), (b"content-security-policy", b"sandbox")]
