"""Builds the service graph once (used by the API lifespan and by the CLI)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from app import metrics
from app.config import Settings, StartupError
from app.domain.delinquency import Reminders
from app.domain.jobs import JobStatus
from app.domain.kfs import Contact, KfsTerms
from app.domain.kyc import CaseStatus
from app.domain.kyc_renewal import Renewal
from app.domain.loans import LoanStatus
from app.domain.webhooks import WEBHOOK_DELIVERY_LANE
from app.ml import models
from app.ml.faces import DUPLICATE_THRESHOLDS
from app.ml.gateway import MlGateway
from app.repositories.api_keys import ApiKeyRepository
from app.repositories.catalogue import BankRepository, LoanProductRepository
from app.repositories.database import close_client, make_client, ping
from app.repositories.embedded import EmbeddedMongo
from app.repositories.events import EventRepository
from app.repositories.files import EncryptedFileStore
from app.repositories.grievances import GrievanceRepository
from app.repositories.idempotency import IdempotencyRepository
from app.repositories.jobs import JobRepository
from app.repositories.kyc import KycCaseRepository
from app.repositories.liveness_challenges import LivenessChallengeRepository
from app.repositories.loans import LoanRepository
from app.repositories.otps import OtpRepository
from app.repositories.rate_counters import RateCounterRepository
from app.repositories.rate_events import RateEventRepository
from app.repositories.repayments import RepaymentRepository
from app.repositories.screening import WatchlistEntryRepository, WatchlistRepository
from app.repositories.transactions import Transactions, UnitOfWork
from app.repositories.user_log import UserLogRepository
from app.repositories.users import UserRepository
from app.repositories.webhooks import WebhookAttemptRepository, WebhookEndpointRepository
from app.services.admin import AdminService
from app.services.api_keys import ApiKeyService
from app.services.audit import AuditService
from app.services.auth import AuthService
from app.services.catalogue import CatalogueService
from app.services.clock import Clock
from app.services.delinquency import LoanReviews
from app.services.encryption import DocumentCipher
from app.services.events import EventHub, EventService
from app.services.face_duplicates import FaceDuplicates
from app.services.gateway import GatewayService
from app.services.grievances import GrievanceOfficer, GrievanceService
from app.services.idempotency import IdempotencyService
from app.services.jobs import JobService, JobSettings
from app.services.kyc.case import KycCaseService
from app.services.kyc.checks import KycChecksService
from app.services.kyc.renewals import KycRenewals
from app.services.kyc.review import KycReviewService
from app.services.loans import LoanService
from app.services.notifications import Mailer, Notices, Notifier, OutboxSms
from app.services.passwords import PasswordHasher
from app.services.rate_limits import RateLimiter
from app.services.request_limits import InFlightLimiter, RequestLimiter
from app.services.screening import ScreeningService
from app.services.statements import StatementService
from app.services.tokens import TokenService
from app.services.users import UserService
from app.services.verification import VerificationService
from app.services.webhooks import WebhookService, WebhookSettings

log = logging.getLogger("kycflow")
R = TypeVar("R")
NO_TRANSACTIONS = ("MONGODB_URI: the server is a standalone mongod, which has no multi-document transactions; "
                   "use a replica set (one node will do: mongod --replSet rs0, then rs.initiate()) or Atlas")


@dataclass
class Container:
    settings: Settings
    clock: Clock
    client: Any
    db: Any
    embedded: EmbeddedMongo | None
    passwords: PasswordHasher
    users_repo: UserRepository
    auth: AuthService
    users: UserService
    admin: AdminService
    audit: AuditService
    api_keys: ApiKeyService
    ml: MlGateway
    verification: VerificationService
    cipher: DocumentCipher
    files: EncryptedFileStore
    jobs: JobService
    kyc: KycCaseService  # the customer's case
    kyc_checks: KycChecksService
    screening: ScreeningService
    kyc_review: KycReviewService
    idempotency: IdempotencyService
    catalogue: CatalogueService
    loans: LoanService
    grievances: GrievanceService
    statements: StatementService
    events: EventService
    events_hub: EventHub
    webhooks: WebhookService
    request_limits: RequestLimiter
    in_flight: InFlightLimiter
    gateway: GatewayService
    transactions: Transactions
    repositories: list[Any] = field(default_factory=list)
    _stopping: set[asyncio.Future[None]] = field(default_factory=set)
    metrics_server: asyncio.Server | None = None

    async def database_status(self) -> dict[str, Any]:
        try:
            return await ping(self.db)
        except Exception as exc:  # any driver failure means "not usable", never a 500
            return {"ok": False, "error": type(exc).__name__}

    async def metrics_figures(self) -> dict[Any, dict[tuple[str, ...], int]]:
        """Cases, loans and the jobs not done, by status, for /metrics: one index scan each
        (every collection has a status-first index), read at scrape time; 0 for an empty status."""
        cases, loans = await self.kyc.cases.count_by("status"), await self.loans.loans.count_by("status")
        pending = [s.value for s in JobStatus if s is not JobStatus.DONE]
        jobs = await self.jobs.repo.count_by("status", "kind", match={"status": {"$in": pending}})
        kinds = {*self.jobs.kinds, *(kind for _, kind in jobs)}
        return {metrics.KYC_CASES: {(s,): cases.get((s,), 0) for s in CaseStatus},
                metrics.LOANS: {(s,): loans.get((s,), 0) for s in LoanStatus},
                metrics.JOBS: {(s, k): jobs.get((s, k), 0) for s in pending for k in kinds}}

    async def serve_metrics(self) -> None:
        """This process's METRICS_PORT listener, where one is configured (closed by `close`)."""
        s = self.settings
        if s.metrics_port:
            self.metrics_server = await metrics.serve(s.metrics_host, s.metrics_port, self.metrics_figures)

    def begin_shutdown(self) -> None:
        """A stop signal: live streams end on a resume point, job workers stop claiming and give their
        leases back now; the requests in flight still finish (SHUTDOWN_GRACE_SECONDS), then `close`."""
        self.events_hub.close()
        self._stopping.add(asyncio.ensure_future(self.jobs.stop()))

    async def close(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()
        self.events_hub.close()  # live streams end cleanly before the database goes
        await asyncio.gather(*self._stopping)
        await self.jobs.stop()  # before the client closes: gives the leases back
        await self.webhooks.close()
        self.passwords.close()
        self.ml.close()
        await self.api_keys.close()  # writes the pending last_used_at times
        await self.gateway.close()
        await close_client(self.client)
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)  # waits for the child: not on the loop


async def require_transactions(client: Any) -> None:
    """Every change commits with its jobs, events and notices in one transaction, which needs a replica
    set or mongos (Atlas, SecantusDB): a standalone mongod is refused, and the client closed."""
    hello = await client.admin.command("hello")
    if not (hello.get("setName") or hello.get("msg") == "isdbgrid"):
        await close_client(client)
        raise StartupError([NO_TRANSACTIONS])


async def build_container(
    settings: Settings, *, db_name: str | None = None, ml_loaders: dict[str, Any] | None = None,
    db_listeners: list[Any] | None = None,
) -> Container:
    """`db_listeners`: PyMongo command listeners on the client (tests count each route's round trips)."""
    uri, embedded = settings.mongodb_uri, None
    if not uri:
        embedded = EmbeddedMongo(settings.data_dir)
        uri = await asyncio.to_thread(embedded.start)  # polls for the child: not on the loop
    client = make_client(uri, max_idle_seconds=settings.mongo_max_idle_seconds,
                         **({"event_listeners": db_listeners} if db_listeners else {}))
    await require_transactions(client)
    db = client[db_name or settings.mongodb_db]
    clock = Clock()
    # Every repository built through `repo` gets its indexes: no hand-kept list to forget a new collection in.
    built: list[Any] = []

    def repo(cls: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        made = cls(db, *args, **kwargs)
        built.append(made)
        return made

    users_repo, otps = repo(UserRepository), repo(OtpRepository)
    rate_events, user_log = repo(RateEventRepository), repo(UserLogRepository)
    api_keys, challenges = repo(ApiKeyRepository), repo(LivenessChallengeRepository)
    jobs_repo, kyc_cases, idempotency = repo(JobRepository), repo(KycCaseRepository), repo(IdempotencyRepository)
    banks, products = repo(BankRepository), repo(LoanProductRepository)
    loans, repayments, grievances = repo(LoanRepository), repo(RepaymentRepository), repo(GrievanceRepository)
    rate_counters = repo(RateCounterRepository)
    watchlists, watchlist_entries = repo(WatchlistRepository), repo(WatchlistEntryRepository)
    cipher = DocumentCipher.from_settings(settings)  # documents at rest: GridFS bucket `kyc_files`
    retention = timedelta(days=settings.events_retention_days)
    events_repo = repo(EventRepository, retention=retention)
    endpoints = repo(WebhookEndpointRepository, cipher)
    attempts = repo(WebhookAttemptRepository, retention=retention)
    files = repo(EncryptedFileStore, cipher)
    for made in built:
        await made.ensure_indexes()
    passwords = PasswordHasher(settings.bcrypt_rounds, settings.password_workers)
    audit = AuditService(user_log, clock)
    jobs = JobService(jobs_repo, clock, JobSettings(
        workers=settings.job_workers, poll_seconds=settings.job_poll_seconds, lease_seconds=settings.job_lease_seconds,
        timeout_seconds=settings.job_timeout_seconds, max_attempts=settings.job_max_attempts,
        backoff_base_seconds=settings.job_backoff_base_seconds, backoff_cap_seconds=settings.job_backoff_cap_seconds,
        retention_days=settings.job_retention_days, lanes={WEBHOOK_DELIVERY_LANE: settings.webhook_delivery_workers},
    ), audit)
    transactions = Transactions(client, UnitOfWork(
        users=users_repo, kyc=kyc_cases, loans=loans, repayments=repayments, jobs=jobs_repo, events=events_repo,
        audit=user_log, grievances=grievances, webhooks=endpoints), after_commit=jobs.wake)
    events = EventService(events_repo, jobs, clock)
    notifier = Notifier(Mailer(settings, clock), OutboxSms(settings.data_dir / "outbox", clock),
                        settings.otp_ttl_seconds // 60)
    notices = Notices(jobs, notifier)
    webhooks = WebhookService(
        settings=WebhookSettings(
            production=settings.is_production, timeout_seconds=settings.webhook_timeout_seconds,
            retry_schedule=tuple(settings.webhook_retry_schedule), retry_jitter=settings.webhook_retry_jitter,
            retry_after_cap_seconds=settings.webhook_retry_after_cap_seconds,
            disable_after_days=settings.webhook_disable_after_days,
            endpoint_concurrency=settings.webhook_endpoint_concurrency,
            secret_grace_seconds=settings.webhook_secret_grace_seconds),
        endpoints=endpoints, attempts=attempts, events=events_repo, jobs=jobs, audit=audit, clock=clock,
        outbox=events, notices=notices, users=users_repo, transactions=transactions)
    auth = AuthService(
        settings=settings, users=users_repo, otps=otps, passwords=passwords,
        tokens=TokenService(settings, clock), notifier=notifier, limiter=RateLimiter(rate_events, clock),
        audit=audit, clock=clock,
    )
    ml = MlGateway(ml_loaders if ml_loaders is not None else models.loaders(settings), workers=settings.ml_workers,
                   timeout=settings.ml_timeout_seconds, max_queue=settings.ml_max_queue,
                   processes=settings.ml_processes, memory_mb=settings.ml_worker_memory_mb)
    verification = VerificationService(settings, ml, challenges, clock)
    levels = settings.kyc_level_table()
    renewals = KycRenewals(
        renewal=Renewal(settings.kyc_validity_years, settings.kyc_renewal_notice_days), users=users_repo,
        cases=kyc_cases, transactions=transactions, jobs=jobs, events=events, notices=notices, audit=audit, clock=clock)
    await renewals.start()
    kyc_review = KycReviewService(
        cases=kyc_cases, users=users_repo, files=files, ml=ml, limits=verification.limits, transactions=transactions,
        audit=audit, notices=notices, clock=clock, events=events, claim_minutes=settings.kyc_claim_minutes,
        four_eyes_high_risk=settings.kyc_four_eyes_high_risk, max_resubmissions=settings.kyc_max_resubmissions,
        final_rejection_days=settings.kyc_final_rejection_days, levels=levels, renewals=renewals)
    screening = ScreeningService(
        lists=watchlists, entries=watchlist_entries, users=users_repo, cases=kyc_cases,
        transactions=transactions, jobs=jobs, audit=audit, events=events, clock=clock,
        weights=settings.kyc_check_weights)
    kyc_checks = KycChecksService(
        cases=kyc_cases, users=users_repo, files=files, ml=ml, limits=verification.limits, transactions=transactions,
        jobs=jobs, audit=audit, clock=clock, events=events, review=kyc_review, weights=settings.kyc_check_weights,
        auto_decision=settings.kyc_auto_decision, screening=screening, faces=FaceDuplicates(
            cases=kyc_cases, cipher=cipher, clock=clock, model=settings.face_backend,
            threshold=DUPLICATE_THRESHOLDS[settings.face_backend] if settings.face_duplicate_threshold is None
            else settings.face_duplicate_threshold))
    kyc = KycCaseService(
        levels=levels, cases=kyc_cases, files=files, cipher=cipher, challenges=challenges, ml=ml, limits=verification.limits,
        transactions=transactions, jobs=jobs, audit=audit, clock=clock, events=events,
        final_rejection_days=settings.kyc_final_rejection_days)
    catalogue = CatalogueService(banks, products, audit, clock, levels.names)
    lending = LoanService(loans=loans, repayments=repayments, catalogue=catalogue, users=users_repo, audit=audit,
                          notices=notices, transactions=transactions, clock=clock, events=events, levels=levels,
                          kfs=KfsTerms(settings.kfs_validity_working_days, frozenset(settings.bank_holidays), Contact(
                              settings.grievance_officer_name, settings.grievance_officer_email,
                              settings.grievance_officer_phone), settings.recovery_agents_used, settings.recovery_policy),
                          reviews=LoanReviews(loans=loans, users=users_repo, transactions=transactions, jobs=jobs,
                                              events=events, notices=notices, clock=clock, reminders=Reminders(
                                                  settings.loan_reminder_days_before,
                                                  tuple(settings.loan_reminder_days_after))))
    return Container(
        grievances=GrievanceService(
            grievances=grievances, loans=loans, users=users_repo, transactions=transactions, notices=notices,
            events=events, audit=audit, clock=clock, officer=GrievanceOfficer(
                settings.grievance_officer_name, settings.grievance_officer_email, settings.grievance_officer_phone)),
        statements=StatementService(loans=lending, users=users_repo, catalogue=catalogue, clock=clock,
                                    lender=settings.lender_name),
        catalogue=catalogue, loans=lending, events=events, webhooks=webhooks,
        events_hub=EventHub(events_repo, poll_seconds=settings.events_poll_seconds),
        cipher=cipher, files=files, kyc=kyc, kyc_checks=kyc_checks, screening=screening, kyc_review=kyc_review,
        idempotency=IdempotencyService(idempotency, clock),
        settings=settings, clock=clock, client=client, db=db, embedded=embedded, passwords=passwords,
        users_repo=users_repo, auth=auth, users=UserService(users_repo, audit, clock, jobs, transactions),
        admin=AdminService(users_repo, passwords, audit, clock), audit=audit,
        api_keys=ApiKeyService(api_keys, audit, clock, usage_flush_seconds=settings.api_key_usage_flush_seconds),
        ml=ml, transactions=transactions,
        verification=verification, jobs=jobs, repositories=built,
        request_limits=RequestLimiter(rate_counters, clock, settings.rate_limit_table(), batch=settings.rate_limit_batch),
        in_flight=InFlightLimiter(settings.max_in_flight_per_caller),
        gateway=GatewayService(settings.gateway_services, connect_timeout=settings.gateway_connect_timeout_seconds,
                               read_timeout=settings.gateway_read_timeout_seconds),
    )
