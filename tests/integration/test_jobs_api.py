"""Admin routes over the durable jobs: browse, retry a failed one; admins only, audited."""

from __future__ import annotations

from bson import ObjectId

from tests.conftest import bearer, eventually


async def failed_job(api, key="stuck:1"):
    """A job of a kind no worker here runs, driven to `failed` through the repository."""
    repo, now = api.container.jobs.repo, api.container.clock.now()
    await repo.enqueue(key=key, kind="nobody_runs_this", payload={"n": 1}, max_attempts=1, run_at=now, now=now)
    job = await repo.claim(owner="w", kinds=["nobody_runs_this"], now=now, lease_seconds=30)
    return await repo.fail(job, owner="w", error="RuntimeError: upstream down", now=now, retry_at=now)


async def test_customers_and_auditors_may_not_see_or_retry_jobs(api):
    job = await failed_job(api)
    for tokens in (await api.customer(), await api.staff("auditor")):
        r = await api.client.get("/admin/jobs", headers=bearer(tokens))
        assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
        r = await api.client.post(f"/admin/jobs/{job.id}/retry", headers=bearer(tokens))
        assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    assert (await api.client.get("/admin/jobs")).status_code == 401
    assert (await api.container.db["jobs"].find_one({}))["status"] == "failed"


async def test_admin_lists_failed_jobs_in_a_page(api):
    job = await failed_job(api, "stuck:1")
    await failed_job(api, "stuck:2")
    now = api.container.clock.now()
    await api.container.jobs.repo.enqueue(key="later", kind="nobody_runs_this", payload={}, max_attempts=1,
                                          run_at=now.replace(year=now.year + 1), now=now)
    admin = await api.staff("admin")
    r = await api.client.get("/admin/jobs", params={"status": "failed", "page_size": 1}, headers=bearer(admin))
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 2 and body["page"] == 1 and body["page_size"] == 1 and len(body["items"]) == 1
    item = body["items"][0]
    assert item["status"] == "failed" and item["kind"] == "nobody_runs_this" and item["attempts"] == 1
    assert item["last_error"] == "RuntimeError: upstream down" and item["finished_at"].endswith("Z")
    r = await api.client.get("/admin/jobs", params={"status": "failed", "page": 2, "page_size": 1},
                             headers=bearer(admin))
    assert r.json()["total"] == 2 and len(r.json()["items"]) == 1 and r.json()["items"][0]["id"] != item["id"]
    r = await api.client.get("/admin/jobs", params={"status": "failed", "page": 3, "page_size": 1},
                             headers=bearer(admin))
    assert r.json()["items"] == [] and r.json()["total"] == 2
    assert (await api.client.get("/admin/jobs", headers=bearer(admin))).json()["total"] == 3
    assert job.id in {i["id"] for i in (await api.client.get("/admin/jobs", params={"status": "failed"},
                                                              headers=bearer(admin))).json()["items"]}
    for params in ({"status": "stuck"}, {"page": 0}, {"page_size": 101}):
        r = await api.client.get("/admin/jobs", params=params, headers=bearer(admin))
        assert r.status_code == 422 and r.json()["error_code"] == "validation_error", params
    viewed = await api.container.db["user_log"].count_documents({"action": "jobs_viewed"})
    assert viewed == 5  # the refused (422) listings were not


async def test_retry_requeues_a_failed_job_and_is_audited(api):
    job = await failed_job(api)
    admin = await api.staff("admin")
    r = await api.client.post(f"/admin/jobs/{job.id}/retry", headers=bearer(admin))
    assert r.status_code == 200
    assert r.json()["id"] == job.id and r.json()["status"] == "queued" and r.json()["attempts"] == 0
    stored = await api.container.db["jobs"].find_one({"_id": ObjectId(job.id)})
    assert stored["status"] == "queued" and stored["attempts"] == 0 and stored["finished_at"] is None
    entry = await api.container.db["user_log"].find_one({"action": "job_retried"})
    assert entry["details"]["job_id"] == job.id and entry["actor_role"] == "admin"
    assert entry["ip_address"] == "203.0.113.7"

    r = await api.client.post(f"/admin/jobs/{job.id}/retry", headers=bearer(admin))  # now queued
    assert r.status_code == 409 and r.json()["error_code"] == "job_not_failed"
    assert await api.container.db["user_log"].count_documents({"action": "job_retried"}) == 1


async def test_retry_of_an_unknown_or_malformed_id_is_404(api):
    admin = await api.staff("admin")
    for job_id in (str(ObjectId()), "not-an-id", "6741f0c2a1b2c3d4e5f6071"):
        r = await api.client.post(f"/admin/jobs/{job_id}/retry", headers=bearer(admin))
        assert r.status_code == 404 and r.json()["error_code"] == "job_not_found", job_id


async def test_a_job_that_keeps_failing_ends_failed_and_an_admin_retry_runs_it(api_factory):
    api = await api_factory(job_max_attempts=3, job_backoff_base_seconds=0, job_poll_seconds=0.05)
    runs: list[int] = []
    broken = True

    async def flaky(job):
        runs.append(job.attempts)
        if broken:
            raise ConnectionError("bureau unreachable")
        await api.container.db["effects"].update_one({"_id": job.key}, {"$set": {"done": True}}, upsert=True)

    api.container.jobs.register("flaky", flaky)
    job = await api.container.jobs.enqueue("flaky", "flaky:1", {})

    async def failed():
        doc = await api.container.db["jobs"].find_one({"_id": ObjectId(job.id)})
        return doc if doc["status"] == "failed" else None

    doc = await eventually(failed)
    assert doc["attempts"] == 3 and runs == [1, 2, 3]
    assert doc["last_error"] == "ConnectionError: bureau unreachable"
    admin = await api.staff("admin")
    listed = (await api.client.get("/admin/jobs", params={"status": "failed"}, headers=bearer(admin))).json()
    assert [i["id"] for i in listed["items"]] == [job.id]

    broken = False
    assert (await api.client.post(f"/admin/jobs/{job.id}/retry", headers=bearer(admin))).status_code == 200

    async def done():
        return (await api.container.db["jobs"].find_one({"_id": ObjectId(job.id)}))["status"] == "done"

    assert await eventually(done)
    assert runs == [1, 2, 3, 1] and await api.container.db["effects"].count_documents({"done": True}) == 1
