"""A token's signature is checked once per process (the request limits and the route both read it),
but what depends on time or on the caller is judged on every use."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.domain.errors import Unauthenticated
from app.services.clock import Clock
from app.services.tokens import LEEWAY, TokenService


def _service(tmp_path) -> tuple[TokenService, Clock]:
    clock = Clock()
    return TokenService(Settings(jwt_secret="x" * 40, data_dir=tmp_path, _env_file=None), clock), clock


def test_a_token_read_before_still_expires_and_keeps_its_type(tmp_path):
    tokens, clock = _service(tmp_path)
    token = tokens.issue(user_id="u", role="customer", session_id="s", typ="access", jti="j", now=clock.now())
    assert tokens.decode(token, typ="access").sub == "u"
    with pytest.raises(Unauthenticated) as refused:
        tokens.decode(token, typ="refresh")
    assert refused.value.code == "invalid_token"
    clock.advance(seconds=tokens.access_ttl.total_seconds() + LEEWAY.total_seconds())
    with pytest.raises(Unauthenticated) as expired:
        tokens.decode(token, typ="access")
    assert expired.value.code == "token_expired"


def test_a_changed_copy_of_a_token_read_before_is_refused(tmp_path):
    tokens, clock = _service(tmp_path)
    token = tokens.issue(user_id="u", role="customer", session_id="s", typ="access", jti="j", now=clock.now())
    tokens.decode(token, typ="access")
    head, payload, signature = token.split(".")

    def changed(text: str) -> str:  # one character early in the text (the last may be padding bits only)
        return text[:5] + ("B" if text[5] == "A" else "A") + text[6:]

    for forged in (f"{head}.{payload}.{changed(signature)}", f"{head}.{changed(payload)}.{signature}"):
        with pytest.raises(Unauthenticated):
            tokens.decode(forged, typ="access")
