"""`kyc_files` GridFS bucket: customer documents, stored only as AES-GCM ciphertext.

What a file record holds in clear, and why:
* `metadata.owner_id` / `case_id`: object-level authorization is a query (another customer's file is
  simply not found), and they are bound into the ciphertext's associated data, so editing them in the
  database makes the file unreadable instead of handing it to someone else.
* `content_type`, `size`, `key_id`: needed to serve the file and to find what a rotation must re-encrypt.
* `digest`: a keyed HMAC of the plaintext, not a plain SHA-256 (which would let anyone with the database
  confirm a guessed or publicly known image, and link the same scan across accounts without the key).
* The GridFS filename is the file id; the client's filename may name a person or a number, so it is
  kept encrypted in `metadata.filename`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import CorruptGridFile, NoFile

from app.domain.errors import DocumentIntegrityError, NotFound
from app.repositories.base import given, to_object_id

log = logging.getLogger("kycflow")

BUCKET = "kyc_files"
ALGORITHM = "AES-256-GCM"
_REQUIRED = ("owner_id", "content_type", "key_id")


class Cipher(Protocol):
    """What the store needs from `app.services.encryption.DocumentCipher` (injected, not imported)."""

    async def encrypt_async(self, plaintext: bytes, aad: str | bytes) -> tuple[str, bytes]: ...
    async def decrypt_async(self, key_id: str, blob: bytes, aad: str | bytes) -> bytes: ...
    async def content_digest_async(self, data: bytes) -> str: ...
    def encrypt_text(self, text: str, aad: str | bytes) -> str: ...
    def decrypt_text(self, token: str, aad: str | bytes) -> str: ...


def _aad(file_id: ObjectId, meta: dict[str, Any], part: str = "data") -> str:
    # Everything that decides who sees the file and how it is served: change one, and it no longer opens.
    # JSON, not a joined string, so no choice of ids can make two different records read the same.
    return json.dumps([BUCKET, part, str(file_id), meta["owner_id"], meta.get("case_id"), meta["content_type"]])


class EncryptedFileStore:
    def __init__(self, db: Any, cipher: Cipher, *, chunk_size_bytes: int = 255 * 1024) -> None:
        self.db = db
        self.cipher = cipher
        self.bucket = AsyncGridFSBucket(db, BUCKET, chunk_size_bytes=chunk_size_bytes)
        self.files = db[f"{BUCKET}.files"]
        self.chunks = db[f"{BUCKET}.chunks"]

    async def ensure_indexes(self) -> None:
        # The two GridFS indexes (the driver would create them on the first upload only), plus lookups by case.
        await self.files.create_index([("filename", 1), ("uploadDate", 1)])
        await self.chunks.create_index([("files_id", 1), ("n", 1)], unique=True)
        await self.files.create_index([("metadata.case_id", 1), ("metadata.owner_id", 1)])

    async def put(self, data: bytes, *, owner_id: str, case_id: str | None = None, content_type: str,
                  filename: str | None = None) -> str:
        """Encrypt and store `data`; returns the new file id. Content checks happen before (the caller's)."""
        file_id = ObjectId()
        meta: dict[str, Any] = {"owner_id": owner_id, "case_id": case_id, "content_type": content_type}
        aad = _aad(file_id, meta)
        key_id, blob = await self.cipher.encrypt_async(data, aad)
        meta.update(size=len(data), key_id=key_id, alg=ALGORITHM, digest=await self.cipher.content_digest_async(data))
        if filename:
            meta["filename"] = self.cipher.encrypt_text(filename, _aad(file_id, meta, "filename"))
        await self.bucket.upload_from_stream_with_id(file_id, str(file_id), blob, metadata=meta)
        return str(file_id)

    async def get(self, file_id: str, *, owner_id: str | None = None, case_id: str | None = None) -> tuple[bytes, str]:
        """`(plaintext, content_type)`. NotFound when the file is absent or belongs to another owner
        or case, the same answer either way so ids cannot be probed."""
        oid, meta = await self._find(file_id, owner_id, case_id)
        try:
            stream = await self.bucket.open_download_stream(oid)
            blob = await stream.read()
        except NoFile:  # deleted between the lookup and the read
            raise NotFound("File not found.") from None
        except CorruptGridFile:  # missing or resized chunks
            raise self._tampered(file_id, "chunks") from None
        try:
            data = await self.cipher.decrypt_async(meta["key_id"], blob, _aad(oid, meta))
        except DocumentIntegrityError:
            raise self._tampered(file_id, "authentication") from None
        if len(data) != meta.get("size"):
            raise self._tampered(file_id, "size")
        return data, meta["content_type"]

    @staticmethod
    def _tampered(file_id: str, what: str) -> DocumentIntegrityError:
        # A security event for operators: altered bytes or a record edited by hand (ids only, no content).
        log.warning("stored document failed its integrity check", extra={"file_id": file_id, "check": what})
        return DocumentIntegrityError(file_id=file_id)

    async def filename(self, file_id: str, *, owner_id: str | None = None, case_id: str | None = None) -> str | None:
        """The client's original filename, decrypted (None when none was given)."""
        oid, meta = await self._find(file_id, owner_id, case_id)
        token = meta.get("filename")
        return self.cipher.decrypt_text(token, _aad(oid, meta, "filename")) if token else None

    async def delete(self, file_id: str, *, owner_id: str | None = None, case_id: str | None = None) -> bool:
        """Remove the file and its chunks; False when there was nothing (of this owner/case) to remove."""
        try:
            oid, _ = await self._find(file_id, owner_id, case_id)
            await self.bucket.delete(oid)
        except (NotFound, NoFile):
            return False
        return True

    async def _find(self, file_id: str, owner_id: str | None, case_id: str | None) -> tuple[ObjectId, dict[str, Any]]:
        oid = to_object_id(file_id)
        if oid is None:
            raise NotFound("File not found.")
        query = given({"_id": oid, "metadata.owner_id": owner_id, "metadata.case_id": case_id})
        doc = await self.files.find_one(query, {"metadata": 1})
        if doc is None:
            raise NotFound("File not found.")
        meta = doc.get("metadata")
        if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in _REQUIRED):
            raise self._tampered(file_id, "metadata")  # a record edited by hand: refuse it, not a 500
        return oid, meta
