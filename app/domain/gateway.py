"""Gateway rules: which upstream URL a request may reach, and which headers cross. No I/O."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

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


def check_path(tail: str) -> None:
    """Refuse a path (as sent, percent-encoded) that could leave the upstream's base: dot segments in
    any encoding (decoded up to three times, so `%252e%252e` counts too), backslashes, a leading
    slash (`//host` is another host), an absolute URL, control characters."""
    seen = tail
    for _ in range(3):
        if any(segment in (".", "..") for segment in seen.split("/")):
            raise _refuse("'.' and '..' segments are not allowed")
        if "\\" in seen:
            raise _refuse("backslashes are not allowed")
        if seen.startswith("/"):
            raise _refuse("it must not start with '/'")
        if _SCHEME.match(seen):
            raise _refuse("an absolute URL is not a path")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in seen):
            raise _refuse("control characters are not allowed")
        decoded = unquote(seen)
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


def response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    named = {token.strip().lower() for k, v in headers if k.lower() == b"connection" for token in v.split(b",")}
    return [(k, v) for k, v in headers if k.lower().decode("latin-1") not in HOP_BY_HOP and k.lower() not in named]
