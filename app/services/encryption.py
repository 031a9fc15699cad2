"""Documents at rest: AES-256-GCM under a rotating keyring, and keyed fingerprints of numbers.

* Every message gets a fresh random 96-bit nonce; the stored blob is `nonce + ciphertext + tag`, and the
  key id travels beside it so old blobs still open after `DOCUMENT_ENCRYPTION_KEY` changes (the previous
  keys stay readable through `DOCUMENT_ENCRYPTION_OLD_KEYS`). New data always uses the current key.
* Associated data binds a blob to its owner and purpose (`kyc_files:<file id>:<owner>:<case>:...`), so a
  blob copied onto another record fails to open instead of showing one customer's card to another.
* Fingerprints (`fingerprint(kind, number)`) are HMAC-SHA256 under a key derived (HKDF) from the separate
  `DOCUMENT_FINGERPRINT_KEY`, never from the encryption key: rotating the encryption key must not change
  the fingerprint of a number already stored, or a duplicate document on another account would go unseen.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.document_keys import DocumentKey, KeyConfigError, parse_key
from app.domain.documents import DocumentType, mask_aadhaar, mask_number, normalise_aadhaar, normalise_driving_licence
from app.domain.errors import DocumentIntegrityError, DocumentKeyUnavailable, InvalidInput

if TYPE_CHECKING:
    from app.config import Settings

NONCE_BYTES = 12
# AES-GCM runs at about 1 GB/s, so a 64 KiB blob costs well under a millisecond on the loop; a 10 MB
# scan costs ~10 ms, which would stall every other request: those go to a thread.
OFF_LOOP_BYTES = 64 * 1024
_TEXT_VERSION = "v1"
_T = TypeVar("_T")


def _derive(secret: bytes, purpose: bytes) -> bytes:
    # Domain separation: the same configured secret never keys two different uses directly.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"kycflow/" + purpose).derive(secret)


def _aad(aad: str | bytes) -> bytes:
    return aad.encode() if isinstance(aad, str) else aad


def normalise_number(kind: str, number: str) -> str:
    """The form a document number is fingerprinted in: what OCR and people vary (spaces, dashes,
    case, MRZ fillers) is removed, so `1234 5678 9012` and `123456789012` are the same Aadhaar."""
    if kind == DocumentType.AADHAAR:
        return normalise_aadhaar(number)
    if kind == DocumentType.DRIVING_LICENCE:
        licence = normalise_driving_licence(number)
        if licence:
            return licence
    return re.sub(r"[\s\-/<.]", "", number).upper()


@dataclass(frozen=True)
class ProtectedNumber:
    """How a document number is stored: shown masked, kept encrypted, found by its fingerprint."""

    masked: str
    encrypted: str
    fingerprint: str


class DocumentCipher:
    """Encrypts with the current key, decrypts with any key of the ring, fingerprints numbers."""

    def __init__(self, current: DocumentKey, old: Iterable[DocumentKey] = (), *, fingerprint_secret: bytes) -> None:
        self.current = current
        self._keys = {current.key_id: AESGCM(current.secret)}
        for key in old:
            if key.key_id in self._keys:
                raise KeyConfigError(f"document key id {key.key_id!r} is configured twice")
            self._keys[key.key_id] = AESGCM(key.secret)
        self._fingerprint_key = _derive(fingerprint_secret, b"document-number-fingerprint/v1")
        self._digest_key = _derive(fingerprint_secret, b"document-file-digest/v1")

    @classmethod
    def from_specs(cls, current: str, old: Iterable[str], fingerprint: str) -> DocumentCipher:
        return cls(
            parse_key(current, "DOCUMENT_ENCRYPTION_KEY"),
            [parse_key(spec, f"DOCUMENT_ENCRYPTION_OLD_KEYS (entry {i})") for i, spec in enumerate(old, 1)],
            fingerprint_secret=parse_key(fingerprint, "DOCUMENT_FINGERPRINT_KEY").secret,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentCipher:
        return cls.from_specs(*settings.resolve_document_keys())

    @property
    def key_id(self) -> str:
        return self.current.key_id

    # --- blobs --------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, aad: str | bytes) -> tuple[str, bytes]:
        """`(key_id, nonce + ciphertext)` under the current key."""
        nonce = os.urandom(NONCE_BYTES)
        return self.current.key_id, nonce + self._keys[self.current.key_id].encrypt(nonce, plaintext, _aad(aad))

    def decrypt(self, key_id: str, blob: bytes, aad: str | bytes) -> bytes:
        aead = self._keys.get(key_id)
        if aead is None:
            raise DocumentKeyUnavailable(key_id=key_id)
        if len(blob) < NONCE_BYTES + 16:
            raise DocumentIntegrityError(key_id=key_id)
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(aad))
        except InvalidTag:  # altered bytes, or a blob moved onto another record (other aad)
            raise DocumentIntegrityError(key_id=key_id) from None

    async def encrypt_async(self, plaintext: bytes, aad: str | bytes) -> tuple[str, bytes]:
        return await _sized(len(plaintext), self.encrypt, plaintext, aad)

    async def decrypt_async(self, key_id: str, blob: bytes, aad: str | bytes) -> bytes:
        return await _sized(len(blob), self.decrypt, key_id, blob, aad)

    # --- fields -------------------------------------------------------------------------

    def encrypt_text(self, text: str, aad: str | bytes) -> str:
        """A document number (or any short text) as one storable string `v1:<key id>:<base64url>`."""
        key_id, blob = self.encrypt(text.encode(), aad)
        return f"{_TEXT_VERSION}:{key_id}:{base64.urlsafe_b64encode(blob).decode()}"

    def decrypt_text(self, token: str, aad: str | bytes) -> str:
        version, _, rest = token.partition(":")
        key_id, _, payload = rest.partition(":")
        if version != _TEXT_VERSION or not key_id or not payload:
            raise DocumentIntegrityError()
        try:
            blob = base64.urlsafe_b64decode(payload.encode())
        except (binascii.Error, ValueError):
            raise DocumentIntegrityError(key_id=key_id) from None
        return self.decrypt(key_id, blob, aad).decode()

    def protect_number(self, kind: str, number: str, aad: str | bytes) -> ProtectedNumber:
        """Everything a record keeps of a document number; the clear number is in none of it."""
        kind = str(kind).strip().lower()
        normalised = normalise_number(kind, number)
        masked = mask_aadhaar(normalised) if kind == DocumentType.AADHAAR else mask_number(normalised)
        return ProtectedNumber(masked, self.encrypt_text(normalised, aad), self.fingerprint(kind, normalised))

    # --- keyed hashes -------------------------------------------------------------------

    def fingerprint(self, kind: str, number: str) -> str:
        """HMAC-SHA256 (hex) of the normalised number, separated by kind: the same document on two
        accounts has the same fingerprint, and nobody without the key can test a guessed number."""
        kind = str(kind).strip().lower()
        normalised = normalise_number(kind, number)
        if not kind or not normalised:  # "" would match every other blank number: a false duplicate
            raise InvalidInput("A document number is needed.", field="document_number")
        message = f"{kind}\x00{normalised}".encode()
        return hmac.new(self._fingerprint_key, message, hashlib.sha256).hexdigest()

    def content_digest(self, data: bytes) -> str:
        """Keyed digest of a file's plaintext: finds the same image uploaded twice without the plain
        SHA-256 that would let anyone holding the database confirm a guessed (known) file."""
        return hmac.new(self._digest_key, data, hashlib.sha256).hexdigest()

    async def content_digest_async(self, data: bytes) -> str:
        return await _sized(len(data), self.content_digest, data)


async def _sized(size: int, fn: Callable[..., _T], *args: object) -> _T:
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)
