"""Token service: RS256 with configured keys, and refusal of foreign tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.config import Settings
from app.domain.errors import Unauthenticated
from app.services.tokens import TokenService


def test_rs256_round_trip_and_hs256_tokens_are_refused(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "private.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    rs = TokenService(Settings(jwt_algorithm="RS256", jwt_private_key_file=tmp_path / "private.pem",
                               jwt_public_key_file=tmp_path / "public.pem", data_dir=tmp_path, _env_file=None))
    now = datetime.now(UTC)
    token = rs.issue(user_id="u", role="admin", session_id="s", typ="access", jti="j", now=now)
    assert rs.decode(token, typ="access").sub == "u"
    hs = TokenService(Settings(jwt_secret="x" * 40, data_dir=tmp_path, _env_file=None))
    forged = hs.issue(user_id="u", role="admin", session_id="s", typ="access", jti="j", now=now)
    with pytest.raises(Unauthenticated):
        rs.decode(forged, typ="access")
    with pytest.raises(RuntimeError):
        TokenService(Settings(jwt_algorithm="RS256", data_dir=tmp_path, _env_file=None))
