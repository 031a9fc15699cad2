"""JWT access and refresh tokens (python-jose): HS256, or RS256 with configured keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jose import JWTError, jwt

from app.config import Settings
from app.domain.errors import Unauthenticated


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
    def __init__(self, settings: Settings) -> None:
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

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(16)

    def issue(self, *, user_id: str, role: str, session_id: str, typ: str, jti: str, now: datetime) -> str:
        ttl = self.access_ttl if typ == "access" else self.refresh_ttl
        claims = {
            "sub": user_id, "role": role, "jti": jti, "sid": session_id, "typ": typ,
            "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()),
            "iss": self.issuer, "aud": self.audience,
        }
        return jwt.encode(claims, self._sign_key, algorithm=self.algorithm)

    def decode(self, token: str, *, typ: str) -> TokenClaims:
        """Verify signature, algorithm (never `none`), audience, issuer and expiry."""
        try:
            claims = jwt.decode(
                token, self._verify_key, algorithms=[self.algorithm], audience=self.audience, issuer=self.issuer,
                options={"require_exp": True, "require_iat": True, "require_sub": True, "require_jti": True},
            )
        except JWTError as exc:
            expired = "expired" in str(exc).lower()
            raise Unauthenticated(
                "The token has expired." if expired else "The token is invalid.",
                code="token_expired" if expired else "invalid_token",
            ) from exc
        if claims.get("typ") != typ or not claims.get("sid"):
            raise Unauthenticated("The token is invalid.", code="invalid_token")
        return TokenClaims(
            sub=claims["sub"], role=claims["role"], jti=claims["jti"], sid=claims["sid"], typ=claims["typ"],
            iat=datetime.fromtimestamp(claims["iat"], UTC), exp=datetime.fromtimestamp(claims["exp"], UTC),
        )
