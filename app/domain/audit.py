"""Audit trail entries (collection `user_log`) and the facts about a caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    REGISTER = "register"
    VERIFY = "verify"
    LOGIN_SUCCESS = "login_success"
    LOGIN_FAILURE = "login_failure"
    LOGIN_OTP_SENT = "login_otp_sent"
    LOCKOUT = "lockout"
    LOGOUT = "logout"
    REFRESH_REUSE = "refresh_reuse"
    PASSWORD_CHANGE = "password_change"
    PASSWORD_RESET = "password_reset"
    STAFF_CREATED = "staff_created"
    STATUS_CHANGE = "status_change"
    PROFILE_UPDATE = "profile_update"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    JOBS_VIEWED = "jobs_viewed"
    JOB_RETRIED = "job_retried"
    KYC_DOCUMENT_UPLOADED = "kyc_document_uploaded"
    KYC_SELFIE_UPLOADED = "kyc_selfie_uploaded"
    KYC_CORRECTED = "kyc_corrected"
    KYC_SUBMITTED = "kyc_submitted"
    KYC_CHECKS_COMPLETED = "kyc_checks_completed"
    KYC_VIEWED = "kyc_viewed"
    KYC_FILE_VIEWED = "kyc_file_viewed"
    KYC_CLAIMED = "kyc_claimed"
    KYC_RELEASED = "kyc_released"
    KYC_APPROVED = "kyc_approved"
    KYC_FIRST_APPROVAL = "kyc_first_approval"  # four eyes: the first of two approvals
    KYC_REJECTED = "kyc_rejected"
    KYC_RESUBMISSION_REQUESTED = "kyc_resubmission_requested"
    KYC_RESUBMITTED = "kyc_resubmitted"
    KYC_EXPIRED = "kyc_expired"  # periodic re-KYC: the approval ran out, a renewal round opened
    KYC_LEVEL_REQUESTED = "kyc_level_requested"  # a case for a level: the first, or a step-up
    BANK_CREATED = "bank_created"
    PRODUCT_CREATED = "product_created"
    PRODUCT_UPDATED = "product_updated"
    LOAN_APPLIED = "loan_applied"
    LOAN_OPENED = "loan_opened"
    LOAN_APPROVED = "loan_approved"
    LOAN_REJECTED = "loan_rejected"
    LOAN_KFS_ACCEPTED = "loan_kfs_accepted"
    LOAN_DISBURSED = "loan_disbursed"
    LOAN_REPAYMENT = "loan_repayment"
    LOAN_PRECLOSURE_REQUESTED = "loan_preclosure_requested"
    LOAN_CLOSED = "loan_closed"
    LOAN_PREPAID = "loan_prepaid"
    GRIEVANCE_OPENED = "grievance_opened"
    GRIEVANCE_RESPONDED = "grievance_responded"
    GRIEVANCE_CLOSED = "grievance_closed"
    WEBHOOK_CREATED = "webhook_created"
    WEBHOOK_DISABLED = "webhook_disabled"
    WEBHOOK_SECRET_ROTATED = "webhook_secret_rotated"
    WEBHOOK_REDELIVERED = "webhook_redelivered"
    WEBHOOK_ENABLED = "webhook_enabled"
    WEBHOOK_REPLAYED = "webhook_replayed"


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from; the API layer fills it, services only read it."""

    ip_address: str | None = None
    user_agent: str | None = None


@dataclass
class AuditEntry:
    action: str
    timestamp: datetime
    user_id: str | None = None
    actor_id: str | None = None
    actor_role: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
