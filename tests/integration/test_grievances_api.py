"""Grievances over HTTP: a borrower raises them about a loan, staff answer within the RBI's 30 days,
and one left unresolved past them is flagged with the route to the RBI Ombudsman."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import bearer, eventually
from tests.integration.lending_helpers import apply_body, borrower, make_product, relogin

TEXT = "I was charged a late fee although I paid on the due date."


async def _loan(api, who, name: str) -> str:
    product = await make_product(api, name=name)
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))
    assert r.status_code == 201, r.text
    return r.json()["loan_id"]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _raise(api, who, loan_id: str, **body):
    return await api.client.post(f"/loans/my-loans/{loan_id}/grievances", headers=who["headers"],
                                 json={"category": "charges", "text": TEXT, **body})


async def _stored(api) -> int:
    return await api.container.db["grievances"].count_documents({})


async def _events(api, user_id: str) -> list[str]:
    docs = await api.container.db["events"].find({"user_id": user_id, "type": {"$regex": "^grievance"}}).sort(
        "_id", 1).to_list(None)
    return [d["type"] for d in docs]


async def test_a_grievance_answered_and_closed_within_30_days(api):
    clock = api.container.clock
    who = await borrower(api)
    loan_id = await _loan(api, who, "Grievance Loan A")
    r = await _raise(api, who, loan_id)
    assert r.status_code == 201, r.text
    g = r.json()
    assert (g["status"], g["category"], g["text"], g["loan_id"], g["days_open"]) == (
        "OPEN", "charges", TEXT, loan_id, 0)
    assert _at(g["due_at"]) - _at(g["opened_at"]) == timedelta(days=30)
    assert g["escalation_available"] is False and g["escalation"] is None
    s = api.settings
    assert g["grievance_officer"] == {"name": s.grievance_officer_name, "email": s.grievance_officer_email,
                                      "phone": s.grievance_officer_phone}

    # Staff see it in the queue with its clock; a customer may not read the queue.
    assert (await api.client.get("/admin/grievances", headers=who["headers"])).status_code == 403
    clock.advance(days=10)  # tokens last minutes: staff sign in after the clock moved
    auditor = await api.staff("auditor")
    q = (await api.client.get("/admin/grievances", headers=bearer(auditor))).json()
    mine = next(item for item in q["items"] if item["grievance_id"] == g["grievance_id"])
    assert mine["days_open"] == 10 and mine["escalation_available"] is False
    # Replying and closing speak for the lender: loans:manage (admins), not auditors.
    path = f"/admin/grievances/{g['grievance_id']}"
    r = await api.client.post(f"{path}/responses", headers=bearer(auditor), json={"message": "Looking into it."})
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"

    admin_h = bearer(await api.staff("admin"))
    r = await api.client.post(f"{path}/responses", headers=admin_h,
                              json={"message": "The fee was reversed; it shows in your statement."})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "RESPONDED" and r.json()["replies"][0]["message"].startswith("The fee was reversed")
    r = await api.client.post(f"{path}/close", headers=admin_h, json={"message": "Resolved: fee reversed."})
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["status"] == "CLOSED" and closed["closed_at"] and closed["days_open"] == 10
    again = await api.client.post(f"{path}/close", headers=admin_h, json={"message": "Again."})
    assert again.status_code == 409 and again.json()["error_code"] == "grievance_closed"

    async def mailed():
        subjects = [m["Subject"] for m in api.mailbox.for_address(who["email"])]
        return {"We received your grievance", "A reply to your grievance", "Your grievance is resolved"} <= set(subjects)

    assert await eventually(mailed)
    bodies = [m.get_payload(decode=True) or b"" for m in api.mailbox.for_address(who["email"]) if not m.is_multipart()]
    bodies += [p.get_payload(decode=True) or b"" for m in api.mailbox.for_address(who["email"]) if m.is_multipart()
               for p in m.walk() if not p.is_multipart()]
    assert any(b"The fee was reversed; it shows in your statement." in b for b in bodies)
    assert await _events(api, who["user_id"]) == ["grievance.opened", "grievance.responded", "grievance.closed"]

    # Past 30 days a closed grievance is not flagged.
    clock.advance(days=25)
    who = await relogin(api, who)
    mine = (await api.client.get(f"/loans/my-loans/{loan_id}/grievances", headers=who["headers"])).json()
    assert [(i["status"], i["escalation_available"]) for i in mine["items"]] == [("CLOSED", False)]


async def test_a_grievance_unresolved_past_30_days_names_the_rbi_ombudsman(api):
    clock = api.container.clock
    who = await borrower(api)
    loan_id = await _loan(api, who, "Grievance Loan B")
    first = (await _raise(api, who, loan_id, category="service")).json()
    clock.advance(days=2)
    who = await relogin(api, who)
    r = await _raise(api, who, loan_id, category="recovery_conduct", text="Calls after 7 pm every day.")
    assert r.status_code == 201, r.text
    second = r.json()
    admin_h = bearer(await api.staff("admin"))
    r = await api.client.post(f"/admin/grievances/{first['grievance_id']}/responses", headers=admin_h,
                              json={"message": "We are checking with the branch."})
    assert r.status_code == 200

    clock.advance(days=29)  # the first is 31 days open (replied to, not resolved), the second 29
    who = await relogin(api, who)
    page = (await api.client.get(f"/loans/my-loans/{loan_id}/grievances", headers=who["headers"])).json()
    assert page["total"] == 2
    newest, oldest = page["items"]
    assert (newest["grievance_id"], newest["days_open"], newest["escalation_available"]) == (
        second["grievance_id"], 29, False)
    assert (oldest["grievance_id"], oldest["days_open"], oldest["escalation_available"]) == (
        first["grievance_id"], 31, True)
    assert oldest["escalation"]["url"] == "https://cms.rbi.org.in" and "Ombudsman" in oldest["escalation"]["name"]

    # The staff queue: unresolved, oldest first; by status.
    admin_h = bearer(await api.staff("admin"))
    queue = (await api.client.get("/admin/grievances", headers=admin_h, params={"page_size": 100})).json()["items"]
    ours = [i["grievance_id"] for i in queue if i["loan_id"] == loan_id]
    assert ours == [first["grievance_id"], second["grievance_id"]]
    opened = [_at(i["opened_at"]) for i in queue]
    assert opened == sorted(opened)
    responded = (await api.client.get("/admin/grievances", headers=admin_h, params={"status": "RESPONDED"})).json()
    assert {i["status"] for i in responded["items"]} == {"RESPONDED"}
    assert first["grievance_id"] in [i["grievance_id"] for i in responded["items"]]


async def test_another_customers_loan_and_bad_input_are_refused_and_store_nothing(api):
    who, other = await borrower(api), await borrower(api)
    loan_id = await _loan(api, who, "Grievance Loan C")
    before = await _stored(api)
    r = await _raise(api, other, loan_id)
    assert r.status_code == 404 and r.json()["error_code"] == "loan_not_found"
    r = await api.client.get(f"/loans/my-loans/{loan_id}/grievances", headers=other["headers"])
    assert r.status_code == 404
    for body, field in (({"text": "short"}, "text"), ({"text": "x" * 4001}, "text"), ({"category": "fraud"}, "category"),
                        ({"text": "Calls at night \u202e every day"}, "text"), ({"extra": 1}, "extra")):
        r = await _raise(api, who, loan_id, **body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error_code"] == "validation_error" and r.json()["errors"][0]["loc"][-1] == field
    admin_h = bearer(await api.staff("admin"))
    r = await api.client.post("/admin/grievances/6741f0c2a1b2c3d4e5f60718/close", headers=admin_h,
                              json={"message": "Resolved."})
    assert r.status_code == 404 and r.json()["error_code"] == "grievance_not_found"
    r = await api.client.get("/admin/grievances", headers=admin_h, params={"status": "SOLVED"})
    assert r.status_code == 422
    assert await _stored(api) == before


async def test_malformed_or_operator_shaped_grievance_ids_are_a_404_and_change_nothing(api):
    admin = bearer(await api.staff("admin"))
    for bad in ("not-an-id", "%7B%22%24gt%22%3A%22%22%7D", "0" * 24, "x" * 300):
        for action in ("responses", "close"):
            r = await api.client.post(f"/admin/grievances/{bad}/{action}", headers=admin,
                                      json={"message": "We have refunded the fee."})
            assert (r.status_code, r.json()["error_code"]) == (404, "grievance_not_found"), (bad, r.text)
    assert await _stored(api) == 0
