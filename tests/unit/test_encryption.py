"""Document encryption: AES-GCM round trips bound to their record, key rotation, keyed fingerprints,
and the key settings (generated in development, required and well-formed in production)."""

from __future__ import annotations

import asyncio
import base64
import os
import stat

import pytest

from app.config import Settings, StartupError
from app.document_keys import KeyConfigError, parse_key
from app.domain.errors import DocumentIntegrityError, DocumentKeyUnavailable, InvalidInput
from app.services import encryption
from app.services.encryption import DocumentCipher

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = "b" * 64  # hex form
FP = base64.urlsafe_b64encode(b"F" * 32).decode().rstrip("=")  # URL-safe, unpadded
AADHAAR = "234123412346"  # Verhoeff-valid


def cipher(current: str = KEY_A, old: tuple[str, ...] = (), fingerprint: str = FP) -> DocumentCipher:
    return DocumentCipher.from_specs(current, old, fingerprint)


def test_round_trip_uses_a_fresh_nonce_and_hides_the_plaintext():
    c = cipher()
    data = b"\xff\xd8\xff\xe0 a card " * 100
    key_id, blob = c.encrypt(data, "kyc_files:1:u1:c1")
    key_id2, blob2 = c.encrypt(data, "kyc_files:1:u1:c1")
    assert key_id == key_id2 == c.key_id and len(key_id) == 8
    assert blob != blob2 and blob[:12] != blob2[:12]  # random nonce per message
    assert b"\xff\xd8\xff\xe0 a card" not in blob and b"a card" not in blob
    assert len(blob) == len(data) + 12 + 16
    assert c.decrypt(key_id, blob, "kyc_files:1:u1:c1") == data


def test_blob_under_other_associated_data_or_altered_does_not_open():
    c = cipher()
    key_id, blob = c.encrypt(b"aadhaar front", "u1|case1|front")
    with pytest.raises(DocumentIntegrityError) as err:
        c.decrypt(key_id, blob, "u2|case1|front")  # moved onto another customer's record
    assert err.value.code == "document_integrity_failed"
    flipped = bytearray(blob)
    flipped[20] ^= 1
    with pytest.raises(DocumentIntegrityError):
        c.decrypt(key_id, bytes(flipped), "u1|case1|front")
    with pytest.raises(DocumentIntegrityError):
        c.decrypt(key_id, blob[:20], "u1|case1|front")  # truncated below nonce + tag


def test_wrong_key_fails_and_an_unknown_key_id_is_a_configuration_error():
    key_id, blob = cipher(KEY_A).encrypt(b"secret", "aad")
    other = cipher(f"{key_id}:{KEY_B}")  # same id, different key material
    with pytest.raises(DocumentIntegrityError):
        other.decrypt(key_id, blob, "aad")
    with pytest.raises(DocumentKeyUnavailable) as err:
        cipher(KEY_B).decrypt(key_id, blob, "aad")
    assert err.value.code == "document_key_unavailable" and err.value.details == {"key_id": key_id}


def test_rotation_reads_old_blobs_and_writes_new_ones_under_the_new_key():
    before = cipher(KEY_A)
    old_id, old_blob = before.encrypt(b"written before rotation", "aad")
    old_text = before.encrypt_text(AADHAAR, "u1|number")
    after = cipher(KEY_B, old=(KEY_A,))
    assert after.key_id != old_id and set(after._keys) == {after.key_id, old_id}
    assert after.decrypt(old_id, old_blob, "aad") == b"written before rotation"
    assert after.decrypt_text(old_text, "u1|number") == AADHAAR
    new_id, new_blob = after.encrypt(b"new", "aad")
    assert new_id == after.key_id
    with pytest.raises(DocumentKeyUnavailable):
        before.decrypt(new_id, new_blob, "aad")  # the old ring does not know the new key


def test_explicit_key_ids_and_duplicates():
    assert parse_key(f"2026-q1:{KEY_A}", "X").key_id == "2026-q1"
    assert parse_key(KEY_A, "X") == parse_key(f"  {KEY_A}  ", "X")
    assert "AAAA" not in repr(parse_key(KEY_A, "X"))  # key bytes never in a repr or traceback
    with pytest.raises(KeyConfigError, match="configured twice"):
        cipher(f"k1:{KEY_A}", old=(f"k1:{KEY_B}",))


@pytest.mark.parametrize("spec", ["short", "A" * 42, "g" * 64, base64.b64encode(b"x" * 31).decode(),
                                  f"bad id:{KEY_A}", f":{KEY_A}"])
def test_malformed_keys_are_refused_without_echoing_them(spec):
    with pytest.raises(KeyConfigError, match="DOCUMENT_ENCRYPTION_OLD_KEYS \\(entry 1\\)") as err:
        cipher(KEY_A, old=(spec,))
    assert spec not in str(err.value)


def test_text_fields_round_trip_and_never_hold_the_number():
    c = cipher()
    token = c.encrypt_text(AADHAAR, "u1|case1|aadhaar")
    assert token.startswith(f"v1:{c.key_id}:") and AADHAAR not in token
    assert c.decrypt_text(token, "u1|case1|aadhaar") == AADHAAR
    with pytest.raises(DocumentIntegrityError):
        c.decrypt_text(token, "u2|case1|aadhaar")
    for broken in ("", "v2:x:y", f"v1:{c.key_id}:", f"v1:{c.key_id}:!!!notbase64"):
        with pytest.raises(DocumentIntegrityError):
            c.decrypt_text(broken, "u1|case1|aadhaar")


def test_fingerprint_is_normalised_keyed_per_kind_and_survives_rotation():
    c = cipher()
    fp = c.fingerprint("aadhaar", AADHAAR)
    assert len(fp) == 64 and AADHAAR not in fp
    assert c.fingerprint("aadhaar", "2341 2341 2346") == c.fingerprint("AADHAAR", "2341-2341-2346") == fp
    assert c.fingerprint("pan", "abcde1234f") == c.fingerprint("pan", " ABCDE 1234F ")
    assert c.fingerprint("driving_licence", "MH-12 2011 0012345") == c.fingerprint("driving_licence",
                                                                                   "MH1220110012345")
    assert c.fingerprint("passport", AADHAAR) != fp  # same digits, other kind: another document
    assert c.fingerprint("aadhaar", "234123412347") != fp
    for blank in ("", " - "):
        with pytest.raises(InvalidInput):  # never a fingerprint every blank number would share
            c.fingerprint("pan", blank)
    rotated = cipher(KEY_B, old=(KEY_A,))
    assert rotated.fingerprint("aadhaar", AADHAAR) == fp  # the encryption key does not enter it
    assert cipher(fingerprint=KEY_B).fingerprint("aadhaar", AADHAAR) != fp  # the fingerprint key does
    assert rotated.content_digest(b"img") == c.content_digest(b"img") != cipher(fingerprint=KEY_B).content_digest(
        b"img")


async def test_large_blobs_are_encrypted_off_the_event_loop(monkeypatch):
    c = cipher()
    calls: list[int] = []
    real = asyncio.to_thread

    async def spy(fn, *args):
        calls.append(len(args[0]) if isinstance(args[0], bytes) else len(args[1]))
        return await real(fn, *args)

    monkeypatch.setattr(encryption.asyncio, "to_thread", spy)
    small = os.urandom(1000)
    big = os.urandom(encryption.OFF_LOOP_BYTES + 1)
    key_id, blob = await c.encrypt_async(small, "a")
    assert await c.decrypt_async(key_id, blob, "a") == small and calls == []
    key_id, blob = await c.encrypt_async(big, "a")
    assert await c.decrypt_async(key_id, blob, "a") == big
    assert await c.content_digest_async(big) == c.content_digest(big)
    assert calls == [len(big), len(blob), len(big)]


def test_development_generates_private_key_files_once_and_reuses_them(tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    first = settings.resolve_document_keys()
    for name in ("document_key", "document_fingerprint_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert first[0] != first[2] and first[1] == []
    assert Settings(data_dir=tmp_path, _env_file=None).resolve_document_keys() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["document_fingerprint_key", "document_key"]  # no temp left
    c = DocumentCipher.from_settings(settings)
    key_id, blob = c.encrypt(b"x", "a")
    assert DocumentCipher.from_settings(Settings(data_dir=tmp_path, _env_file=None)).decrypt(key_id, blob, "a") == b"x"


def prod(tmp_path, **kw) -> Settings:
    return Settings(_env_file=None, environment="production", data_dir=tmp_path, jwt_secret="s" * 40,
                    mongodb_uri="mongodb://db.example:27017", **kw)


def test_production_requires_both_keys_and_generates_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="DOCUMENT_ENCRYPTION_KEY must be set in production"):
        prod(tmp_path, document_fingerprint_key=FP).check_startup()
    with pytest.raises(RuntimeError, match="DOCUMENT_FINGERPRINT_KEY must be set in production"):
        prod(tmp_path, document_encryption_key=KEY_A).check_startup()
    assert list(tmp_path.iterdir()) == []
    prod(tmp_path, document_encryption_key=KEY_A, document_fingerprint_key=FP).check_startup()


def test_a_malformed_key_is_a_start_up_error_in_every_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCUMENT_ENCRYPTION_OLD_KEYS", f"old1:{KEY_B}, not-a-key")
    with pytest.raises(StartupError, match="DOCUMENT_ENCRYPTION_OLD_KEYS \\(entry 2\\)"):
        prod(tmp_path, document_encryption_key=KEY_A, document_fingerprint_key=FP).check_startup()
    with pytest.raises(StartupError, match="DOCUMENT_ENCRYPTION_KEY must be 32 bytes"):
        Settings(_env_file=None, data_dir=tmp_path, document_encryption_key="hunter2").check_startup()
    monkeypatch.setenv("DOCUMENT_ENCRYPTION_OLD_KEYS", f"old1:{KEY_B}")
    settings = Settings(_env_file=None, data_dir=tmp_path, document_encryption_key=f"new:{KEY_A}")
    assert set(DocumentCipher.from_settings(settings)._keys) == {"new", "old1"}


def test_a_protected_number_is_masked_encrypted_and_fingerprinted_never_clear():
    c = cipher()
    stored = c.protect_number("aadhaar", "2341 2341 2346", "u1|case1|aadhaar")
    assert stored.masked == "XXXX XXXX 2346" and stored.fingerprint == c.fingerprint("aadhaar", AADHAAR)
    assert AADHAAR not in repr(stored) and "2341 2341" not in repr(stored)
    assert c.decrypt_text(stored.encrypted, "u1|case1|aadhaar") == AADHAAR  # stored normalised
    pan = c.protect_number("pan", "abcde1234f", "u1|case1|pan")
    assert pan.masked == "XXXXXX234F" and c.decrypt_text(pan.encrypted, "u1|case1|pan") == "ABCDE1234F"
