"""Gateway rules: which upstream URL a request may reach, and which headers cross. No I/O."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes, urlsplit

from app.domain.errors import DomainError, InvalidInput, NotFound


class UnknownService(NotFound):
    """No upstream is configured under this name."""

    code = "unknown_service"


class GatewayPathRefused(InvalidInput):
    """The path would leave the upstream's base (`..`, encoded dots, an absolute URL)."""

    code = "invalid_gateway_path"


class UpstreamFailed(DomainError):
    """The upstream could not be reached or broke the exchange."""

    code = "bad_gateway"


class UpstreamTimeout(DomainError):
    """The upstream did not connect or answer in time."""

    code = "gateway_timeout"


# RFC 9110 7.6.1 connection-specific headers, plus the proxy's own: never forwarded either way.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade"})
# Dropped from requests: the gateway sets these itself (Host from the upstream URL, X-Forwarded-* from
# what it knows), and answers `Expect: 100-continue` itself.
REQUEST_DROPPED = frozenset({"host", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                             "forwarded"})
# The caller's credentials for this service: not the upstream's business unless configured.
CREDENTIALS = frozenset({"authorization", "cookie", "x-api-key"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _refuse(detail: str) -> GatewayPathRefused:
    return GatewayPathRefused(f"The gateway path is refused: {detail}.")


_PERCENT_U = re.compile(r"%u[0-9A-Fa-f]{4}")  # IIS's non-standard escapes


def _dots_only(segment: str) -> bool:
    """`.`, `..` and what some server reads as one of them: a path parameter after it (`..;x`, as
    Tomcat and Spring strip), look-alike dots NFKC folds into `.` (full-width, the two-dot leader),
    more dots or trailing spaces (Windows trims them)."""
    stem = unicodedata.normalize("NFKC", segment.split(";", 1)[0]).rstrip(" ")
    return bool(stem) and set(stem) == {"."}


def check_path(tail: str) -> None:
    """Refuse a path (as sent, percent-encoded) that could leave the upstream's base: dot segments in
    any encoding (decoded up to three times, so `%252e%252e` counts too) and any guise (`..;`,
    full-width dots), bytes that are not UTF-8 (overlong forms such as `%c0%ae` are how a lax
    decoder reads a dot), `%u` escapes, backslashes, a leading slash (`//host` is another host), an
    absolute URL, control characters and raw non-ASCII characters (a client percent-encodes them)."""
    if not tail.isascii():
        raise _refuse("characters outside ASCII must be percent-encoded")
    seen = tail
    for _ in range(3):
        for form in (seen, unicodedata.normalize("NFKC", seen)):  # full-width '／' and '＼' fold into '/' and '\\'
            if any(_dots_only(segment) for segment in form.split("/")):
                raise _refuse("'.' and '..' segments are not allowed")
            if "\\" in form:
                raise _refuse("backslashes are not allowed")
        if seen.startswith("/"):
            raise _refuse("it must not start with '/'")
        if _SCHEME.match(seen):
            raise _refuse("an absolute URL is not a path")
        if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in seen):
            raise _refuse("control characters are not allowed")
        if _PERCENT_U.search(seen):
            raise _refuse("'%u' escapes are not allowed")
        try:
            decoded = unquote_to_bytes(seen).decode("utf-8")  # strict: overlong and invalid forms fail
        except UnicodeDecodeError:
            raise _refuse("the path is not valid UTF-8 once decoded (overlong forms are refused)") from None
        if decoded == seen:
            return
        seen = decoded
    raise _refuse("it is encoded too many times")


def upstream_url(base: str, tail: str, query: str) -> str:
    """`base` + `/` + `tail` (+ `?query`), once `check_path` accepted `tail`; the result is checked to
    stay on the base's scheme, host, port and path."""
    check_path(tail)
    url = base.rstrip("/") + "/" + tail + (f"?{query}" if query else "")
    b, u = urlsplit(base), urlsplit(url)
    if (u.scheme, u.netloc) != (b.scheme, b.netloc) or not u.path.startswith(b.path.rstrip("/") + "/"):
        raise _refuse("it leaves the service's base URL")
    return url


def request_headers(headers: list[tuple[str, str]], *, forward_auth: bool) -> list[tuple[str, str]]:
    """The caller's headers that go upstream: no hop-by-hop ones (nor those `Connection` names),
    no Host or X-Forwarded-*, and no credentials unless `forward_auth`."""
    named = {token.strip().lower() for k, v in headers if k.lower() == "connection" for token in v.split(",")}
    dropped = HOP_BY_HOP | REQUEST_DROPPED | named | (frozenset() if forward_auth else CREDENTIALS)
    return [(k, v) for k, v in headers if k.lower() not in dropped]


# Never passed back to the caller, whatever the upstream sends: its cookies would be set on the
# service's origin; its software and version (Server, X-Powered-By, ...) are nobody's business; the
# origin-wide policies (HSTS, Alt-Svc, Clear-Site-Data, key pins, framing, sniffing, referrer, CORS)
# are the service's to set (SecurityHeadersMiddleware keeps a header already present, so an upstream's
# `Strict-Transport-Security: max-age=0` would otherwise replace the service's); Date is written by
# the service's HTTP server.
RESPONSE_DROPPED = frozenset({
    "set-cookie", "set-cookie2", "server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "date",
    "strict-transport-security", "alt-svc", "clear-site-data", "public-key-pins", "public-key-pins-report-only",
    "expect-ct", "x-frame-options", "x-content-type-options", "referrer-policy",
})
# An upstream's page is not the service's: a browser that opens one through the gateway runs none of
# its scripts in the service's origin (where Swagger UI keeps a caller's token).
RESPONSE_ADDED = ((b"content-security-policy", b"sandbox"),)


def response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's headers that go back to the caller: none of RESPONSE_DROPPED, no hop-by-hop
    ones (nor those `Connection` names), no CORS header; plus RESPONSE_ADDED."""
    named = {token.strip().lower() for k, v in headers if k.lower() == b"connection" for token in v.split(b",")}
    kept = []
    for k, v in headers:
        name = k.lower().decode("latin-1")
        if name in HOP_BY_HOP or name in RESPONSE_DROPPED or name.startswith("access-control-") or k.lower() in named:
            continue
        kept.append((k, v))
    return [*kept, *RESPONSE_ADDED]
