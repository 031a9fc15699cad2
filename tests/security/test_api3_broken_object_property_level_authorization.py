"""OWASP API Security Top 10 (2023), API3: Broken Object Property Level Authorization

Items of issue 15 that belong here: verified name and date of birth stay verified (4), internal notes stay internal (14), customers do not see scores (15). Each test fails on the code before the fix."""

from __future__ import annotations

# --- item 4: what KYC verified stays verified -------------------------------------------------------


async def test_verified_name_and_date_of_birth_cannot_change_and_eligibility_reads_them(api):
    from bson import ObjectId

    from tests.integration.lending_helpers import born_years_ago, borrower, make_product

    product = await make_product(api)  # ages 21-60, tenures up to 60 months
    who = await borrower(api)  # born 1990-04-12, KYC approved with that date of birth and "Asha Rao"
    users = api.container.db["user"]
    before = await users.find_one({"_id": ObjectId(who["user_id"])})
    old = born_years_ago(59, api.container.clock.now().date())  # 59: over 60 before a long loan ends

    for body, fields in (({"dob": old}, ["dob"]), ({"dob": None}, ["dob"]),
                         ({"name": "Someone Else", "dob": old, "children": 1}, ["name", "dob"])):
        r = await api.client.patch("/users/me", headers=who["headers"], json=body)
        assert r.status_code == 409 and r.json()["error_code"] == "identity_verified", (body, r.text)
        assert [e["loc"][-1] for e in r.json()["errors"]] == fields
    after = await users.find_one({"_id": ObjectId(who["user_id"])})
    assert after["profile"] == before["profile"] and after["name"] == before["name"]  # nothing stored, children neither

    # The verified values sent again, or other fields, are fine.
    r = await api.client.patch("/users/me", headers=who["headers"],
                               json={"name": "Asha Rao", "dob": "1990-04-12", "family_size": 3})
    assert r.status_code == 200 and r.json()["profile"]["family_size"] == 3, r.text

    # Eligibility reads what KYC verified, not whatever the profile says now (a record changed behind
    # the API's back, or written before names and dates were pinned).
    await users.update_one({"_id": ObjectId(who["user_id"])}, {"$set": {"profile.dob": old}})
    r = await api.client.post("/eligibility/check", headers=who["headers"],
                              json={"product_id": product.id, "amount": 100000, "tenure_months": 60})
    assert r.status_code == 200 and r.json()["eligible"] and r.json()["reasons"] == [], r.text


async def test_name_and_date_of_birth_are_held_while_the_case_is_under_review(api):
    from app.domain.users import KycStatus
    from tests.conftest import bearer

    tokens = await api.customer()
    assert (await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1990-04-12"})).status_code == 200
    await api.container.users_repo.set_kyc_status(tokens["user_id"], KycStatus.SUBMITTED, api.container.clock.now())
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1960-01-01"})
    assert r.status_code == 409 and r.json()["error_code"] == "identity_under_review", r.text
    assert [e["loc"][-1] for e in r.json()["errors"]] == ["dob"]
    # Rejected, the customer may correct them before the next case.
    await api.container.users_repo.set_kyc_status(tokens["user_id"], KycStatus.REJECTED, api.container.clock.now())
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1960-01-01", "name": "Asha Rao K"})
    assert r.status_code == 200 and r.json()["profile"]["dob"] == "1960-01-01" and r.json()["name"] == "Asha Rao K"


# --- item 14: internal notes stay internal ----------------------------------------------------------


async def test_a_rejection_mails_the_message_and_reasons_never_the_internal_note(api):
    from app.domain.kyc import REJECTION_REASONS
    from tests.conftest import bearer
    from tests.integration.test_kyc_api import checks_done, customer, decision_mail, ready_case

    who = await customer(api)
    kyc_id = await ready_case(api, who)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await checks_done(api, who)
    auditor = await api.staff("auditor")
    note = "INTERNAL: possible impersonation, same face as another applicant"
    message = "Please upload a sharper photo of your Aadhaar card and retake your selfie in daylight."
    reasons = ["document_unreadable", "face_mismatch"]
    # Ambiguous or unknown shapes are refused and decide nothing.
    for bad in ({"reasons": reasons, "reason": "other"}, {"reasons": ["unknown_reason"]}, {"reasons": []},
                {"reasons": reasons, "notes": note, "internal_note": note}, {"internal_note": note}):
        r = await api.client.put(f"/kyc/{kyc_id}/reject", headers=bearer(auditor), json=bad)
        assert r.status_code == 422 and r.json()["error_code"] == "validation_error", (bad, r.text)
    assert (await api.container.kyc.cases.get(kyc_id)).status.value == "SUBMITTED"

    r = await api.client.put(f"/kyc/{kyc_id}/reject", headers=bearer(auditor),
                             json={"reasons": reasons, "internal_note": note, "customer_message": message})
    assert r.status_code == 200 and r.json() == {"message": "KYC rejected successfully", "status": "REJECTED"}
    mail = await decision_mail(api, who["email"], "not approved")
    assert "not approved" in mail["subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    for body in (text, html):
        assert "INTERNAL" not in body and "impersonation" not in body, body
    assert message in text and all(REJECTION_REASONS[code] in text for code in reasons), text

    # The customer's view has the reasons and the message, not the note.
    mine = await api.client.get("/kyc/me", headers=who["headers"])
    assert "impersonation" not in mine.text
    assert [x["code"] for x in mine.json()["rejection_reasons"]] == reasons and mine.json()["message"] == message
    # The auditor's view and the audit trail keep the note.
    decision = (await api.client.get(f"/kyc/{kyc_id}", headers=bearer(auditor))).json()["decision"]
    assert decision["internal_note"] == note and decision["reasons"] == reasons
    assert decision["customer_message"] == message
    trail = await api.client.get("/audit-logs", headers=bearer(auditor), params={"action": "kyc_rejected"})
    assert trail.status_code == 200, trail.text
    details = trail.json()["items"][0]["details"]
    assert details["internal_note"] == note and details["reasons"] == reasons


# --- item 15: the customer sees what to do, not how they are scored --------------------------------

_SCORING = ("score", "risk", "cosine", "similarity", "confidence", "breakdown", "distance", "threshold")


def _scoring_keys(value, path=""):
    """Every key anywhere in a JSON value that names a score, a similarity or a risk."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if any(word in key.lower() for word in _SCORING):
                found.append(f"{path}/{key}")
            found += _scoring_keys(item, f"{path}/{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found += _scoring_keys(item, f"{path}/{n}")
    return found


async def test_the_customer_sees_what_to_fix_never_scores_while_the_auditor_sees_everything(api):
    from tests.conftest import bearer
    from tests.integration.test_kyc_api import checks_done, customer, ready_case

    who = await customer(api)
    kyc_id = await ready_case(api, who)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    mine = await checks_done(api, who)
    assert _scoring_keys(mine) == [], _scoring_keys(mine)
    assert "%" not in str(mine)  # no score hidden in a sentence either
    assert {c["state"] for c in mine["checks"]} <= {"pass", "needs_attention"} and mine["checks"]
    liveness = next(c for c in mine["checks"] if c["name"] == "liveness")  # no challenge taken
    assert liveness["state"] == "needs_attention" and "liveness challenge" in liveness["hint"]
    assert mine["status"] == "SUBMITTED" and mine["missing"] == []
    # Nor does the customer's live stream (GET /events) carry them.
    events = api.container.db["events"].find({"type": "kyc.checks_completed", "data.kyc_id": kyc_id})
    published = [e async for e in events]
    assert published and all(_scoring_keys(e["data"]) == [] for e in published), published

    auditor = await api.staff("auditor")
    detail = (await api.client.get(f"/kyc/{kyc_id}", headers=bearer(auditor))).json()
    assert detail["risk_level"] in ("Low", "Medium", "High") and detail["overall_score"] is not None
    assert detail["breakdown"]["face_match"] > 0 and all("score" in c for c in detail["checks"])
    assert detail["documents"][0]["extracted"]["confidence"] > 0

    # /openapi.json documents the two views as two models; the customer's names no score.
    spec = (await api.client.get("http://testserver/openapi.json")).json()
    ref = spec["paths"]["/api/v1/kyc/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    auditor_ref = spec["paths"]["/api/v1/kyc/{kyc_id}"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"]["$ref"]
    assert ref != auditor_ref
    customer_models = {ref.rsplit("/", 1)[1]}
    components = spec["components"]["schemas"]
    while True:  # the customer's model and every model it refers to
        refs = {r.rsplit("/", 1)[1] for name in customer_models for r in _refs(components[name])}
        if refs <= customer_models:
            break
        customer_models |= refs
    for name in customer_models:
        assert not [p for p in components[name].get("properties", {}) if any(w in p for w in _SCORING)], name
    assert {"overall_score", "risk_level", "breakdown"} <= set(components[auditor_ref.rsplit("/", 1)[1]]["properties"])


def _refs(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)
