"""Tokens signed with the real key are still refused unless they carry every claim we issue,
with `iat` not in the future and `exp` not past (30 s leeway for clock skew)."""

from __future__ import annotations

from typing import Any

import pytest
from jose import jwt

from tests.conftest import bearer


def _forge(api: Any, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, api.settings.jwt_secret.get_secret_value(), algorithm="HS256")


async def _me(api: Any, token: str) -> Any:
    return await api.client.get("/users/me", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def signed_in(api: Any, email: str) -> dict[str, Any]:
    tokens = await api.customer(email)
    return {"tokens": tokens, "claims": jwt.get_unverified_claims(tokens["access_token"])}


async def test_the_genuine_token_and_a_faithful_copy_are_accepted(api, signed_in):
    """The forging helper itself works: a re-signed copy of the real claims is accepted."""
    assert (await api.client.get("/users/me", headers=bearer(signed_in["tokens"]))).status_code == 200
    r = await _me(api, _forge(api, signed_in["claims"]))
    assert r.status_code == 200 and r.json()["email"] == signed_in["tokens"]["email"]


@pytest.mark.parametrize("claim", ["aud", "iss", "exp", "iat", "sub", "sid", "jti", "typ", "role"])
async def test_a_token_without_a_required_claim_is_401(api, signed_in, claim):
    claims = {k: v for k, v in signed_in["claims"].items() if k != claim}
    r = await _me(api, _forge(api, claims))
    assert r.status_code == 401, r.text
    assert r.json()["error_code"] == "invalid_token" and r.json()["detail"] == "The token is invalid."
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("claim, value", [
    ("aud", ""), ("sid", ""), ("sub", 12345), ("typ", ["access"]), ("role", None),
    ("iat", "1700000000"), ("exp", True), ("exp", 10**20), ("exp", 253402300799), ("exp", float("nan")), ("iat", -(10**20)),
])
async def test_claims_of_the_wrong_type_or_out_of_range_are_401_not_500(api, signed_in, claim, value):
    r = await _me(api, _forge(api, {**signed_in["claims"], claim: value}))
    assert r.status_code == 401, r.text
    assert r.json()["error_code"] == "invalid_token"


async def test_a_refresh_token_without_audience_cannot_refresh(api, signed_in):
    claims = jwt.get_unverified_claims(signed_in["tokens"]["refresh_token"])
    del claims["aud"]
    r = await api.client.post("/auth/refresh", json={"refresh_token": _forge(api, claims)})
    assert r.status_code == 401 and r.json()["error_code"] == "invalid_token"
    r = await api.client.post("/auth/refresh", json={"refresh_token": signed_in["tokens"]["refresh_token"]})
    assert r.status_code == 200  # the genuine one was not spent by the forged attempt


async def test_iat_in_the_future_is_refused_beyond_the_leeway(api, signed_in):
    claims = signed_in["claims"]
    r = await _me(api, _forge(api, {**claims, "iat": claims["iat"] + 300, "exp": claims["exp"] + 300}))
    assert r.status_code == 401 and r.json()["error_code"] == "invalid_token"
    r = await _me(api, _forge(api, {**claims, "iat": claims["iat"] + 10}))  # skew within 30 s
    assert r.status_code == 200


async def test_iat_after_exp_is_refused(api, signed_in):
    claims = signed_in["claims"]
    r = await _me(api, _forge(api, {**claims, "iat": claims["iat"] - 60, "exp": claims["iat"] - 61}))
    assert r.status_code == 401 and r.json()["error_code"] in {"invalid_token", "token_expired"}
    r = await _me(api, _forge(api, {**claims, "exp": claims["iat"]}))
    assert r.status_code == 401 and r.json()["error_code"] == "invalid_token"


async def test_a_token_living_longer_than_its_kind_is_refused(api, signed_in):
    claims, ttl = signed_in["claims"], api.settings.access_token_ttl_seconds
    assert claims["exp"] - claims["iat"] == ttl
    r = await _me(api, _forge(api, {**claims, "exp": claims["iat"] + ttl + 1}))
    assert r.status_code == 401 and r.json()["error_code"] == "invalid_token"


async def test_expiry_is_judged_on_the_service_clock_with_leeway(api, signed_in):
    ttl = api.settings.access_token_ttl_seconds
    api.container.clock.advance(seconds=ttl + 10)  # 10 s past exp: within the leeway
    assert (await api.client.get("/users/me", headers=bearer(signed_in["tokens"]))).status_code == 200
    api.container.clock.advance(seconds=25)  # 35 s past exp
    r = await api.client.get("/users/me", headers=bearer(signed_in["tokens"]))
    assert r.status_code == 401 and r.json()["error_code"] == "token_expired"
    assert r.json()["detail"] == "The token has expired."
