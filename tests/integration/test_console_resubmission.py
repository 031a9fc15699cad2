"""The console's case page sends a case back (the API's request-resubmission, with its rules), and its
decision form can reject FINAL; forms carry the CSRF token like every other."""

from __future__ import annotations

from tests.console_cases import submitted_case
from tests.integration.events_helpers import run_jobs
from tests.integration.test_console import Console, case_doc
from tests.integration.test_kyc_api import decision_mail


async def test_an_auditor_sends_a_case_back_from_the_console(api_factory):
    api = await api_factory(job_workers=0)
    console = Console(api)
    await console.staff("auditor")
    case = await submitted_case(api.container)
    path = f"/console/kyc/{case['kyc_id']}"
    page = await console.get(path)
    assert 'id="resubmission-form"' in page.text and 'value="pan:"' in page.text and 'value="aadhaar:front"' in page.text
    form = {"items": ["aadhaar:front", "liveness"], "customer_message": "Photograph the whole card, then take a "
            "liveness challenge.", "internal_note": "Edges cut; INTERNAL-4411"}

    r = await console.post(f"{path}/resubmission", form)  # no CSRF token: refused, nothing changes
    assert r.status_code == 403
    assert (await case_doc(api, case["kyc_id"]))["status"] == "SUBMITTED"
    token = await console.token(path)
    for bad, words in (({"items": []}, "What to redo"), ({"customer_message": ""}, "The message to the customer"),
                       ({"items": ["passport:"]}, "no passport document"), ({"items": ["face"]}, "What to redo")):
        r = await console.post(f"{path}/resubmission", {**form, **bad, "csrf_token": token})
        assert r.status_code in (400, 422) and words in r.text and "error_code" not in r.text, (bad, r.text[-1500:])
    assert (await case_doc(api, case["kyc_id"]))["status"] == "SUBMITTED"

    r = await console.post(f"{path}/resubmission", {**form, "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/kyc?done=sent_back", r.text
    assert "the customer has been told what to redo" in (await console.get(r.headers["location"])).text
    stored = await case_doc(api, case["kyc_id"])
    assert stored["status"] == "RESUBMISSION_REQUESTED"
    assert stored["rounds"][0]["items"] == [{"kind": "document", "document_type": "aadhaar", "side": "front"},
                                            {"kind": "liveness", "document_type": None, "side": None}]
    assert stored["rounds"][0]["internal_note"] == "Edges cut; INTERNAL-4411"
    await run_jobs(api.container)
    mail = await decision_mail(api, case["email"], "needs something again")
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Photograph the whole card" in text and "INTERNAL-4411" not in mail.as_string()
    again = await console.post(f"{path}/resubmission", {**form, "csrf_token": token})
    assert again.status_code == 409 and "RESUBMISSION_REQUESTED" in again.text


async def test_the_decision_form_rejects_final(api_factory):
    api = await api_factory(job_workers=0)
    console = Console(api)
    await console.staff("auditor")
    case = await submitted_case(api.container)
    path = f"/console/kyc/{case['kyc_id']}"
    r = await console.post(f"{path}/decision", {"decision": "reject", "reasons": ["suspected_fraud"], "final": "1",
                                                "csrf_token": await console.token(path)})
    assert r.status_code == 303 and r.headers["location"] == "/console/kyc?done=rejected"
    assert (await case_doc(api, case["kyc_id"]))["decision"]["final"] is True
