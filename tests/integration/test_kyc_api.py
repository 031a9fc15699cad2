"""KYC cases end to end on the embedded database and the real models: upload, submit, the
durable checks, the auditor's decision, mails and the audit trail."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import bson
import cv2
import numpy as np
import pytest
from skimage import data

from tests.conftest import PASSWORD, bearer, eventually
from tests.integration.test_verification_api import encode
from tests.ml import cards

PERSON = cards.Person()  # Rahul Kumar Sharma, born 15/08/1990, the astronaut's photo on his cards
AADHAAR_FRONT = encode(cards.aadhaar_front(PERSON))
PAN = encode(cards.pan_card(PERSON))
SELFIE = encode(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


async def customer(api, *, name: str = PERSON.name, dob: str = "1990-08-15") -> dict[str, Any]:
    email = f"k{np.random.randint(1e9)}@example.com"
    await api.register(email, name=name)
    r = await api.client.post("/auth/verify-otp", json={"identifier": email, "otp": api.mailbox.last_code(email)})
    assert r.status_code == 200, r.text
    tokens = (await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})).json()
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": dob})
    assert r.status_code == 200, r.text
    return {**tokens, "email": email, "headers": bearer(tokens)}


async def upload(api, who, document_type: str, content: bytes, *, name: str = "card.jpg", side: str | None = None,
                 number: str | None = None) -> Any:
    form = {"document_type": document_type}
    if side:
        form["side"] = side
    if number:
        form["document_number"] = number
    return await api.client.post("/kyc/documents", headers=who["headers"], data=form,
                                 files={"file": (name, content, "image/jpeg")})


async def selfie(api, who, content: bytes = SELFIE, **form: str) -> Any:
    return await api.client.post("/kyc/selfie", headers=who["headers"], data=form,
                                 files={"file": ("me.jpg", content, "image/jpeg")})


async def ready_case(api, who, aadhaar: bytes = AADHAAR_FRONT) -> str:
    r = await upload(api, who, "aadhaar", aadhaar)
    assert r.status_code == 201, r.text
    assert (await upload(api, who, "pan", PAN)).status_code == 201
    assert (await selfie(api, who)).status_code == 201
    return r.json()["kyc_id"]


async def checks_done(api, who, timeout: float = 60.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        case = (await api.client.get("/kyc/me", headers=who["headers"])).json()
        if case["checks_state"] == "DONE":
            return case
        assert loop.time() < deadline, case
        await asyncio.sleep(0.1)


async def decision_mail(api, email: str, subject: str) -> Any:
    """The newest mail to `email` whose subject has `subject`: a decision's notice is a job, sent just
    after the decision commits."""
    async def sent() -> Any:
        return next((m for m in reversed(api.mailbox.for_address(email)) if subject in m["subject"]), None)

    mail = await eventually(sent)
    assert mail is not None, f"no mail {subject!r} for {email}"
    return mail


async def case_detail(api, kyc_id: str) -> dict[str, Any]:
    """The auditor's view of a case: the checks' scores and the risk, which GET /kyc/me never shows."""
    r = await api.client.get(f"/kyc/{kyc_id}", headers=bearer(await api.staff("auditor")))
    assert r.status_code == 200, r.text
    return r.json()


async def actions(api, user_id: str) -> list[str]:
    return [d["action"] async for d in api.container.db["user_log"].find({"user_id": user_id}).sort("timestamp", 1)]


async def test_a_customer_is_approved_from_upload_to_decision(api):
    who = await customer(api)
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT)
    assert r.status_code == 201, r.text
    doc = r.json()
    kyc_id = doc["kyc_id"]
    assert doc["document_type"] == "aadhaar" and doc["side"] == "front"
    assert doc["document_number"] == "XXXX XXXX " + PERSON.aadhaar[-4:]
    assert doc["extracted"]["fields"]["document_number"] == "XXXX XXXX " + PERSON.aadhaar[-4:]
    assert doc["extracted"]["fields"]["full_name"].lower() == PERSON.name.lower()
    assert PERSON.aadhaar not in r.text
    r = await api.client.post("/kyc/submit", headers=who["headers"])
    assert r.status_code == 422 and r.json()["error_code"] == "kyc_incomplete" and "pan" in r.json()["detail"]
    assert (await upload(api, who, "pan", PAN)).json()["document_number"] == "XXXXXX" + PERSON.pan[-4:]
    r = await selfie(api, who)
    assert r.status_code == 201 and r.json()["face_detected"] is True and r.json()["kyc_id"] == kyc_id
    assert (await api.client.get("/kyc/me", headers=who["headers"])).json()["missing"] == []

    r = await api.client.post("/kyc/submit", headers=who["headers"])
    assert r.status_code == 202 and r.json() == {"kyc_id": kyc_id, "status": "SUBMITTED"}
    running = (await api.client.get("/kyc/me", headers=who["headers"])).json()
    assert running["checks_state"] == "DONE" or running["checks_completed_at"] is None
    assert (await api.client.get("/users/me/kyc-status", headers=who["headers"])).json()["kyc_status"] == "SUBMITTED"
    mine = await checks_done(api, who)
    assert {c["state"] for c in mine["checks"] if c["name"] == "liveness"} == {"needs_attention"}
    case = await case_detail(api, kyc_id)
    by_name: dict[str, list[str]] = {}
    for check in case["checks"]:
        by_name.setdefault(check["name"], []).append(check["status"])
    assert by_name["face_match"] == ["pass"] and by_name["duplicate_document"] == ["pass", "pass"]
    assert set(by_name["name_match"]) == {"pass"} and "fail" not in by_name["dob_match"]
    assert by_name["liveness"] == ["review"]  # no challenge taken: a person must look
    assert case["risk_level"] == "Medium" and 50 <= case["overall_score"] <= 100
    assert case["submitted_at"] < case["checks_completed_at"]  # ISO strings in UTC: ordered as times

    auditor = await api.staff("auditor")
    r = await api.client.get("/kyc/pending", headers=bearer(auditor))
    assert r.status_code == 200
    row = next(item for item in r.json()["items"] if item["kyc_id"] == kyc_id)
    assert row["user_email"] == who["email"] and row["document_number"] == "XXXX XXXX " + PERSON.aadhaar[-4:]
    assert row["risk_level"] == "Medium"
    detail = (await api.client.get(f"/kyc/{kyc_id}", headers=bearer(auditor))).json()
    assert {f["kind"] for f in detail["files"]} == {"document", "selfie"} and len(detail["files"]) == 3
    assert detail["breakdown"]["face_match"] > 50
    image = await api.client.get(detail["files"][0]["url"].removeprefix("/api/v1"), headers=bearer(auditor))
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    upper = f"/kyc/{kyc_id.upper()}/files/{detail['files'][0]['file_id'].upper()}"
    assert (await api.client.get(upper, headers=bearer(auditor))).content == AADHAAR_FRONT
    assert image.content == AADHAAR_FRONT and image.headers["content-disposition"] == "inline"

    r = await api.client.put(f"/kyc/{kyc_id}/approve", headers=bearer(auditor), json={"notes": "all good"})
    assert r.status_code == 200 and r.json() == {"message": "KYC approved successfully", "status": "APPROVED"}
    status = (await api.client.get("/users/me/kyc-status", headers=who["headers"])).json()
    assert status["kyc_status"] == "APPROVED" and status["risk_level"] is None  # auditors only
    mail = await decision_mail(api, who["email"], "is approved")
    assert "approved" in mail["subject"].lower()
    assert PERSON.aadhaar not in mail.get_body(preferencelist=("plain",)).get_content()
    r = await api.client.put(f"/kyc/{kyc_id}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_not_reviewable"
    r = await upload(api, who, "pan", PAN)
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_already_approved"

    user_id = case["documents"][0] and (await api.client.get("/users/me", headers=who["headers"])).json()["id"]
    log = await actions(api, user_id)
    for action in ("kyc_document_uploaded", "kyc_selfie_uploaded", "kyc_submitted", "kyc_checks_completed",
                   "kyc_viewed", "kyc_file_viewed", "kyc_approved"):
        assert action in log, (action, log)
    approved = await api.container.db["user_log"].find_one({"action": "kyc_approved"})
    assert approved["actor_role"] == "auditor" and approved["ip_address"] == "203.0.113.7"

    # Nothing in the database holds the Aadhaar number or a JPEG in clear, GridFS chunks included.
    # (Ciphertext is random: three bytes of it match the JPEG magic about once in 16 million, so the
    # chunks are checked for the files' own longer runs of bytes and for a clear JPEG start.)
    plain = [content[i:i + 48] for content in (AADHAAR_FRONT, PAN, SELFIE) for i in (0, 2000, len(content) // 2)]
    for name in await api.container.db.list_collection_names():
        async for stored in api.container.db[name].find({}):
            raw = bson.encode(stored)
            assert PERSON.aadhaar.encode() not in raw, name
            assert PERSON.pan.encode() not in raw, name
            if name.endswith(".chunks"):
                assert not bytes(stored["data"]).startswith(b"\xff\xd8\xff"), name
                assert not any(run in raw for run in plain), name
            else:
                assert b"\xff\xd8\xff" not in raw, name


async def test_a_rejected_customer_is_told_why_and_starts_a_new_case(api):
    who = await customer(api)
    # The bilingual card as UIDAI prints it (Devanagari beside English) where the font is there.
    bilingual = cards.devanagari_present()
    first = await ready_case(api, who, encode(cards.aadhaar_front_bilingual(PERSON)) if bilingual else AADHAAR_FRONT)
    read = (await api.client.get("/kyc/me", headers=who["headers"])).json()["documents"][0]
    assert read["document_number"] == "XXXX XXXX " + PERSON.aadhaar[-4:]
    assert read["extracted"]["fields"]["full_name"].lower() == PERSON.name.lower(), (bilingual, read)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await checks_done(api, who)
    auditor = await api.staff("auditor")
    r = await api.client.put(f"/kyc/{first}/reject", headers=bearer(auditor), json={"reason": "unknown_reason"})
    assert r.status_code == 422
    # The earlier request shape still works; `notes` is the case file's note and is not mailed.
    r = await api.client.put(f"/kyc/{first}/reject", headers=bearer(auditor),
                             json={"reason": "document_expired", "notes": "Card looked worn; expiry 2019."})
    assert r.status_code == 200 and r.json() == {"message": "KYC rejected successfully", "status": "REJECTED"}
    mine = (await api.client.get("/kyc/me", headers=who["headers"])).json()
    assert mine["status"] == "REJECTED" and mine["rejection_reason"] == "document_expired"
    assert mine["rejection_reasons"] == [{"code": "document_expired", "message": "A document has expired."}]
    body = (await decision_mail(api, who["email"], "not approved")).get_body(preferencelist=("plain",)).get_content()
    assert "A document has expired." in body and "worn" not in body
    r = await api.client.put(f"/kyc/{first}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 409  # a rejected case stays rejected

    r = await upload(api, who, "pan", PAN)
    assert r.status_code == 201 and r.json()["kyc_id"] != first
    second = r.json()["kyc_id"]
    assert (await api.client.get("/kyc/me", headers=who["headers"])).json()["kyc_id"] == second
    old = (await api.client.get(f"/kyc/{first}", headers=bearer(auditor))).json()
    assert old["status"] == "REJECTED" and old["decision"]["reason"] == "document_expired"
    assert old["decision"]["internal_note"] == "Card looked worn; expiry 2019."
    # The same documents on a second case of the same customer are no duplicate of another account.
    assert await api.container.db["kyc_doc"].count_documents({"user_id": old["user_id"]}) == 2


async def test_the_same_document_on_another_account_fails_the_duplicate_check(api):
    first, second = await customer(api), await customer(api)
    for who in (first, second):
        kyc_id = await ready_case(api, who)
        assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await checks_done(api, second)
    case = await case_detail(api, kyc_id)
    duplicate = [c for c in case["checks"] if c["name"] == "duplicate_document"]
    assert {c["status"] for c in duplicate} == {"fail"} and case["risk_level"] == "High"


async def test_another_persons_selfie_fails_the_face_match(api):
    from tests.ml.face_fixtures import require_fixtures

    other = require_fixtures("faces", "face_recognition", "obama.jpg").read_bytes()
    who = await customer(api)
    for kind, content in (("aadhaar", AADHAAR_FRONT), ("pan", PAN)):
        assert (await upload(api, who, kind, content)).status_code == 201
    assert (await selfie(api, who, other)).status_code == 201
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    case = await case_detail(api, (await checks_done(api, who))["kyc_id"])
    face = next(c for c in case["checks"] if c["name"] == "face_match")
    assert face["status"] == "fail" and case["risk_level"] == "High"


async def test_corrections_are_kept_beside_what_was_read_and_go_to_review(api):
    who = await customer(api)
    kyc_id = await ready_case(api, who)
    document = (await api.client.get("/kyc/me", headers=who["headers"])).json()["documents"][0]
    r = await api.client.put(f"/kyc/documents/{document['document_id']}/corrections", headers=who["headers"],
                             json={"fields": {"full_name": "Rahul K Sharma", "photo": "x"}})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "fields", "photo"]
    r = await api.client.put(f"/kyc/documents/{document['document_id']}/corrections", headers=who["headers"],
                             json={"fields": {"date_of_birth": "31/02/1990"}})
    assert r.status_code == 400 and "date_of_birth" in r.json()["detail"]
    r = await api.client.put(f"/kyc/documents/{document['document_id']}/corrections", headers=who["headers"],
                             json={"fields": {"full_name": "Rahul K Sharma"}})
    assert r.status_code == 200
    changed = r.json()["documents"][0]
    assert changed["corrections"] == {"full_name": "Rahul K Sharma"}
    assert changed["extracted"]["fields"]["full_name"] == document["extracted"]["fields"]["full_name"]
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).json()["kyc_id"] == kyc_id
    case = await checks_done(api, who)
    assert [c["state"] for c in case["checks"] if c["name"] == "corrections"] == ["needs_attention"]
    assert [c["status"] for c in (await case_detail(api, kyc_id))["checks"] if c["name"] == "corrections"] == [
        "review"]


async def test_customers_cannot_reach_other_cases_or_auditor_routes(api):
    owner, other = await customer(api), await customer(api)
    kyc_id = await ready_case(api, owner)
    document = (await api.client.get("/kyc/me", headers=owner["headers"])).json()["documents"][0]
    r = await api.client.put(f"/kyc/documents/{document['document_id']}/corrections", headers=other["headers"],
                             json={"fields": {"full_name": "Someone Else"}})
    assert r.status_code == 404
    for method, path in (("get", "/kyc/pending"), ("get", f"/kyc/{kyc_id}"),
                         ("get", f"/kyc/{kyc_id}/files/{document['document_id']}"),
                         ("put", f"/kyc/{kyc_id}/approve"), ("put", f"/kyc/{kyc_id}/reject")):
        kwargs = {"json": {"reason": "other"}} if method == "put" else {}
        r = await getattr(api.client, method)(path, headers=owner["headers"], **kwargs)
        assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role", path
    auditor = await api.staff("auditor")
    for bad in ("ffffffffffffffffffffffff", "not-an-id", kyc_id + "0"):
        assert (await api.client.get(f"/kyc/{bad}", headers=bearer(auditor))).status_code == 404


async def test_a_file_id_of_another_case_is_not_found(api):
    first, second = await customer(api), await customer(api)
    await ready_case(api, first)
    await ready_case(api, second)
    auditor = await api.staff("auditor")
    case_a = (await api.client.get("/kyc/me", headers=first["headers"])).json()
    case_b = (await api.client.get("/kyc/me", headers=second["headers"])).json()
    detail_b = (await api.client.get(f"/kyc/{case_b['kyc_id']}", headers=bearer(auditor))).json()
    r = await api.client.get(f"/kyc/{case_a['kyc_id']}/files/{detail_b['files'][0]['file_id']}",
                             headers=bearer(auditor))
    assert r.status_code == 404 and r.json()["error_code"] == "file_not_found"


async def test_staff_cannot_decide_their_own_case(api):
    auditor = await api.staff("auditor")
    user = await api.container.users_repo.get_by_identifier(auditor["email"])
    await api.container.users_repo.save_profile(user.id, profile={"dob": "1990-08-15"}, name=None,
                                                now=api.container.clock.now())
    user = await api.container.users_repo.get(user.id)
    for kind, content in (("aadhaar", AADHAAR_FRONT), ("pan", PAN)):
        await api.container.kyc.upload_document(user, document_type=kind, side=None, data=content,
                                                declared_number=None, client=_client())
    await api.container.kyc.upload_selfie(user, SELFIE, None, _client())
    case = await api.container.kyc.submit(user, _client())
    for _ in range(600):
        if (await api.container.kyc.cases.get(case.id)).checks_state.value == "DONE":
            break
        await asyncio.sleep(0.1)
    r = await api.client.put(f"/kyc/{case.id}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_not_reviewable"
    assert "own" in r.json()["detail"]


def _client():
    from app.domain.audit import ClientInfo

    return ClientInfo(ip_address="127.0.0.1", user_agent="test")


async def test_bad_inputs_are_refused_and_leave_the_case_unchanged(api):
    who = await customer(api)
    assert (await upload(api, who, "aadhaar", AADHAAR_FRONT)).status_code == 201
    before = (await api.client.get("/kyc/me", headers=who["headers"])).json()

    r = await upload(api, who, "library_card", PAN)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "document_type"]
    r = await upload(api, who, "pan", b"this is not an image at all")
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_image"
    r = await upload(api, who, "pan", b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024))
    assert r.status_code == 413
    empty_pdf = _pdf_without_pages()
    r = await upload(api, who, "pan", empty_pdf, name="card.pdf")
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_image"
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT, number="2345 6789 0123")
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_document_number"
    r = await selfie(api, who, encode(np.full((480, 640, 3), 200, np.uint8)))
    assert r.status_code == 400 and r.json()["error_code"] == "no_face_detected"
    r = await selfie(api, who, liveness_challenge_id="not-a-challenge")
    assert r.status_code == 400 and r.json()["error_code"] == "liveness_not_passed"
    assert (await api.client.get("/kyc/me", headers=who["headers"])).json() == before

    await upload(api, who, "pan", PAN)
    await selfie(api, who)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    r = await api.client.post("/kyc/submit", headers=who["headers"])
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_already_submitted"
    r = await upload(api, who, "pan", PAN)
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_in_review"


def _pdf_without_pages() -> bytes:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument.new()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


async def test_one_step_upload_is_idempotent_and_submits_once_the_policy_is_met(api):
    who = await customer(api)
    body = {"document_type": "pan", "document_number": PERSON.pan,
            "document_data": base64.b64encode(PAN).decode()}
    key = {"Idempotency-Key": "pan-1"}
    first, again = await asyncio.gather(
        api.client.post("/kyc/upload", headers={**who["headers"], **key}, json=body),
        api.client.post("/kyc/upload", headers={**who["headers"], **key}, json=body))
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json() == again.json() and first.json()["status"] == "OPEN"
    assert "selfie" in first.json()["missing"]
    case = (await api.client.get("/kyc/me", headers=who["headers"])).json()
    assert [d["document_type"] for d in case["documents"]] == ["pan"]
    r = await api.client.post("/kyc/upload", headers={**who["headers"], **key},
                              json={**body, "document_type": "aadhaar"})
    assert r.status_code == 422 and r.json()["error_code"] == "idempotency_key_reused"

    assert (await upload(api, who, "aadhaar", AADHAAR_FRONT)).status_code == 201
    assert (await selfie(api, who)).status_code == 201
    r = await api.client.post("/kyc/upload", headers={**who["headers"], "Idempotency-Key": "pan-2"}, json=body)
    assert r.status_code == 201 and r.json()["status"] == "SUBMITTED" and r.json()["missing"] == []
    r = await api.client.post("/kyc/upload", headers=who["headers"], json={**body, "document_data": "%%%%" * 8})
    assert r.status_code in (400, 409)


@pytest.fixture
async def paused_api(api_factory):
    return await api_factory(job_workers=0, job_max_attempts=2, job_backoff_base_seconds=1)


async def test_a_check_cut_off_midway_finishes_exactly_once_after_restart(paused_api):
    api = paused_api
    who = await customer(api)
    kyc_id = await ready_case(api, who)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    jobs = api.container.db["jobs"]
    inside, real_run = asyncio.Event(), api.container.kyc.ml.run

    async def stuck(*args, **kwargs):  # the checks reach the models and the process stops there
        inside.set()
        await asyncio.Event().wait()

    api.container.kyc.ml.run = stuck
    while not inside.is_set():  # run due jobs (the events' fan-outs too) until the checks job is inside
        run = asyncio.create_task(api.container.jobs.run_once())
        entered = asyncio.create_task(inside.wait())
        await asyncio.wait({run, entered}, return_when=asyncio.FIRST_COMPLETED, timeout=30)
        entered.cancel()
        if run.done():
            assert run.result(), "the checks job never started"
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    api.container.kyc.ml.run = real_run
    case = await api.container.kyc.cases.get(kyc_id)
    assert case.checks_state.value == "RUNNING" and case.checks == []
    api.container.clock.advance(seconds=api.settings.job_lease_seconds + 1)  # the lease lapses
    for _ in range(5):  # the lapsed lease counts as an attempt and is retried after its backoff
        while await api.container.jobs.run_once():
            pass
        api.container.clock.advance(seconds=5)
    case = await api.container.kyc.cases.get(kyc_id)
    assert case.checks_state.value == "DONE" and case.checks
    assert await api.container.db["user_log"].count_documents({"action": "kyc_checks_completed"}) == 1
    assert await jobs.count_documents({"status": "done", "kind": "kyc_checks"}) == 1


async def test_a_check_that_keeps_failing_ends_failed_and_an_admin_retries_it(paused_api):
    api = paused_api
    who = await customer(api)
    kyc_id = await ready_case(api, who)
    case = await api.container.kyc.cases.get(kyc_id)
    # The selfie's file vanishes from storage: every attempt at the face match fails.
    await api.container.db["kyc_files.files"].delete_one({"_id": bson.ObjectId(case.selfie.file_id)})
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    for _ in range(2):  # each time, every due job (the events' webhook fan-outs too)
        while await api.container.jobs.run_once():
            pass
        api.container.clock.advance(seconds=60)
    admin = await api.staff("admin")
    r = await api.client.get("/admin/jobs", headers=bearer(admin), params={"status": "failed"})
    assert r.status_code == 200 and r.json()["total"] == 1
    job = r.json()["items"][0]
    assert job["kind"] == "kyc_checks"
    r = await api.client.post(f"/admin/jobs/{job['id']}/retry", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["status"] == "queued"
    assert (await api.client.get("/kyc/me", headers=who["headers"])).json()["checks_state"] == "RUNNING"


async def test_admin_stats_and_user_views_show_kyc_state(api):
    who = await customer(api)
    kyc_id = await ready_case(api, who)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await checks_done(api, who)
    other = await customer(api)
    await upload(api, other, "pan", PAN)  # an open case
    auditor = await api.staff("auditor")
    r = await api.client.get("/admin/stats", headers=bearer(auditor))
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["users"]["by_role"]["customer"] == 2 and stats["users"]["total"] == 3
    assert stats["kyc"]["status_counts"] == {"OPEN": 1, "SUBMITTED": 1, "APPROVED": 0, "REJECTED": 0,
                                             "RESUBMISSION_REQUESTED": 0}
    assert stats["kyc"]["total"] == 2 and stats["kyc"]["risk_levels"]["Medium"] == 1
    assert (await api.client.get("/admin/stats", headers=who["headers"])).status_code == 403
    me = (await api.client.get("/users/me", headers=who["headers"])).json()
    listed = (await api.client.get("/admin/users", headers=bearer(auditor), params={"kyc_status": "SUBMITTED"})).json()
    assert [(u["user_id"], u["risk_level"]) for u in listed["items"]] == [(me["id"], "Medium")]
    assert listed["items"][0]["overall_score"] > 0
    detail = (await api.client.get(f"/admin/users/{me['id']}", headers=bearer(auditor))).json()
    assert [c["kyc_id"] for c in detail["kyc_cases"]] == [kyc_id] and detail["kyc_cases"][0]["status"] == "SUBMITTED"
