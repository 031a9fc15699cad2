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
