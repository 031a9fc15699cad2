"""The console's case page and the review rules it shares with the API: thresholds read from the
settings the checks use, a duplicate linked to the other account's case, and four eyes on
High-risk approvals (KYC_FOUR_EYES_HIGH_RISK) through the console and the API alike."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from tests.console_cases import submitted_case
from tests.integration.test_console import Console


@pytest.fixture
async def capi(api_factory: Any) -> Any:
    return await api_factory(job_workers=0)


def check_row(page: str, name: str) -> str:
    """The text of the checks table's row for `name` (tags stripped)."""
    rows = re.findall(r"<tr>(.*?)</tr>", page.split('id="checks"')[1].split("</table>")[0], re.S)
    row = next(r for r in rows if f"<td>{name}</td>" in r)
    return html.unescape(re.sub(r"<[^>]+>", " ", row))


@pytest.mark.parametrize("settings, shown", [({}, "cosine similarity ≥ 0.93 (dlib model)"),
                                             ({"face_match_threshold": 0.88}, "cosine similarity ≥ 0.88 (dlib model)")])
async def test_the_case_page_shows_the_face_match_threshold_the_checks_use(api_factory, settings, shown):
    api = await api_factory(job_workers=0, **settings)
    case = await submitted_case(api.container)
    console = Console(api)
    await console.staff("auditor")
    page = await console.get(f"/console/kyc/{case['kyc_id']}")
    assert page.status_code == 200
    face = check_row(page.text, "Selfie matches document photo")
    assert shown in face and "0.31" in face
    assert "pass at ≥ 0.60 with a number read" in check_row(page.text, "Document read (OCR)")
    assert "pass at ≥ 0.90, review at ≥ 0.75" in check_row(page.text, "Name agrees with profile")


async def test_a_failed_duplicate_check_links_to_the_other_account_s_case(capi):
    from bson import ObjectId

    from app.domain.kyc import Check, CheckStatus

    c = capi.container
    first = await submitted_case(c, name="Asha Rao")
    second = await submitted_case(c, name="Asha R Rao")
    db = c.db["kyc_doc"]
    for case in (first, second):  # both Aadhaar cards show the same number (its keyed hash)
        await db.update_one({"_id": ObjectId(case["kyc_id"])}, {"$set": {"documents.0.shown_fingerprint": "fp-same"}})
    stored = await db.find_one({"_id": ObjectId(second["kyc_id"])})
    aadhaar_id = stored["documents"][0]["id"]
    duplicate = Check("duplicate_document", CheckStatus.FAIL, 0.0, "This document is registered to another account.",
                      aadhaar_id)
    await db.update_one({"_id": ObjectId(second["kyc_id"])}, {"$push": {"checks": duplicate.as_dict()}})
    console = Console(capi)
    await console.staff("auditor")
    page = await console.get(f"/console/kyc/{second['kyc_id']}")
    row = page.text.split('id="checks"')[1].split("</table>")[0]
    assert f'href="/console/kyc/{first["kyc_id"]}"' in row and "Asha Rao" in check_row(page.text, "Not on another account")
    # The first case's own page has no such check, so no link (nothing failed there).
    other = await console.get(f"/console/kyc/{first['kyc_id']}")
    assert f'href="/console/kyc/{second["kyc_id"]}"' not in other.text


async def _four_eyes(api_factory: Any, **settings: Any) -> tuple[Any, dict[str, Any]]:
    api = await api_factory(job_workers=0, kyc_four_eyes_high_risk=True, **settings)
    return api, await submitted_case(api.container)  # High risk: the face match failed


async def case_doc(api: Any, kyc_id: str) -> dict[str, Any]:
    from bson import ObjectId

    return await api.container.db["kyc_doc"].find_one({"_id": ObjectId(kyc_id)})


async def test_four_eyes_through_the_api_the_first_approval_waits_for_another_auditor(api_factory):
    from tests.conftest import bearer

    api, case = await _four_eyes(api_factory)
    first, second = await api.staff("auditor"), await api.staff("auditor")
    approve = f"/kyc/{case['kyc_id']}/approve"
    r = await api.client.put(approve, json={"internal_note": "Looks right to me"}, headers=bearer(first))
    assert r.status_code == 200 and r.json()["status"] == "SUBMITTED" and "second" in r.json()["message"]
    stored = await case_doc(api, case["kyc_id"])
    assert stored["status"] == "SUBMITTED" and stored["first_approval"]["by"] == first["user_id"]
    assert stored.get("decision") is None
    assert (await api.container.db["user"].find_one({"email": case["email"]}))["kyc_status"] == "SUBMITTED"
    assert await api.container.db["jobs"].count_documents({"kind": "customer_notice"}) == 0  # nobody told yet

    r = await api.client.put(approve, json={}, headers=bearer(first))
    assert r.status_code == 409 and r.json()["error_code"] == "second_approver_required"
    assert (await case_doc(api, case["kyc_id"]))["status"] == "SUBMITTED"

    r = await api.client.put(approve, json={"customer_message": "Welcome aboard."}, headers=bearer(second))
    assert r.status_code == 200 and r.json()["status"] == "APPROVED"
    stored = await case_doc(api, case["kyc_id"])
    assert stored["decision"]["by"] == second["user_id"] and stored["first_approval"]["by"] == first["user_id"]
    assert (await api.container.db["user"].find_one({"email": case["email"]}))["kyc_status"] == "APPROVED"
    assert await api.container.db["user_log"].count_documents({"action": "kyc_first_approval"}) == 1


async def test_four_eyes_leaves_other_risks_and_rejections_to_one_auditor(api_factory):
    from bson import ObjectId

    from tests.conftest import bearer

    api, case = await _four_eyes(api_factory)
    other = await submitted_case(api.container)
    await api.container.db["kyc_doc"].update_one({"_id": ObjectId(other["kyc_id"])},
                                                 {"$set": {"risk_level": "Medium"}})
    auditor = await api.staff("auditor")
    r = await api.client.put(f"/kyc/{other['kyc_id']}/approve", json={}, headers=bearer(auditor))
    assert r.status_code == 200 and r.json()["status"] == "APPROVED"
    r = await api.client.put(f"/kyc/{case['kyc_id']}/reject", json={"reasons": ["face_mismatch"]},
                             headers=bearer(auditor))
    assert r.status_code == 200 and r.json()["status"] == "REJECTED"
    off = await api_factory(job_workers=0)  # the setting's default: one approval decides a High-risk case
    high = await submitted_case(off.container)
    r = await off.client.put(f"/kyc/{high['kyc_id']}/approve", json={}, headers=bearer(await off.staff("auditor")))
    assert r.status_code == 200 and r.json()["status"] == "APPROVED"


async def test_four_eyes_in_the_console_the_same_auditor_cannot_give_the_second_approval(api_factory):
    api, case = await _four_eyes(api_factory)
    ravi, neha = Console(api), Console(api)
    await ravi.staff("auditor", name="Ravi Auditor")
    await neha.staff("auditor", name="Neha Auditor")
    path = f"/console/kyc/{case['kyc_id']}"
    await ravi.post(f"{path}/claim", {"csrf_token": await ravi.token(path)})
    r = await ravi.post(f"{path}/decision", {"decision": "approve", "internal_note": "Checked by phone",
                                             "csrf_token": await ravi.token(path)})
    assert r.status_code == 303 and r.headers["location"] == "/console/kyc?done=first_approval"
    assert "a second auditor" in (await ravi.get(r.headers["location"])).text
    stored = await case_doc(api, case["kyc_id"])
    assert stored["status"] == "SUBMITTED" and stored["first_approval"]["by_name"] == "Ravi Auditor"
    assert stored.get("claim") is None  # the first approver's claim ends, so another auditor can take it
    page = await ravi.get(path)
    assert "First approval by you" in page.text
    r = await ravi.post(f"{path}/decision", {"decision": "approve", "csrf_token": await ravi.token(path)})
    assert r.status_code == 409 and "another auditor" in r.text and '{"' not in r.text
    assert (await case_doc(api, case["kyc_id"]))["status"] == "SUBMITTED"

    page = await neha.get(path)
    assert "First approval by Ravi Auditor" in page.text
    r = await neha.post(f"{path}/decision", {"decision": "approve", "csrf_token": await neha.token(path)})
    assert r.status_code == 303 and r.headers["location"] == "/console/kyc?done=approved"
    assert (await case_doc(api, case["kyc_id"]))["status"] == "APPROVED"


async def test_four_eyes_the_queue_shows_which_cases_want_a_second_approval(api_factory):
    api, case = await _four_eyes(api_factory)
    waiting = await submitted_case(api.container)
    ravi, neha = Console(api), Console(api)
    await ravi.staff("auditor", name="Ravi Auditor")
    await neha.staff("auditor", name="Neha Auditor")
    path = f"/console/kyc/{case['kyc_id']}"
    r = await ravi.post(f"{path}/decision", {"decision": "approve", "csrf_token": await ravi.token(path)})
    assert r.status_code == 303
    queue = (await neha.get("/console/kyc")).text
    row = queue.split(f'data-kyc-id="{case["kyc_id"]}"')[1].split("</tr>")[0]
    assert "second approval wanted" in row and "approved once by Ravi Auditor" in row
    other = queue.split(f'data-kyc-id="{waiting["kyc_id"]}"')[1].split("</tr>")[0]
    assert "second approval wanted" not in other
    assert "approved once by you" in (await ravi.get("/console/kyc")).text
