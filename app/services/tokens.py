"""JWT access and refresh tokens (python-jose): HS256, or RS256 with configured keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import JWTError, jwt

from app.config import Settings
from app.domain.errors import Unauthenticated
from app.services.clock import Clock

# Every claim a token of ours carries; a token missing one was not issued by `issue` (python-jose,
# for one, accepts a token without `aud` even when an audience is expected).
REQUIRED_CLAIMS = ("aud", "iss", "exp", "iat", "sub", "sid", "jti", "typ", "role")
# Clock skew tolerated between the replicas that issue and check tokens, on `iat` and `exp`.
LEEWAY = timedelta(seconds=30)
_VERIFIED_CACHE = 10_000  # tokens whose signature was checked, per process (a few MB at most)


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    role: str
    jti: str
    sid: str
    typ: str
    iat: datetime
    exp: datetime


class TokenService:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.algorithm = settings.jwt_algorithm
        if self.algorithm == "RS256":
            if not (settings.jwt_private_key_file and settings.jwt_public_key_file):
                raise RuntimeError("RS256 needs JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE")
            self._sign_key = settings.jwt_private_key_file.read_text()
            self._verify_key = settings.jwt_public_key_file.read_text()
        else:
            self._sign_key = self._verify_key = settings.resolve_jwt_secret()
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        self.refresh_ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
        # Token -> its verified claims: the signature and the claims' shape are checked once per process
        # (the request limits and the route both read the token); time and type are judged every call.
        self._verified: dict[str, dict[str, Any]] = {}

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(16)

    def issue(self, *, user_id: str, role: str, session_id: str, typ: str, jti: str, now: datetime) -> str:
        ttl = self._ttl(typ)
        claims = {
            "sub": user_id, "role": role, "jti": jti, "sid": session_id, "typ": typ,
            "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()),
            "iss": self.issuer, "aud": self.audience,
        }
        return jwt.encode(claims, self._sign_key, algorithm=self.algorithm)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token, self._verify_key, algorithms=[self.algorithm], audience=self.audience, issuer=self.issuer,
                # No `require_exp`/`require_iat` here: python-jose would then judge them on the wall clock.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         **{f"require_{name}": True for name in ("aud", "iss", "sub", "jti")}},
            )
        except JWTError as exc:
            raise _invalid() from exc
        if (any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS)
                or not all(isinstance(claims[name], str) for name in ("sub", "sid", "jti", "typ", "role"))
                or not all(type(claims[name]) in (int, float) for name in ("iat", "exp"))):  # bool is an int: refused
            raise _invalid()
        return claims

    def _ttl(self, typ: str) -> timedelta:
        return self.access_ttl if typ == "access" else self.refresh_ttl

    def decode(self, token: str, *, typ: str) -> TokenClaims:
        """Verify signature, algorithm (never `none`), audience and issuer with python-jose, then
        require every claim and judge `iat` and `exp` against the service clock (with LEEWAY)."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if len(self._verified) >= _VERIFIED_CACHE:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = claims
        iat_ts, exp_ts, now_ts = claims["iat"], claims["exp"], self.clock.now().timestamp()
        if claims["typ"] != typ or iat_ts > now_ts + LEEWAY.total_seconds() or exp_ts <= iat_ts:
            raise _invalid()
        if exp_ts + LEEWAY.total_seconds() <= now_ts:
            raise Unauthenticated("The token has expired.", code="token_expired")
        if exp_ts - iat_ts > self._ttl(typ).total_seconds():  # longer-lived than any we issue
            raise _invalid()
        try:
            iat, exp = datetime.fromtimestamp(iat_ts, UTC), datetime.fromtimestamp(exp_ts, UTC)
        except (OverflowError, OSError, ValueError) as exc:  # past what a datetime holds (year 9999)
            raise _invalid() from exc
        return TokenClaims(sub=claims["sub"], role=claims["role"], jti=claims["jti"], sid=claims["sid"],
                           typ=claims["typ"], iat=iat, exp=exp)


def _invalid() -> Unauthenticated:
    return Unauthenticated("The token is invalid.", code="invalid_token")
