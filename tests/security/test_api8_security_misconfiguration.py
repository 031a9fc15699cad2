"""OWASP API Security Top 10 (2023), API8: Security Misconfiguration

Items of issue 15 that belong here: stored files cannot run in the auditor's browser (11), weak production settings are refused (17). Each test fails on the code before the fix."""

from __future__ import annotations


def _production_settings(tmp_path, **overrides):
    from app.config import Settings
    from app.services.encryption import generate_key_spec

    values = {"environment": "production", "data_dir": tmp_path, "mongodb_uri": "mongodb://db.example:27017",
              "document_encryption_key": generate_key_spec(), "document_fingerprint_key": generate_key_spec(),
              "jwt_secret": "s" * 32, **overrides}
    return Settings(_env_file=None, **values)


def test_a_jwt_secret_shorter_than_32_bytes_is_refused_at_start_up(tmp_path):
    """HS256 with a short secret can be brute-forced offline from one token (RFC 7518 §3.2 asks for a
    key as long as the hash, 256 bits); the secret also keys the stored OTP hashes."""
    import pytest

    from app.main import create_app

    for environment in ("production", "development"):
        with pytest.raises(RuntimeError, match=r"JWT_SECRET is 31 bytes; it must be at least 32") as refused:
            create_app(_production_settings(tmp_path, environment=environment, jwt_secret="k" * 31))
        assert "Traceback" not in str(refused.value)
    # Bytes, not characters: 16 two-byte characters are 32 bytes and pass.
    create_app(_production_settings(tmp_path, jwt_secret="ü" * 16))
    create_app(_production_settings(tmp_path, jwt_secret="k" * 32))
    assert not (tmp_path / "jwt_secret").exists()  # production never generates one
