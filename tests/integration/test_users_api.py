"""The signed-in user's own record."""

from __future__ import annotations

from tests.conftest import bearer, eventually

ADDRESS = {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}
PROFILE = {
    "dob": "1990-04-12", "gender": "female", "marital_status": "married", "family_size": 4, "working_members": 1,
    "children": 2, "current_address": ADDRESS, "permanent_address": {**ADDRESS, "city": "Mysuru"},
}


async def test_me_shows_the_account(api, email):
    tokens = await api.customer(email)
    r = await api.client.get("/users/me", headers=bearer(tokens))
    body = r.json()
    assert r.status_code == 200
    assert body["email"] == email and body["role"] == "customer" and body["status"] == "active"
    assert body["kyc_status"] == "PENDING" and body["created_at"].endswith("Z") and body["profile_risk"] is None
    assert "password_hash" not in body


async def test_partial_profile_does_not_queue_risk(api, email):
    tokens = await api.customer(email)
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1990-04-12", "name": "Asha R"})
    assert r.status_code == 200
    assert r.json()["profile"] == {"dob": "1990-04-12"} and r.json()["name"] == "Asha R"
    assert r.json()["profile_risk"] is None


async def test_complete_profile_queues_a_risk_assessment(api, email):
    tokens = await api.customer(email)
    r = await api.client.patch("/users/me", headers=bearer(tokens), json=PROFILE)
    assert r.status_code == 200
    assert r.json()["profile_risk"]["status"] == "PENDING"

    async def done():
        me = (await api.client.get("/users/me", headers=bearer(tokens))).json()
        return me if me["profile_risk"]["status"] == "DONE" else None

    me = await eventually(done)
    risk = me["profile_risk"]
    # 3 dependants (24) + 2 children (8) + different addresses (10) = 42 -> Medium
    assert risk["score"] == 42 and risk["level"] == "Medium"
    assert risk["factors"]["dependants"] == 24


async def test_pending_assessment_resumes_after_a_restart(api_factory, email):
    # No workers: the service stops with the assessment queued; the next start's workers finish it.
    api = await api_factory(job_workers=0)
    tokens = await api.customer(email)
    r = await api.client.patch("/users/me", headers=bearer(tokens), json=PROFILE)
    assert r.status_code == 200 and r.json()["profile_risk"]["status"] == "PENDING"
    user_id = r.json()["id"]
    job = await api.container.db["jobs"].find_one({"kind": "profile_risk"})
    assert job["status"] == "queued" and job["payload"]["user_id"] == user_id

    restarted = await api_factory(mongodb_db=api.settings.mongodb_db)

    async def done():
        me = (await restarted.client.get("/users/me", headers=bearer(tokens))).json()
        return me if me["profile_risk"]["status"] == "DONE" else None

    assert (await eventually(done))["profile_risk"]["score"] == 42

    async def completed():  # the handler's write lands before the job is marked done (a separate command)
        found = await api.container.db["jobs"].find_one({"_id": job["_id"]})
        return found if found["status"] == "done" else None

    assert (await eventually(completed))["attempts"] == 1


async def test_a_newer_edit_supersedes_the_queued_assessment(api_factory, email):
    api = await api_factory(job_workers=0)
    tokens = await api.customer(email)
    await api.client.patch("/users/me", headers=bearer(tokens), json=PROFILE)
    api.container.clock.advance(seconds=1)
    await api.client.patch("/users/me", headers=bearer(tokens), json={"children": 0})
    jobs = await api.container.db["jobs"].find({"kind": "profile_risk"}).sort("created_at", 1).to_list()
    assert len(jobs) == 2
    api.container.jobs.start(1)

    async def both_done():
        return await api.container.db["jobs"].count_documents({"status": "done"}) == 2

    assert await eventually(both_done)
    me = (await api.client.get("/users/me", headers=bearer(tokens))).json()
    # Only the second job wrote: 3 dependants (24) + 0 children + different addresses (10) = 34.
    assert me["profile_risk"]["status"] == "DONE" and me["profile_risk"]["score"] == 34


async def test_mass_assignment_is_rejected(api, email):
    tokens = await api.customer(email)
    for field, value in (("role", "admin"), ("status", "active"), ("kyc_status", "APPROVED"), ("email", "x@y.io")):
        r = await api.client.patch("/users/me", headers=bearer(tokens), json={field: value})
        assert r.status_code == 422, field
        assert r.json()["error_code"] == "validation_error"
        assert r.json()["errors"][0]["loc"][-1] == field
    user = await api.container.db["user"].find_one({"email": email})
    assert user["role"] == "customer" and user["kyc_status"] == "PENDING"


async def test_null_clears_a_profile_field_but_never_the_name(api, email):
    tokens = await api.customer(email)
    await api.client.patch("/users/me", headers=bearer(tokens), json={"dob": "1990-04-12", "gender": "female"})
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"gender": None})
    assert r.status_code == 200 and r.json()["profile"] == {"dob": "1990-04-12"}
    r = await api.client.patch("/users/me", headers=bearer(tokens), json={"name": None})
    assert r.status_code == 422
    assert (await api.client.get("/users/me", headers=bearer(tokens))).json()["name"] == "Asha Rao"


async def test_wrong_types_are_422(api, email):
    tokens = await api.customer(email)
    bad = [({"family_size": "many"}, ["body", "family_size"]), ({"dob": "12/04/1990"}, ["body", "dob"]),
           ({"current_address": {**ADDRESS, "pincode": "12"}}, ["body", "current_address", "pincode"]),
           ({"gender": "robot"}, ["body", "gender"]), ({"children": -1}, ["body", "children"])]
    before = (await api.client.get("/users/me", headers=bearer(tokens))).json()
    for body, field in bad:
        r = await api.client.patch("/users/me", headers=bearer(tokens), json=body)
        assert r.status_code == 422 and r.json()["error_code"] == "validation_error", body
        assert field in [e["loc"] for e in r.json()["errors"]], r.json()["errors"]
    assert (await api.client.get("/users/me", headers=bearer(tokens))).json() == before  # nothing stored


async def test_kyc_status(api, email):
    tokens = await api.customer(email)
    r = await api.client.get("/users/me/kyc-status", headers=bearer(tokens))
    assert r.status_code == 200 and r.json()["kyc_status"] == "PENDING" and r.json()["risk_level"] is None


async def test_financial_details_round_trip_exactly(api, email):
    tokens = await api.customer(email)
    r = await api.client.get("/users/me/financial-details", headers=bearer(tokens))
    assert r.status_code == 404 and r.json()["error_code"] == "details_not_found"
    body = {"monthly_income": 85000.5, "monthly_expenses": 30000, "existing_emi": 12500.25, "credit_score": 760}
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens), json=body)
    assert r.status_code == 200 and r.json() == body
    assert (await api.client.get("/users/me/financial-details", headers=bearer(tokens))).json() == body
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens),
                             json={**body, "monthly_income": 100.123})
    assert r.status_code == 422  # more than 2 decimal places
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens), json={**body, "credit_score": 5})
    assert r.status_code == 422


async def test_employment_details(api, email):
    tokens = await api.customer(email)
    body = {"employment_type": "salaried", "employer_name": "Infosys", "designation": "Engineer",
            "years_in_current_job": 3, "total_experience_years": 7.5}
    r = await api.client.put("/users/me/employment-details", headers=bearer(tokens), json=body)
    assert r.status_code == 200 and r.json() == body
    r = await api.client.get("/users/me/employment-details", headers=bearer(tokens))
    assert r.json()["employer_name"] == "Infosys"
    r = await api.client.put("/users/me/employment-details", headers=bearer(tokens),
                             json={**body, "employment_type": "pirate"})
    assert r.status_code == 422
