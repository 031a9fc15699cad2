"""Settings from the environment and `.env` (every field is listed in `.env.example`)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from app.document_keys import KeyConfigError, generate_key_spec, parse_key
from app.domain.documents import DocumentType
from app.domain.kyc import DEFAULT_LEVEL, DEFAULT_WEIGHTS, CheckName, RiskLevel, SubmissionPolicy
from app.domain.kyc_levels import Levels
from app.domain.kyc_renewal import DEFAULT_YEARS
from app.domain.rate_limits import DEFAULT_LIMITS, RateLimit, RouteGroup

# A gateway service: a name that fits a URL path segment, and an http(s) base URL without query or fragment.
_ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
_BaseUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")]
# HS256 needs a key at least as long as its hash (RFC 7518 §3.2); the secret also keys the OTP hashes.
MIN_JWT_SECRET_BYTES = 32


class StartupError(RuntimeError):
    """Settings the service must not start with: every problem found, so one start names them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems)
        count = "1 setting" if len(problems) == 1 else f"{len(problems)} settings"
        super().__init__(f"refusing to start: {count} to fix in the environment or .env:\n{listed}")


class KycLevelSpec(BaseModel):
    """One of KYC_LEVELS; a document list or `selfie` left out is KYC_IDENTITY_DOCUMENTS', KYC_REQUIRED_DOCUMENTS' or
    KYC_REQUIRE_SELFIE's."""

    model_config = ConfigDict(extra="forbid")
    identity_documents: list[DocumentType] | None = None  # one of these
    required_documents: list[DocumentType] | None = None  # each of these
    selfie: bool | None = None
    liveness: bool = False  # the selfie taken with a passed liveness challenge
    checks: list[CheckName] = []  # must have passed for an approval at this level


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    environment: Literal["development", "production", "test"] = "development"
    log_level: str = "INFO"

    # Database
    mongodb_uri: str | None = None
    mongodb_db: str = "kycflow"
    data_dir: Path = Path("./var")
    # Pooled connections idle longer than this are closed by the client, before a firewall,
    # load balancer or the embedded server (5 minutes) drops them under it.
    mongo_max_idle_seconds: float = Field(60.0, gt=0)

    # Tokens
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "kycflow"
    jwt_audience: str = "kycflow-api"
    access_token_ttl_seconds: int = Field(900, gt=0)
    refresh_token_ttl_seconds: int = Field(2_592_000, gt=0)
    # Refreshing extends a session, but never past this age: then the user signs in again.
    session_max_lifetime_seconds: int = Field(7_776_000, gt=0)
    # The staff console's cookie session (/console): ends after this long without a request, and
    # at this age whatever happens.
    console_idle_timeout_seconds: int = Field(1_800, gt=0)
    console_session_max_seconds: int = Field(28_800, gt=0)

    # Mail and SMS
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "KYC Flow <no-reply@kycflow.local>"
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    # Login and OTP policy
    login_otp: Literal["off", "staff", "all"] = "staff"
    otp_ttl_seconds: int = 600
    otp_max_attempts: int = 5
    otp_resend_cooldown_seconds: int = 60
    otp_max_sends_per_hour: int = 5
    login_max_failures: int = 5
    login_failure_window_seconds: int = 900
    login_lockout_seconds: int = 900

    # HTTP
    cors_origins: Annotated[list[str], NoDecode] = []
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Body limit of every route that takes no files or frames (JSON auth, profile, admin).
    max_json_body_bytes: int = Field(16 * 1024, ge=1024)
    # Request heads (`kycflow serve`): one field, all of them with the request line, how many; over: 431.
    max_header_field_bytes: int = Field(16 * 1024, ge=1024)
    max_header_bytes: int = Field(64 * 1024, ge=4096)
    max_header_count: int = Field(100, ge=10)
    # On SIGTERM `kycflow serve` stops listening and lets the requests in flight finish this long, then cuts them.
    shutdown_grace_seconds: int = Field(30, ge=1)
    bcrypt_rounds: int = Field(12, ge=4, le=16)
    password_workers: int = Field(2, ge=1)

    # Documents at rest: AES-256-GCM keys as `[id:]key`, 32 bytes in base64 or hex (see resolve_document_keys).
    document_encryption_key: SecretStr | None = None
    document_encryption_old_keys: Annotated[list[SecretStr], NoDecode] = []
    document_fingerprint_key: SecretStr | None = None

    # Verification engine
    ml_workers: int | None = Field(None, ge=1, description="Threads for model work; default = CPU count")
    ml_timeout_seconds: float = Field(30.0, gt=0)
    ml_max_queue: int = Field(32, ge=0)
    ml_preload: bool = True
    ml_processes: bool = Field(True, description="Worker processes (dlib holds the GIL); false = threads")
    # Data-segment ceiling (RLIMIT_DATA) of each worker process, in MB; 0 = none. Idle with
    # every model loaded a worker holds ~0.4 GB; a 40-megapixel photo fails at 1536, passes at 2048.
    ml_worker_memory_mb: int = Field(2048, ge=0)
    ocr_backend: Literal["rapidocr", "paddleocr"] = "rapidocr"
    ocr_model_dir: Path | None = None
    face_backend: Literal["dlib", "insightface"] = "dlib"
    face_model_dir: Path | None = None
    # Cosine threshold; unset = the embedder's calibrated default (dlib 0.93, ArcFace 0.30).
    face_match_threshold: float | None = Field(None, ge=-1, le=1)
    # The face_duplicate search's; unset = the embedder's (app/ml/faces.DUPLICATE_THRESHOLDS).
    face_duplicate_threshold: float | None = Field(None, ge=-1, le=1)
    verify_approve_threshold: float = Field(0.75, ge=0, le=1)
    verify_reject_threshold: float = Field(0.45, ge=0, le=1)
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(40_000_000, gt=0)
    max_frame_bytes: int = Field(1024 * 1024, gt=0)
    max_frames: int = Field(60, ge=10)
    liveness_challenge_ttl_seconds: int = Field(120, gt=0)

    # Durable jobs (collection `jobs`)
    job_workers: int = Field(1, ge=0, description="In-process job workers; 0 = none (run `kycflow worker`)")
    job_poll_seconds: float = Field(1.0, gt=0)
    job_lease_seconds: float = Field(30.0, gt=0)
    job_timeout_seconds: float = Field(300.0, gt=0)
    job_max_attempts: int = Field(5, ge=1)
    job_backoff_base_seconds: float = Field(5.0, ge=0)
    job_backoff_cap_seconds: float = Field(900.0, ge=0)
    job_retention_days: int = Field(30, ge=1, le=3650, description=(
        "Done jobs are deleted this many days after they finished (a TTL index); failed ones stay for a retry"))

    # /metrics (Prometheus): on the API port only with METRICS_TOKEN as a bearer token (unset: 404 there);
    # METRICS_PORT gives each process (API and `kycflow worker`) a listener of its own, without the token.
    metrics_token: SecretStr | None = None
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    # KYC cases: what a submission needs, how checks weigh in the score, and the optional auto-decision.
    kyc_identity_documents: Annotated[list[str], NoDecode] = ["aadhaar", "passport", "driving_licence", "voter_id",
                                                               "national_id"]
    kyc_required_documents: Annotated[list[str], NoDecode] = ["pan"]
    kyc_require_selfie: bool = True
    kyc_check_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    kyc_auto_decision: bool = False
    # Four eyes: approving a High-risk case takes two different auditors; the first approval waits.
    kyc_four_eyes_high_risk: bool = False
    # An auditor's claim on a case (console or API) holds this long without a decision, then lapses.
    kyc_claim_minutes: int = Field(30, gt=0, le=24 * 60)
    # Times an auditor may send a case back for something to redo; then only approve or reject remain.
    kyc_max_resubmissions: int = Field(3, ge=0, le=20)
    # A FINAL rejection blocks a new case for this many days; unset: for good.
    kyc_final_rejection_days: int | None = Field(None, gt=0)
    # Verification levels, lowest first (JSON); `standard` must be one: a case is opened for it unless the
    # customer asks for another (POST /kyc/level), and cases and approvals from before levels were at it.
    kyc_levels: dict[str, KycLevelSpec] = Field(default_factory=lambda: {
        "basic": KycLevelSpec(identity_documents=[]), DEFAULT_LEVEL: KycLevelSpec(),
        "full": KycLevelSpec(liveness=True, checks=[CheckName.LIVENESS])})
    # Periodic re-KYC (RBI: at least every 2, 8 and 10 years): the years an approval holds by its case's risk level
    # (never past a document's expiry), and the days of notice before it runs out (a daily job, 00:00 UTC).
    kyc_validity_years: dict[RiskLevel, Annotated[int, Field(gt=0, le=50)]] = Field(
        default_factory=lambda: dict(DEFAULT_YEARS))
    kyc_renewal_notice_days: int = Field(30, gt=0, le=365)

    # Live events (GET /events) and webhooks (see app/services/webhooks.py for the retry schedule)
    events_poll_seconds: float = Field(0.5, gt=0)
    events_heartbeat_seconds: float = Field(15.0, gt=0)
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    webhook_delivery_workers: int = Field(4, ge=1, description="Deliveries at once per process running job workers")
    webhook_retry_schedule: list[float] = Field([5, 300, 1800, 7200, 18000, 36000, 36000], max_length=50)
    webhook_retry_jitter: float = Field(0.2, ge=0, lt=1)
    webhook_retry_after_cap_seconds: float = Field(86_400.0, ge=0)
    webhook_disable_after_days: float = Field(5.0, gt=0)
    webhook_endpoint_concurrency: int = Field(2, ge=1, description="Tries to one endpoint at once per process")
    webhook_secret_grace_seconds: float = Field(86_400.0, ge=0)
    events_retention_days: int = Field(30, ge=1)

    # The lender as borrowers see it (statements of account) and its grievance officer (grievances, the KFS).
    lender_name: str = Field("KYC Flow Finance", min_length=1, max_length=120)
    grievance_officer_name: str = Field("Grievance Officer", min_length=1, max_length=120)
    grievance_officer_email: str = Field("grievances@example.com", min_length=3, max_length=254)
    grievance_officer_phone: str = Field("+911800000000", min_length=3, max_length=32)
    # The Key Fact Statement (app/domain/kfs.py): working days its terms hold once issued (never below the RBI's
    # 3, or 1 for a tenor under 7 days), the holidays besides Sundays that are not working days (ISO dates, comma
    # separated), and the recovery arrangements it states.
    kfs_validity_working_days: int = Field(3, ge=1, le=30)
    bank_holidays: Annotated[list[date], NoDecode] = []
    recovery_agents_used: bool = False
    recovery_policy: str = Field(
        "We collect overdue amounts ourselves. Should we engage a recovery agent, we will first tell you the "
        "agent's name and contact; agents follow the RBI's code of conduct (calls only between 8 a.m. and 7 p.m., "
        "no intimidation or harassment).", min_length=1, max_length=1000)
    # Loan reminders (the daily review, app/services/delinquency.py): days before an instalment's due date, and after.
    loan_reminder_days_before: int = Field(3, ge=0, le=60)
    loan_reminder_days_after: Annotated[list[Annotated[int, Field(gt=0, le=3650)]], NoDecode] = [1, 7, 30]

    # Integrators: request limits shared by every instance, heavy-route caps, API keys, the gateway.
    rate_limits_enabled: bool = True
    # Per caller (API key, else signed-in user, else IP) and route group; groups left out keep their default.
    rate_limits: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LIMITS))
    # Requests one counter update may claim far from the limit (1 = a database write on every request).
    rate_limit_batch: int = Field(16, ge=1, le=1000)
    # Heavy requests (/kyc/verify, /ocr/extract, /liveness/*) one caller may have in flight per instance.
    max_in_flight_per_caller: int = Field(4, ge=1)
    # `last_used_at` of an API key is written at most this often per key (kept in memory meanwhile).
    api_key_usage_flush_seconds: float = Field(60.0, gt=0)
    gateway_services: dict[_ServiceName, _BaseUrl] = {}
    gateway_forward_auth: bool = False
    gateway_connect_timeout_seconds: float = Field(5.0, gt=0)
    gateway_read_timeout_seconds: float = Field(30.0, gt=0)
    gateway_max_body_bytes: int = Field(100 * 1024 * 1024, ge=1024)

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {g.value for g in RouteGroup}
        if unknown:
            raise ValueError(f"unknown route groups {sorted(unknown)}; known: {[g.value for g in RouteGroup]}")
        for spec in value.values():
            RateLimit.parse(spec)
        return {**DEFAULT_LIMITS, **value}

    def rate_limit_table(self) -> dict[RouteGroup, RateLimit]:
        return {RouteGroup(group): RateLimit.parse(spec) for group, spec in self.rate_limits.items()}

    @field_validator("cors_origins", "trusted_proxies", "kyc_identity_documents", "kyc_required_documents",
                     "document_encryption_old_keys", "loan_reminder_days_after", "bank_holidays",
                     mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def check_startup(self) -> None:
        """Fail fast, before any connection, on settings the service must not run with: one
        `StartupError` naming every problem and its setting (never a secret's value)."""
        problems = self.startup_problems()
        if problems:
            raise StartupError(problems)

    def startup_problems(self) -> list[str]:
        problems = self._token_problems()
        if self.is_production and not self.mongodb_uri:
            problems.append("MONGODB_URI must be set in production (the embedded server is for development)")
        return problems + self._document_key_problems()

    def _token_problems(self) -> list[str]:
        problems = []
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret is not None else ""
        if secret:
            if weak := _weak_jwt_secret(secret):
                problems.append(weak)
        elif self.is_production:
            problems.append("JWT_SECRET must be set in production")
        if self.jwt_algorithm == "RS256":
            for name, path in (("JWT_PRIVATE_KEY_FILE", self.jwt_private_key_file),
                               ("JWT_PUBLIC_KEY_FILE", self.jwt_public_key_file)):
                if path is None:
                    problems.append(f"{name} must be set when JWT_ALGORITHM is RS256")
                elif not (path.is_file() and os.access(path, os.R_OK)):
                    problems.append(f"{name}: {path} is not a readable file")
        return problems

    def _document_key_problems(self) -> list[str]:
        """Each document key setting on its own, then the ring as a whole (a key id used twice).
        Nothing is generated here: a development key is made when the service builds its cipher."""
        problems, ring_ids = [], []
        configured = [("DOCUMENT_ENCRYPTION_KEY", self.document_encryption_key, True),
                      ("DOCUMENT_FINGERPRINT_KEY", self.document_fingerprint_key, False)]
        configured += [(f"DOCUMENT_ENCRYPTION_OLD_KEYS (entry {i})", old, True)
                       for i, old in enumerate(self.document_encryption_old_keys, 1)]
        for name, value, in_ring in configured:
            if value is None or not value.get_secret_value().strip():
                if self.is_production:
                    problems.append(f"{name} must be set in production (documents are encrypted at rest)")
                continue
            try:
                key = parse_key(value.get_secret_value(), name)
            except KeyConfigError as exc:
                problems.append(str(exc))
                continue
            if in_ring:
                ring_ids.append(key.key_id)
        problems += [f"document key id {key_id!r} is configured twice (DOCUMENT_ENCRYPTION_KEY and "
                     "DOCUMENT_ENCRYPTION_OLD_KEYS)" for key_id in sorted({k for k in ring_ids if ring_ids.count(k) > 1})]
        return problems

    def resolve_jwt_secret(self) -> str:
        """The HS256 secret: configured, or generated once and kept in DATA_DIR so
        restarts don't log everyone out. Production refuses to run without one."""
        if self.jwt_secret is not None and self.jwt_secret.get_secret_value():
            secret = self.jwt_secret.get_secret_value()
            if weak := _weak_jwt_secret(secret):  # also where check_startup was skipped
                raise StartupError([weak])
            return secret
        if self.is_production:
            raise StartupError(["JWT_SECRET must be set in production"])
        return _read_or_create_secret(self.data_dir / "jwt_secret", lambda: secrets.token_urlsafe(48))

    def resolve_document_keys(self) -> tuple[str, list[str], str]:
        """(current key, old keys, fingerprint key) as configured. In development and tests the two
        keys are generated once into DATA_DIR (mode 0600); production refuses to run without them.

        The fingerprint key is its own secret, not derived from the encryption key: rotating
        DOCUMENT_ENCRYPTION_KEY (the old one moves to DOCUMENT_ENCRYPTION_OLD_KEYS) must leave every
        stored fingerprint valid, or a document already on another account would no longer be found."""
        current = self._document_secret(self.document_encryption_key, "DOCUMENT_ENCRYPTION_KEY", "document_key")
        fingerprint = self._document_secret(self.document_fingerprint_key, "DOCUMENT_FINGERPRINT_KEY",
                                            "document_fingerprint_key")
        return current, [key.get_secret_value() for key in self.document_encryption_old_keys], fingerprint

    def _document_secret(self, value: SecretStr | None, name: str, file_name: str) -> str:
        if value is not None and value.get_secret_value().strip():
            return value.get_secret_value()
        if self.is_production:
            raise RuntimeError(f"{name} must be set in production (documents are encrypted at rest)")
        return _read_or_create_secret(self.data_dir / file_name, generate_key_spec)

    @field_validator("kyc_levels")
    @classmethod
    def _levels(cls, value: dict[str, KycLevelSpec]) -> dict[str, KycLevelSpec]:
        if DEFAULT_LEVEL not in value:
            raise ValueError(f"the levels must include {DEFAULT_LEVEL!r}")
        return value

    def kyc_level_table(self) -> Levels:
        return Levels(tuple(SubmissionPolicy(
            tuple(self.kyc_identity_documents if spec.identity_documents is None else spec.identity_documents),
            tuple(self.kyc_required_documents if spec.required_documents is None else spec.required_documents),
            self.kyc_require_selfie if spec.selfie is None else spec.selfie, spec.liveness, tuple(spec.checks), name)
            for name, spec in self.kyc_levels.items()))

    @field_validator("kyc_validity_years")
    @classmethod
    def _years(cls, value: dict[RiskLevel, int]) -> dict[RiskLevel, int]:
        if set(value) != set(RiskLevel):
            raise ValueError("a period for each risk level: High, Medium and Low")
        return value

    @field_validator("kyc_check_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(DEFAULT_WEIGHTS)
        if unknown or any(w < 0 for w in value.values()) or not sum(value.values()):
            raise ValueError(f"weights of {sorted(map(str, DEFAULT_WEIGHTS))}, not negative, not all zero")
        return value


def _weak_jwt_secret(secret: str) -> str | None:
    size = len(secret.encode())
    if size >= MIN_JWT_SECRET_BYTES:
        return None
    return (f"JWT_SECRET is {size} bytes; it must be at least {MIN_JWT_SECRET_BYTES} (generate one with: "
            "python -c \"import secrets; print(secrets.token_urlsafe(48))\")")


def _read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, created first if absent: written to a private (0600) temporary file and
    linked into place, so a reader never sees a partial key and two starting processes agree on one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(make())
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process won the race: use its key
                pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()


def checked_settings() -> Settings:
    """`get_settings()`, checked as `check_startup` does; a `StartupError` lists every problem, both
    values that do not parse and what the service refuses (found with defaults in their place)."""
    try:
        settings = get_settings()
    except SettingsError as exc:  # a JSON setting that is not JSON: nothing else can be judged
        raise StartupError([str(exc)]) from None
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        invalid = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        try:
            problems += _ignoring(invalid)().startup_problems()
        except (ValidationError, SettingsError, StartupError):
            pass
        raise StartupError(problems) from None
    settings.check_startup()
    return settings


def _ignoring(names: set[str]) -> type[Settings]:
    """Settings read from every source but for `names`, which keep their defaults (init arguments
    would not do: pydantic-settings merges a dict given there with the one in the environment)."""

    class Without(PydanticBaseSettingsSource):
        def __init__(self, source: PydanticBaseSettingsSource) -> None:
            super().__init__(source.settings_cls)
            self.source = source

        def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
            return None, field_name, False  # unused: __call__ reads the wrapped source

        def __call__(self) -> dict[str, Any]:
            return {key: value for key, value in self.source().items() if key not in names}

    class Lenient(Settings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources = (init_settings, env_settings, dotenv_settings, file_secret_settings)
            return tuple(Without(source) for source in sources)

    return Lenient


def _describe(error: Any) -> str:
    """One pydantic error as the operator wrote it: the variable, what is wrong, and the value
    given, unless the setting is a secret."""
    name = str(error["loc"][0]) if error["loc"] else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    text = f"{name.upper()}: {message}" if name else message
    field = Settings.model_fields.get(name)
    if field is not None and "SecretStr" not in str(field.annotation):
        given = repr(error.get("input"))
        text += f" (got {given[:80] + '...' if len(given) > 80 else given})"
    return text
