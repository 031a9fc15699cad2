"""Round trips per route: the database commands each route's main (successful) path sends, and each
job handler, counted by a command listener on the app's client (`route_walk.py`). Every route has a
budget here with its reason; a route that sends more fails, and a new route without a budget fails.

Counted: every command to the app's database, `getMore` and a transaction's `commitTransaction`
included; not counted: the driver's own (`hello`, `endSessions`) and the shared rate-limit counter
(one `$inc` claims up to 16 requests of a caller, so no single request owns it). Budgets are
today's counts: lower one when a change saves a round trip."""

from __future__ import annotations

from typing import Any

from app.main import API_PREFIX, create_app
from tests.integration.route_walk import walked

# (method, path template): (budget, why it costs that much)
ROUTES: dict[tuple[str, str], tuple[int, str]] = {
    # Health and sign-in
    ("GET", "/health"): (1, "a ping"),
    ("GET", "/health/live"): (0, "none: a database blip must not restart the instance"),
    ("GET", "/health/ready"): (1, "a ping"),
    ("POST", "/auth/register"): (7, "insert user + audit; OTP throttle (read, record, read); OTP replace (delete, insert)"),
    ("POST", "/auth/resend-otp"): (6, "read user; OTP throttle (read, record, read); OTP replace (delete, insert)"),
    ("POST", "/auth/verify-otp"): (8, "read, claim and consume the code; read user twice, verify, set session; audit"),
    ("POST", "/auth/login"): (9, "read user; failure throttle (3 reads, record, clear); read user again, session; audit"),
    ("POST", "/auth/login/otp"): (6, "read user; OTP throttle (read, record, read); OTP replace (delete, insert)"),
    ("POST", "/auth/login/verify-otp"): (7, "read, claim and consume the code; read user twice; session; audit"),
    ("POST", "/auth/refresh"): (2, "read user, rotate the session under its revision"),
    ("POST", "/auth/logout"): (4, "principal, read user again, drop the session; audit"),
    ("GET", "/auth/verify-token"): (1, "principal"),
    ("POST", "/auth/change-password"): (10, "principal; failure throttle (4); set password; read + end sessions; audit"),
    ("POST", "/auth/password/forgot"): (6, "read user; OTP throttle (read, record, read); OTP replace (delete, insert)"),
    ("POST", "/auth/password/reset"): (14, "code (read, claim, consume); password and sessions (7); 3 throttle deletes; audit"),
    # The customer's record
    ("GET", "/users/me"): (1, "principal"),
    ("PATCH", "/users/me"): (5, "principal; risk job + profile in one transaction (commit); audit"),
    ("GET", "/users/me/kyc-status"): (1, "principal"),
    ("GET", "/users/me/financial-details"): (1, "principal"),
    ("PUT", "/users/me/financial-details"): (4, "principal; risk job + details in one transaction (commit)"),
    ("GET", "/users/me/employment-details"): (1, "principal"),
    ("PUT", "/users/me/employment-details"): (4, "principal; risk job + details in one transaction (commit)"),
    # KYC (customers)
    ("POST", "/kyc/documents"): (13, "principal; open case (read, insert, read); GridFS (driver's index check, chunk, "
                                     "file; listIndexes x2 on an empty bucket); add or replace in one update; audit"),
    ("PUT", "/kyc/documents/{document_id}/corrections"): (4, "principal, case, update under state; audit"),
    ("POST", "/kyc/selfie"): (9, "principal; case read twice; GridFS (driver's index checks, chunk, file); set; audit"),
    ("POST", "/kyc/submit"): (9, "principal, case; checks job, case, user, event job + event in one transaction "
                                 "(commit); audit"),
    ("POST", "/kyc/upload"): (19, "principal; idempotency record (insert, finish) around a document upload (8) and "
                                  "a submit (8)"),
    ("GET", "/kyc/me"): (2, "principal, the newest case"),
    # KYC (auditors)
    ("GET", "/kyc/pending"): (3, "principal, page, total"),
    ("GET", "/kyc/{kyc_id}"): (3, "principal, case; audit (case viewed)"),
    ("GET", "/kyc/{kyc_id}/files/{file_id}"): (6, "principal, case; file metadata read twice (ours, GridFS's), chunks; "
                                                  "audit"),
    ("POST", "/kyc/{kyc_id}/claim"): (4, "principal, case; claim under its state; audit"),
    ("DELETE", "/kyc/{kyc_id}/claim"): (3, "principal; release one's own claim; audit"),
    ("PUT", "/kyc/{kyc_id}/approve"): (10, "principal, case, customer; decision, user, event job + event, audit, "
                                           "notice job in one transaction (commit)"),
    ("PUT", "/kyc/{kyc_id}/reject"): (10, "as approve"),
    # Staff and audit
    ("POST", "/admin/users"): (3, "principal, insert, audit"),
    ("PUT", "/admin/users/{user_id}/status"): (5, "principal, target read twice around the change; audit"),
    ("GET", "/admin/users"): (3, "principal, page, total"),
    ("GET", "/admin/users/{user_id}"): (5, "principal, user, last case, loans page + total"),
    ("GET", "/admin/stats"): (4, "principal; users per role, loan book, cases per status (one aggregate each)"),
    ("GET", "/roles"): (1, "principal"),
    ("GET", "/audit-logs"): (3, "principal, page, total"),
    ("POST", "/admin/api-keys"): (3, "principal, insert, audit"),
    ("GET", "/admin/api-keys"): (3, "principal, page, total"),
    ("DELETE", "/admin/api-keys/{key_id}"): (3, "principal, revoke, audit"),
    ("GET", "/admin/jobs"): (4, "principal, page, total; audit (jobs viewed)"),
    ("POST", "/admin/jobs/{job_id}/retry"): (3, "principal, requeue under state, audit"),
    # Stateless verification (models; the database only knows the caller)
    ("POST", "/kyc/verify"): (1, "principal"),
    ("POST", "/ocr/extract"): (1, "principal"),
    ("GET", "/liveness/challenge"): (2, "principal, store the challenge"),
    ("POST", "/liveness/verify"): (3, "principal, read and consume the challenge"),
    ("POST", "/liveness/detect"): (1, "principal"),
    # Lending
    ("GET", "/loans/products"): (3, "page, total, their banks (public: no principal)"),
    ("GET", "/loans/products/{product_id}"): (2, "product, its bank"),
    ("POST", "/eligibility/check"): (3, "principal, product, open loans"),
    ("POST", "/eligibility/calculate-emi"): (0, "arithmetic only"),
    ("POST", "/loans/apply"): (10, "principal, product; book version, open loans, loan, notice job, event job + "
                                   "event, audit (commit)"),
    ("GET", "/loans/my-loans"): (3, "principal, page, total"),
    ("GET", "/loans/my-loans/{loan_id}"): (3, "principal, loan, repayments"),
    ("POST", "/loans/my-loans/{loan_id}/repayments"): (9, "principal, loan; loan, repayment, notice job, event "
                                                          "job + event (commit); audit"),
    ("POST", "/loans/my-loans/{loan_id}/kfs/accept"): (8, "principal, loan; acceptance, notice job, event + "
                                                          "event job (commit); audit"),
    ("GET", "/loans/my-loans/{loan_id}/pre-close"): (2, "principal, loan"),
    ("POST", "/loans/my-loans/{loan_id}/pre-close"): (6, "principal, loan; transition, notice job (commit); audit"),
    ("GET", "/admin/loans"): (3, "principal, page, total"),
    ("GET", "/admin/loans/{loan_id}"): (3, "principal, loan, repayments"),
    ("POST", "/admin/loans"): (11, "principal, customer, product; book version, open loans, loan, notice job, "
                                   "event job + event, audit (commit)"),
    ("POST", "/admin/loans/{loan_id}/approve"): (11, "principal, loan, customer; book version, open loans, "
                                                     "transition, notice job, event job + event (commit); audit"),
    ("POST", "/admin/loans/{loan_id}/reject"): (9, "principal, loan, customer; transition, notice job, event job + "
                                                   "event (commit); audit"),
    ("POST", "/admin/loans/{loan_id}/disburse"): (9, "as reject"),
    ("POST", "/admin/loans/{loan_id}/pre-close/confirm"): (10, "as reject, plus the closing repayment"),
    ("GET", "/admin/statistics"): (2, "principal, one aggregate"),
    # Catalogue (admins)
    ("GET", "/admin/banks"): (3, "principal, page, total"),
    ("POST", "/admin/banks"): (3, "principal, insert, audit"),
    ("GET", "/admin/products"): (4, "principal, page, total, their banks"),
    ("POST", "/admin/products"): (5, "principal, bank, insert, audit, bank again for the answer"),
    ("PUT", "/admin/products/{product_id}"): (6, "principal, product, bank, replace, audit, bank again for the answer"),
    # Webhooks (admins)
    ("POST", "/admin/webhooks"): (3, "principal, insert, audit"),
    ("GET", "/admin/webhooks"): (3, "principal, page, total"),
    ("GET", "/admin/webhooks/{webhook_id}"): (2, "principal, endpoint"),
    ("DELETE", "/admin/webhooks/{webhook_id}"): (3, "principal, disable, audit"),
    ("POST", "/admin/webhooks/{webhook_id}/rotate-secret"): (4, "principal, endpoint, rotate, audit"),
    ("GET", "/admin/webhooks/{webhook_id}/attempts"): (4, "principal, endpoint, page, total"),
    ("POST", "/admin/webhooks/{webhook_id}/attempts/{attempt_id}/redeliver"): (6, "principal, endpoint, attempt, "
                                                                                  "event, delivery job, audit"),
    # Live events: a stream; its live part is the shared poll (one query per instance, not per viewer)
    ("GET", "/events"): (2, "principal; the missed events after Last-Event-ID (then one session read per heartbeat)"),
    # Gateway: the upstream does the work
    **{(method, "/gateway/{service}/{path:path}"): (1, "principal") for method in
       ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")},
}

# Job kind: (budget per run of its handler, why)
JOBS: dict[str, tuple[int, str]] = {
    "kyc_checks": (18, "case, user, 2 duplicate checks, 2 files (metadata twice each, chunks), screening (lists in "
                       "force, candidates); results, event job + event, user's risk, audit (and an automatic decision's writes) in one transaction (commit)"),
    "profile_risk": (2, "user, the score under the queued marker"),
    "customer_notice": (1, "claim the mail on its job (it goes after; a refused mail gives the claim back)"),
    "webhook_fanout": (3, "event, matching endpoints, a delivery job per endpoint"),
    "webhook_delivery": (4, "endpoint, earlier attempts, event, record the attempt"),
    "screening_rescreen": (13, "switch the list (done already), drop older entries, changed entries, approved "
                               "customers (500 a read by _id, then an empty read); per hit: case, then reopen, status, risk, event + fan-out "
                               "job, audit in one transaction (commit)"),
}
# What the job machinery adds to every run: claim, complete, and a sweep for lapsed leases (at most
# once a poll interval per lane, not beside every claim).
JOB_RUN = 3


def _api_routes() -> set[tuple[str, str]]:
    routes = set()
    for route in create_app().routes:
        for r in route.effective_candidates() if hasattr(route, "effective_candidates") else [route]:
            if hasattr(r, "methods") and r.path.startswith(API_PREFIX + "/"):
                routes |= {(m, r.path.removeprefix(API_PREFIX)) for m in r.methods}
    return routes


def test_every_route_has_a_budget():
    routes = _api_routes()
    assert routes - set(ROUTES) == set(), "routes without a round-trip budget"
    assert set(ROUTES) - routes == set(), "budgets of routes that are gone"


def _over(counts: dict[Any, int], budgets: dict[Any, tuple[int, str]]) -> list[str]:
    return [f"{key}: {counts[key]} commands, budget {budgets[key][0]}" for key in budgets if counts[key] > budgets[key][0]]


async def test_each_route_stays_within_its_round_trip_budget(api_factory):
    result = await walked(api_factory)
    counts = {(method, path.removeprefix(API_PREFIX)): result.route_count((method, path))
              for method, path in result.routes}
    assert set(ROUTES) <= set(counts), f"routes the walk did not reach: {sorted(set(ROUTES) - set(counts))}"
    over = _over(counts, ROUTES)
    detail = {f"{m} {p}": [str(c) for c in result.routes[(m, API_PREFIX + p)][-1]] for m, p in ROUTES
              if counts[(m, p)] > ROUTES[(m, p)][0]}
    assert not over, f"{over}\n{detail}"


async def test_a_live_stream_reads_its_session_once_per_heartbeat(api_factory):
    result = await walked(api_factory)
    assert result.heartbeats >= 1
    assert [str(c) for c in result.stream_reads] == ["find user"] * len(result.stream_reads)
    assert len(result.stream_reads) <= result.heartbeats + 1  # and once more as the token runs out


async def test_each_job_handler_stays_within_its_budget(api_factory):
    result = await walked(api_factory)
    assert set(result.kinds) == set(JOBS), "every job kind has a budget"
    assert set(result.jobs) == set(JOBS), "every job kind runs in the walk"
    assert not _over({kind: result.job_count(kind) for kind in JOBS}, JOBS)
    assert max(len(run) for run in result.job_machinery) <= JOB_RUN


def markdown_table() -> str:
    """The README's round-trip table, from the budgets above (gateway methods on one line)."""
    lines = ["| route | commands | why |", "|---|---:|---|"]
    gateway = "/gateway/{service}/{path:path}"
    for (method, path), (budget, why) in ROUTES.items():
        if path == gateway:
            if method != "GET":
                continue
            method = "any"
        lines.append(f"| `{method} {path}` | {budget} | {why} |")
    lines += ["", "| job | commands per run | why |", "|---|---:|---|"]
    lines += [f"| `{kind}` | {budget} | {why} |" for kind, (budget, why) in JOBS.items()]
    lines.append(f"| (every job run) | +{JOB_RUN} | claim, complete; a lapsed-lease sweep at most once a poll interval |")
    return "\n".join(lines)


def test_the_readme_shows_the_budgets():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "README's round-trip table is stale: paste markdown_table()'s output"


ROUTES[("PUT", "/kyc/{kyc_id}/request-resubmission")] = (10, "as reject: principal, case, customer; the round, user, "
                                                             "event job + event, audit, notice job (commit)")

# Loan servicing: statements and grievances.
ROUTES.update({
    ("GET", "/loans/my-loans/{loan_id}/statement"): (5, "principal, loan, repayments; the PDF's customer (staff only) "
                                                        "and bank"),
    ("POST", "/loans/my-loans/{loan_id}/grievances"): (8, "principal, own loan; grievance, event + fan-out job, audit, "
                                                          "notice job, commit"),
    ("GET", "/loans/my-loans/{loan_id}/grievances"): (4, "principal, own loan, page, total"),
    ("GET", "/admin/grievances"): (3, "principal, page, total"),
    ("POST", "/admin/grievances/{grievance_id}/responses"): (9, "principal, grievance, customer; reply under its "
                                                                 "state, event + fan-out job, audit, notice job, commit"),
    ("POST", "/admin/grievances/{grievance_id}/close"): (9, "as a response"),
})

# Periodic re-KYC: an approval also queues the next daily run (once per day), and the daily job.
ROUTES[("PUT", "/kyc/{kyc_id}/approve")] = (11, "principal, case, customer; decision, user, event job + event, audit, "
                                                "notice job, next daily re-KYC run in one transaction (commit)")
JOBS["kyc_renewals"] = (17, "the next day's run, customers due (a page); per customer a notice (flag, event + "
                            "fan-out job, notice job, commit: 5) or an expiry (case; status, the case's round, event + "
                            "fan-out job, audit, notice job, commit: 8); the walk expires two")
ROUTES[("POST", "/kyc/level")] = (27, "a step-up: principal, latest case; open case (read, insert); each of 3 files "
                                       "copied (read: metadata twice, chunks; write: GridFS's checks x2, chunk, file); "
                                       "carry over; audit")

# Webhooks: enabling a disabled endpoint again, and replaying its failed deliveries since a time.
ROUTES.update({
    ("POST", "/admin/webhooks/{webhook_id}/enable"): (3, "principal, enable, audit"),
    ("POST", "/admin/webhooks/{webhook_id}/replay"): (4, "principal, endpoint, latest attempts since, audit (and a "
                                                         "delivery job per failed event: none in the walk)"),
})
JOBS["kyc_checks"] = (JOBS["kyc_checks"][0] + 3, JOBS["kyc_checks"][1] + "; the face_duplicate search: the sealed "
                      "embedding stored, the approvals since the index last looked, on a hit the matched cases confirmed")

# Part-prepayment and the cooling-off exit.
ROUTES.update({
    ("POST", "/loans/my-loans/{loan_id}/prepayments/quote"): (2, "principal, loan"),
    ("POST", "/loans/my-loans/{loan_id}/prepayments"): (11, "principal; idempotency record (insert, finish) around: "
                                                            "loan; loan, repayment, notice job, event job + event "
                                                            "(commit); audit"),
    ("GET", "/loans/my-loans/{loan_id}/cooling-off-exit"): (2, "principal, loan"),
    ("POST", "/loans/my-loans/{loan_id}/cooling-off-exit"): (11, "principal, loan; loan, repayment, notice job, "
                                                                 "event job + event twice (the exit, loan.closed) "
                                                                 "(commit); audit"),
})

# Arrears: a disbursal arms the daily review; a payment that moves the class publishes loan.classified.
ROUTES[("POST", "/admin/loans/{loan_id}/disburse")] = (10, "as reject, and the next daily loan review (once per day)")
ROUTES[("POST", "/loans/my-loans/{loan_id}/repayments")] = (11, "principal, loan; loan, repayment, notice job, event + "
                                                                "fan-out job, and on a cure loan.classified + fan-out "
                                                                "job (commit); audit")
JOBS["loan_reviews"] = (16, "the next day's run, loans due (one cursor, by id); per hundred loans whose arrears moved: "
                            "their customers (one read, for reminders) and one commit; per loan: loan, loan.overdue "
                            "and loan.classified + fan-out jobs, notice job; the walk reviews two")

# Periodic re-KYC: each run first looks for approvals older than it (a page; none in the walk).
JOBS["kyc_renewals"] = (JOBS["kyc_renewals"][0] + 1, JOBS["kyc_renewals"][1] + "; first, approvals older than "
                        "periodic re-KYC (a page; each given its validity: its cases, case, user)")
