"""The encrypted GridFS store on the real wire protocol: only ciphertext in the
chunks, another owner's or case's file is not found, tampering is a domain error, keys rotate."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import stat
import uuid

import pytest
from bson import ObjectId
from PIL import Image

from app.api.errors import status_for
from app.bootstrap import build_container
from app.config import Settings
from app.document_keys import generate_key_spec
from app.domain.errors import DocumentIntegrityError, DocumentKeyUnavailable, NotFound
from app.main import create_app
from app.repositories.database import close_client, make_client
from app.repositories.files import BUCKET, EncryptedFileStore
from app.services.encryption import DocumentCipher
from tests.conftest import make_settings

KEY_OLD, KEY_NEW, FP = generate_key_spec(), generate_key_spec(), generate_key_spec()
MARKER = b"PLAINTEXT-MARKER-4f1c"
AADHAAR = "234123412346"


@pytest.fixture
async def db(mongo_uri):
    client = make_client(mongo_uri)
    database = client[f"files_{uuid.uuid4().hex[:10]}"]
    yield database
    await client.drop_database(database.name)
    await close_client(client)


def jpeg(size: int = 160) -> bytes:
    """A real JPEG of noise (so it does not compress below a few chunks), with a text marker in a comment."""
    rng = random.Random(7)
    img = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95, comment=MARKER + b" " + AADHAAR.encode())
    return out.getvalue()


def store(db, current: str = KEY_OLD, old: tuple[str, ...] = ()) -> EncryptedFileStore:
    # Small chunks so one file spans several: the scan and the tamper test see a real multi-chunk file.
    return EncryptedFileStore(db, DocumentCipher.from_specs(current, old, FP), chunk_size_bytes=8 * 1024)


async def raw(collection) -> list[dict]:
    return [doc async for doc in collection.find({})]


async def test_round_trip_stores_only_ciphertext(db):
    files = store(db)
    await files.ensure_indexes()
    image = jpeg()
    assert image.startswith(b"\xff\xd8\xff") and MARKER in image and len(image) > 3 * 8 * 1024
    file_id = await files.put(image, owner_id="u1", case_id="c1", content_type="image/jpeg",
                              filename=f"aadhaar {AADHAAR}.jpg")
    assert await files.get(file_id, owner_id="u1", case_id="c1") == (image, "image/jpeg")
    assert await files.get(file_id) == (image, "image/jpeg")  # staff path: no owner filter
    assert await files.filename(file_id, owner_id="u1") == f"aadhaar {AADHAAR}.jpg"

    chunks = await raw(db[f"{BUCKET}.chunks"])
    assert len(chunks) >= 4 and {c["files_id"] for c in chunks} == {ObjectId(file_id)}
    stored = b"".join(bytes(c["data"]) for c in sorted(chunks, key=lambda c: c["n"]))
    assert len(stored) == len(image) + 12 + 16
    for needle in (image[:16], MARKER, AADHAAR.encode(), b"JFIF"):
        assert needle not in stored
    assert not any(bytes(c["data"]).startswith(b"\xff\xd8\xff") for c in chunks)

    [record] = await raw(db[f"{BUCKET}.files"])
    meta = record["metadata"]
    assert record["filename"] == file_id and AADHAAR not in str(record)
    assert (meta["owner_id"], meta["case_id"], meta["content_type"], meta["size"], meta["alg"]) == (
        "u1", "c1", "image/jpeg", len(image), "AES-256-GCM")
    assert meta["key_id"] == files.cipher.key_id and len(meta["digest"]) == 64
    assert hashlib.sha256(image).hexdigest() not in str(record)  # no plain hash of a guessable file

    indexes = {tuple(ix["key"].items()): ix for ix in await raw_indexes(db[f"{BUCKET}.chunks"])}
    assert indexes[(("files_id", 1), ("n", 1))].get("unique") is True


async def raw_indexes(collection) -> list[dict]:
    return [ix async for ix in await collection.list_indexes()]


async def test_another_owner_or_case_gets_not_found_and_cannot_delete(db):
    files = store(db)
    file_id = await files.put(b"front of a card", owner_id="u1", case_id="c1", content_type="image/png")
    for kwargs in ({"owner_id": "u2"}, {"owner_id": "u1", "case_id": "c2"}, {"case_id": "c2"}):
        with pytest.raises(NotFound):
            await files.get(file_id, **kwargs)
    for missing in (str(ObjectId()), "not-an-id", ""):
        with pytest.raises(NotFound):
            await files.get(missing, owner_id="u1")
    assert await files.delete(file_id, owner_id="u2") is False
    assert await files.get(file_id, owner_id="u1") == (b"front of a card", "image/png")
    assert await files.delete(file_id, owner_id="u1", case_id="c1") is True
    with pytest.raises(NotFound):
        await files.get(file_id, owner_id="u1")
    assert await raw(db[f"{BUCKET}.chunks"]) == [] and await raw(db[f"{BUCKET}.files"]) == []
    assert await files.delete(file_id) is False


async def test_tampered_chunks_and_records_are_a_domain_error_not_a_500(db, caplog):
    files = store(db)
    image = jpeg()
    chunks = db[f"{BUCKET}.chunks"]

    flipped = await files.put(image, owner_id="u1", case_id="c1", content_type="image/jpeg")
    chunk = await chunks.find_one({"files_id": ObjectId(flipped), "n": 1})
    data = bytearray(chunk["data"])
    data[100] ^= 0x01
    await chunks.update_one({"_id": chunk["_id"]}, {"$set": {"data": bytes(data)}})
    with pytest.raises(DocumentIntegrityError) as err:
        await files.get(flipped, owner_id="u1")
    assert err.value.code == "document_integrity_failed" and status_for(err.value) == 409
    [warning] = [r for r in caplog.records if r.name == "kycflow" and r.levelno == logging.WARNING]
    assert (warning.file_id, warning.check) == (flipped, "authentication")  # an event operators can see

    dropped = await files.put(image, owner_id="u1", case_id="c1", content_type="image/jpeg")
    await chunks.delete_one({"files_id": ObjectId(dropped), "n": 2})
    with pytest.raises(DocumentIntegrityError):
        await files.get(dropped, owner_id="u1")

    # Reassigning a record to another customer, or serving it as another type, does not hand it over.
    moved = await files.put(image, owner_id="u1", case_id="c1", content_type="image/jpeg")
    await db[f"{BUCKET}.files"].update_one({"_id": ObjectId(moved)}, {"$set": {"metadata.owner_id": "u2"}})
    with pytest.raises(DocumentIntegrityError):
        await files.get(moved, owner_id="u2")
    retyped = await files.put(image, owner_id="u1", case_id="c1", content_type="image/jpeg")
    await db[f"{BUCKET}.files"].update_one({"_id": ObjectId(retyped)}, {"$set": {"metadata.content_type": "text/html"}})
    with pytest.raises(DocumentIntegrityError):
        await files.get(retyped, owner_id="u1")
    stripped = await files.put(image, owner_id="u1", case_id="c1", content_type="image/jpeg")
    await db[f"{BUCKET}.files"].update_one({"_id": ObjectId(stripped)}, {"$unset": {"metadata.key_id": ""}})
    with pytest.raises(DocumentIntegrityError):
        await files.get(stripped, owner_id="u1")
    # Chunks swapped between two files of the same customer do not open either.
    a = await files.put(b"A" * 100, owner_id="u1", case_id="c1", content_type="image/png")
    b = await files.put(b"B" * 100, owner_id="u1", case_id="c1", content_type="image/png")
    chunk_b = await chunks.find_one({"files_id": ObjectId(b)})
    await chunks.update_one({"files_id": ObjectId(a)}, {"$set": {"data": chunk_b["data"]}})
    with pytest.raises(DocumentIntegrityError):
        await files.get(a, owner_id="u1")
    assert await files.get(b, owner_id="u1") == (b"B" * 100, "image/png")


async def test_files_written_under_an_old_key_still_open_after_rotation(db):
    before = store(db, KEY_OLD)
    old_file = await before.put(b"written before", owner_id="u1", case_id="c1", content_type="image/png")
    after = store(db, KEY_NEW, old=(KEY_OLD,))
    new_file = await after.put(b"written after", owner_id="u1", case_id="c1", content_type="image/png")
    assert await after.get(old_file, owner_id="u1") == (b"written before", "image/png")
    assert await after.get(new_file, owner_id="u1") == (b"written after", "image/png")
    records = {str(r["_id"]): r["metadata"]["key_id"] for r in await raw(db[f"{BUCKET}.files"])}
    assert records == {old_file: before.cipher.key_id, new_file: after.cipher.key_id}
    assert before.cipher.key_id != after.cipher.key_id
    with pytest.raises(DocumentKeyUnavailable) as err:  # the old key dropped too early: 503, not a 500
        await store(db, KEY_NEW).get(old_file, owner_id="u1")
    assert status_for(err.value) == 503


async def test_the_service_generates_its_key_once_and_reuses_it(mongo_uri, tmp_path):
    settings = make_settings(mongo_uri, tmp_path, None, ml_preload=False)
    first = await build_container(settings, ml_loaders={})
    try:
        file_id = await first.files.put(b"kept across restarts", owner_id="u1", content_type="image/png")
    finally:
        await first.close()
    for name in ("document_key", "document_fingerprint_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    again = await build_container(make_settings(mongo_uri, tmp_path, None, mongodb_db=settings.mongodb_db),
                                  ml_loaders={})
    try:
        assert await again.files.get(file_id, owner_id="u1") == (b"kept across restarts", "image/png")
    finally:
        client = make_client(mongo_uri)
        await client.drop_database(settings.mongodb_db)
        await close_client(client)
        await again.close()


def test_production_refuses_to_start_without_a_document_key(tmp_path):
    settings = Settings(_env_file=None, environment="production", data_dir=tmp_path, jwt_secret="s" * 40,
                        mongodb_uri="mongodb://127.0.0.1:1", document_fingerprint_key=FP)
    with pytest.raises(RuntimeError, match="DOCUMENT_ENCRYPTION_KEY must be set in production"):
        create_app(settings)
    assert not (tmp_path / "document_key").exists()
