"""Document key settings: the `[id:]key` form of DOCUMENT_ENCRYPTION_KEY, its old keys and
DOCUMENT_FINGERPRINT_KEY. The settings check them at start-up and the cipher is built from them
(`app.services.encryption`); both read the form here, so neither imports the other."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass, field

KEY_BYTES = 32
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class KeyConfigError(RuntimeError):
    """A document key setting is missing or malformed (a start-up error; never shows the key)."""


@dataclass(frozen=True)
class DocumentKey:
    key_id: str
    secret: bytes = field(repr=False)  # keys end up in tracebacks; never their bytes


def generate_key_spec() -> str:
    """A fresh key in the form the settings accept (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def parse_key(spec: str, setting: str) -> DocumentKey:
    """`[id:]key`, the key being 32 bytes as 64 hex digits or base64 (standard or URL-safe).
    Without an id, the id is the first 8 hex digits of the key's SHA-256 (stable, reveals nothing)."""
    spec = spec.strip()
    key_id, sep, material = spec.rpartition(":")
    if not sep:
        key_id, material = "", spec
    elif not _KEY_ID_RE.match(key_id):
        raise KeyConfigError(f"{setting}: the key id before ':' may hold only letters, digits, '_', '.', '-' (1-32)")
    secret = _decode_key_material(material.strip())
    if secret is None:
        raise KeyConfigError(
            f"{setting} must be 32 bytes written as base64 (44 characters) or hex (64 digits), optionally "
            "prefixed by 'id:'; generate one with: python -c \"import base64,os; "
            "print(base64.b64encode(os.urandom(32)).decode())\""
        )
    return DocumentKey(key_id or hashlib.sha256(secret).hexdigest()[:8], secret)


def _decode_key_material(material: str) -> bytes | None:
    if re.fullmatch(r"[0-9a-fA-F]{64}", material):
        return bytes.fromhex(material)
    padded = (material + "=" * (-len(material) % 4)).encode()
    for altchars in (None, b"-_"):  # standard, then URL-safe alphabet
        try:
            raw = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == KEY_BYTES:
            return raw
    return None
