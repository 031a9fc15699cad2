"""The request's credential, read once from its headers and kept on the request's scope: the
request limits (which caller is counted) and the route's dependencies (who is signed in, which
key's scopes apply) read that one value, so they can never judge two different headers.

One credential per request: two `Authorization` headers, two `X-API-Key` headers, or one of each
are refused with 400 `duplicate_credentials` before the limits and the routes look at it (the
request limits' middleware, app/api/rate_limit.py, reads it first)."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from app.domain.errors import InvalidInput

_STATE_KEY = "credential"
_NAMES = (b"authorization", b"x-api-key")


@dataclass(frozen=True)
class Credential:
    bearer: str | None = None  # the token of `Authorization: Bearer <token>`; another scheme is none
    api_key: str | None = None  # the `X-API-Key` value


def parse(headers: list[tuple[bytes, bytes]]) -> Credential:
    """The credential the headers carry; raises InvalidInput when they carry more than one."""
    found = [(name, value) for name, value in headers if name.lower() in _NAMES]
    if len(found) > 1:
        raise InvalidInput("Send one credential per request: one Authorization header or one X-API-Key, "
                           "not both and not twice.", code="duplicate_credentials")
    if not found:
        return Credential()
    name, raw = found[0]
    value = raw.decode("latin-1").strip()
    if name.lower() == b"x-api-key":
        return Credential(api_key=value or None)
    scheme, _, token = value.partition(" ")
    return Credential(bearer=token.strip() or None) if scheme.lower() == "bearer" else Credential()


def credential_of(scope: MutableMapping[str, Any]) -> Credential:
    """The request's credential (parsed on first use, then kept); raises InvalidInput as `parse` does."""
    state = scope.setdefault("state", {})
    if _STATE_KEY not in state:
        state[_STATE_KEY] = parse(scope["headers"])
    return state[_STATE_KEY]
