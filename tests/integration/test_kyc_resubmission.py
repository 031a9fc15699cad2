"""Asking again instead of starting over: an auditor sends a case back naming what to redo, the customer
replaces only that and submits into the same case (every round kept; checks whose inputs did not change
keep their results), rounds are capped, and a FINAL rejection blocks a new case (for good or a period)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from tests.conftest import PASSWORD, bearer
from tests.console_cases import submitted_case
from tests.integration.events_helpers import run_jobs
from tests.integration.test_kyc_api import (
    AADHAAR_FRONT,
    PAN,
    case_detail,
    checks_done,
    customer,
    decision_mail,
    ready_case,
    selfie,
    upload,
)

MESSAGE = "Please upload a sharper photo of your PAN card, without glare."
NOTE = "Glare over the number; the last digit may be edited."
MARK = "kept from round 1"


def resubmit_path(kyc_id: str) -> str:
    return f"/kyc/{kyc_id}/request-resubmission"


async def signed_in(api, email: str) -> dict[str, Any]:
    r = await api.client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {**r.json(), "email": email, "headers": bearer(r.json())}


async def stored(api, kyc_id: str) -> dict[str, Any]:
    return await api.container.db["kyc_doc"].find_one({"_id": ObjectId(kyc_id)})  # type: ignore[no-any-return]


async def test_a_case_sent_back_for_the_pan_is_redone_in_the_same_case_and_approved(api):
    who = await customer(api)
    kyc_id = await ready_case(api, who)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await checks_done(api, who)
    before = await case_detail(api, kyc_id)
    aadhaar, pan = (next(d for d in before["documents"] if d["document_type"] == t) for t in ("aadhaar", "pan"))
    # Marks on round 1's results: a result the next round keeps shows its mark, one run again does not.
    await api.container.db["kyc_doc"].update_one({"_id": ObjectId(kyc_id)}, {"$set": {"checks.$[c].detail": MARK}},
                                                  array_filters=[{"c.name": {"$in": ["ocr", "face_match"]}}])
    auditor = await api.staff("auditor")
    body = {"items": [{"document_type": "pan", "side": pan["side"]}], "customer_message": MESSAGE,
            "internal_note": NOTE}
    r = await api.client.put(resubmit_path(kyc_id), headers=bearer(auditor), json=body)
    assert r.status_code == 200 and r.json() == {"message": "Resubmission requested",
                                                 "status": "RESUBMISSION_REQUESTED"}, r.text

    label = f"pan ({pan['side']})" if pan["side"] else "pan"
    r = await api.client.get("/kyc/me", headers=who["headers"])
    mine = r.json()
    assert mine["status"] == "RESUBMISSION_REQUESTED" and mine["kyc_id"] == kyc_id
    assert mine["resubmission"]["items"] == [{"kind": "document", "document_type": "pan", "side": pan["side"]}]
    assert mine["resubmission"]["message"] == MESSAGE and mine["resubmission"]["round"] == 1
    assert mine["missing"] == [label] and NOTE not in r.text
    status = (await api.client.get("/users/me/kyc-status", headers=who["headers"])).json()
    assert status["kyc_status"] == "RESUBMISSION_REQUESTED"
    mail = await decision_mail(api, who["email"], "needs something again")
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert MESSAGE in text and "your pan" in text and NOTE not in text and "Glare over" not in mail.as_string()

    # Only what was asked may change, and the case cannot go back before it has.
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT)
    assert r.status_code == 409 and r.json()["error_code"] == "resubmission_not_requested", r.text
    r = await selfie(api, who)
    assert r.status_code == 409 and r.json()["error_code"] == "resubmission_not_requested"
    r = await api.client.put(f"/kyc/documents/{aadhaar['document_id']}/corrections", headers=who["headers"],
                             json={"fields": {"full_name": "Someone Else"}})
    assert r.status_code == 409 and r.json()["error_code"] == "resubmission_not_requested"
    r = await api.client.post("/kyc/submit", headers=who["headers"])
    assert r.status_code == 422 and r.json()["error_code"] == "kyc_incomplete" and label in r.json()["detail"]

    r = await upload(api, who, "pan", PAN)
    assert r.status_code == 201 and r.json()["kyc_id"] == kyc_id, r.text
    new_pan = r.json()["document_id"]
    assert (await api.client.get("/kyc/me", headers=who["headers"])).json()["missing"] == []
    r = await api.client.post("/kyc/submit", headers=who["headers"])
    assert r.status_code == 202 and r.json() == {"kyc_id": kyc_id, "status": "SUBMITTED"}
    await checks_done(api, who)

    after = await case_detail(api, kyc_id)
    by = {(c["name"], c["document_id"]): c["detail"] for c in after["checks"]}
    assert by[("ocr", aadhaar["document_id"])] == MARK  # untouched document: kept
    assert by[("face_match", aadhaar["document_id"])] == MARK  # neither its document nor the selfie changed
    assert by[("ocr", new_pan)] != MARK and ("ocr", pan["document_id"]) not in by  # the new PAN: run
    assert {d["document_id"] for d in after["documents"]} == {aadhaar["document_id"], new_pan}

    r = await api.client.put(f"/kyc/{kyc_id}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 200 and r.json()["status"] == "APPROVED"
    history = (await case_detail(api, kyc_id))["rounds"]
    assert len(history) == 1  # round 1, sent back; the case itself is round 2
    first = history[0]
    assert first["round"] == 1 and first["requested_by"] == auditor["user_id"] and first["internal_note"] == NOTE
    assert first["items"] == mine["resubmission"]["items"] and first["message"] == MESSAGE
    assert first["replaced"] == [label] and first["resubmitted_at"] > first["requested_at"]
    assert {d["document_id"] for d in first["documents"]} == {aadhaar["document_id"], pan["document_id"]}
    assert {c["detail"] for c in first["checks"] if c["name"] == "ocr"} == {MARK}
    # The replaced PAN's file stays, for the record, and can be opened.
    old = next(f for f in (await case_detail(api, kyc_id))["files"] if f["document_id"] == pan["document_id"])
    image = await api.client.get(old["url"].removeprefix("/api/v1"), headers=bearer(auditor))
    assert image.status_code == 200 and image.content == PAN

    events = [e["type"] async for e in api.container.db["events"].find({"data.kyc_id": kyc_id}).sort("_id", 1)]
    assert events == ["kyc.submitted", "kyc.checks_completed", "kyc.resubmission_requested", "kyc.resubmitted",
                      "kyc.checks_completed", "kyc.approved"], events
    log = [d["action"] async for d in api.container.db["user_log"].find({"details.kyc_id": kyc_id})]
    assert "kyc_resubmission_requested" in log and "kyc_resubmitted" in log


async def test_rounds_are_capped_then_only_approve_or_reject_remain(api_factory):
    api = await api_factory(job_workers=0, kyc_max_resubmissions=1)
    case = await submitted_case(api.container)
    auditor = bearer(await api.staff("auditor"))
    body = {"items": ["selfie"], "customer_message": "Take the selfie again in daylight."}
    assert (await api.client.put(resubmit_path(case["kyc_id"]), headers=auditor, json=body)).status_code == 200
    # As if the customer had sent the new selfie and the checks had run again:
    await api.container.db["kyc_doc"].update_one({"_id": ObjectId(case["kyc_id"])},
                                                  {"$set": {"status": "SUBMITTED", "checks_state": "DONE"}})
    r = await api.client.put(resubmit_path(case["kyc_id"]), headers=auditor, json=body)
    assert r.status_code == 409 and r.json()["error_code"] == "resubmission_limit_reached", r.text
    assert len((await stored(api, case["kyc_id"]))["rounds"]) == 1
    r = await api.client.put(f"/kyc/{case['kyc_id']}/reject", headers=auditor, json={"reasons": ["face_mismatch"]})
    assert r.status_code == 200 and r.json()["status"] == "REJECTED"


async def test_only_reviewers_send_back_a_case_and_only_with_what_it_has(api_factory):
    api = await api_factory(job_workers=0)
    case = await submitted_case(api.container)
    kyc_id, path = case["kyc_id"], resubmit_path(case["kyc_id"])
    owner = await signed_in(api, case["email"])
    auditor = bearer(await api.staff("auditor"))
    good = {"items": [{"document_type": "pan"}, "liveness"], "customer_message": "Again, please."}
    r = await api.client.put(path, headers=owner["headers"], json=good)
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    r = await api.client.put(resubmit_path(str(ObjectId())), headers=auditor, json=good)
    assert r.status_code == 404 and r.json()["error_code"] == "kyc_not_found"
    before = await stored(api, kyc_id)
    for items, field in (([{"document_type": "passport"}], "items.0"), (["selfie", {"document_type": "aadhaar",
                                                                                   "side": "back"}], "items.1")):
        r = await api.client.put(path, headers=auditor, json={**good, "items": items})
        assert r.status_code == 422 and r.json()["error_code"] == "resubmission_item_unknown", r.text
        assert r.json()["errors"][0]["loc"] == ["body", field]
    for bad in ({"items": [{"document_type": "payslip"}]}, {"items": []}, {"items": ["face"]},
                {"customer_message": ""}, {"customer_message": "   "}, {"customer_message": "x" * 1001},
                {"internal_note": "x" * 2001}):
        r = await api.client.put(path, headers=auditor, json={**good, **bad})
        assert r.status_code == 422 and r.json()["error_code"] == "validation_error", (bad, r.text)
    r = await api.client.put(path, headers=auditor, json={"items": ["selfie"]})
    assert r.status_code == 422  # the customer's message is required
    assert await stored(api, kyc_id) == before  # nothing refused changed the case

    assert (await api.client.put(path, headers=auditor, json=good)).status_code == 200
    r = await api.client.put(path, headers=auditor, json=good)  # no longer SUBMITTED
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_not_reviewable"
    for verb in ("approve", "reject"):
        r = await api.client.put(f"/kyc/{kyc_id}/{verb}", headers=auditor, json={"reasons": ["other"]}
                                 if verb == "reject" else {})
        assert r.status_code == 409 and r.json()["error_code"] == "kyc_not_reviewable"
    mine = (await api.client.get("/kyc/me", headers=owner["headers"])).json()
    assert mine["missing"] == ["pan", "liveness"]
    # Another customer reaches nothing of this case: its documents are not theirs (404).
    stranger = await api.customer()
    document_id = before["documents"][0]["id"]
    r = await api.client.put(f"/kyc/documents/{document_id}/corrections", headers=bearer(stranger),
                             json={"fields": {"full_name": "Mallory"}})
    assert r.status_code == 404
    r = await api.client.get("/kyc/me", headers=bearer(stranger))
    assert r.status_code == 404
    r = await api.client.put(path, headers=bearer(stranger), json=good)
    assert r.status_code == 403


async def test_a_final_rejection_blocks_a_new_case_and_a_plain_one_does_not(api_factory):
    api = await api_factory(job_workers=0)
    auditor = bearer(await api.staff("auditor"))
    final, retry = await submitted_case(api.container), await submitted_case(api.container)
    r = await api.client.put(f"/kyc/{final['kyc_id']}/reject", headers=auditor,
                             json={"reasons": ["suspected_fraud"], "reject_type": "FINAL"})
    assert r.status_code == 200, r.text
    r = await api.client.put(f"/kyc/{retry['kyc_id']}/reject", headers=auditor, json={"reasons": ["other"]})
    assert r.status_code == 200
    await run_jobs(api.container)
    who = await signed_in(api, final["email"])
    mine = (await api.client.get("/kyc/me", headers=who["headers"])).json()
    assert mine["reject_type"] == "FINAL"
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT)
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_rejected_final", r.text
    r = await selfie(api, who)
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_rejected_final"
    assert await api.container.db["kyc_doc"].count_documents({"user_id": final["user_id"]}) == 1
    mail = await decision_mail(api, final["email"], "was not approved")
    assert "You cannot apply again." in mail.get_body(preferencelist=("plain",)).get_content()
    # RETRY (a plain reject, as before): a new case at once.
    other = await signed_in(api, retry["email"])
    assert (await api.client.get("/kyc/me", headers=other["headers"])).json()["reject_type"] == "RETRY"
    r = await upload(api, other, "aadhaar", AADHAAR_FRONT)
    assert r.status_code == 201 and r.json()["kyc_id"] != retry["kyc_id"]


async def test_a_final_rejection_for_a_period_allows_a_new_case_after_it(api_factory):
    api = await api_factory(job_workers=0, kyc_final_rejection_days=30)
    case = await submitted_case(api.container)
    r = await api.client.put(f"/kyc/{case['kyc_id']}/reject", headers=bearer(await api.staff("auditor")),
                             json={"reasons": ["document_invalid"], "reject_type": "FINAL",
                                   "customer_message": "Use a valid card."})
    assert r.status_code == 200
    await run_jobs(api.container)
    mail = await decision_mail(api, case["email"], "was not approved")
    assert "You can apply again from " in mail.get_body(preferencelist=("plain",)).get_content()
    who = await signed_in(api, case["email"])
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT)
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_rejected_final"
    api.container.clock.advance(days=29)
    who = await signed_in(api, case["email"])
    assert (await upload(api, who, "aadhaar", AADHAAR_FRONT)).status_code == 409
    api.container.clock.advance(days=2)
    who = await signed_in(api, case["email"])
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT)
    assert r.status_code == 201 and r.json()["kyc_id"] != case["kyc_id"], r.text
