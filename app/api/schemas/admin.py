"""Staff administration bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.common import Input, Money, PersonName, UtcDatetime
from app.api.schemas.kyc import KycCaseBrief
from app.api.schemas.loans import LoanSummary
from app.api.schemas.users import EmploymentDetails, FinancialDetails
from app.domain.audit import AuditEntry
from app.domain.users import User


class CreateStaffRequest(Input):
    model_config = ConfigDict(json_schema_extra={"example": {
        "email": "auditor@kycflow.example", "password": "a-long-staff-passphrase", "name": "Ravi Auditor",
        "role": "auditor"}})

    email: str = Field(max_length=254)
    password: str = Field(min_length=1, max_length=128)
    name: PersonName
    role: Literal["auditor", "admin"]


class StaffOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"id": "6741f0c2a1b2c3d4e5f60719", "email": "ravi@kycflow.example", "name": "Ravi Auditor",
                                          "role": "auditor", "status": "active", "created_at": "2026-11-22T10:00:00.000Z"}})

    id: str
    email: str | None
    name: str
    role: str
    status: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, user: User) -> StaffOut:
        return cls(id=user.id, email=user.email, name=user.name, role=user.role.value, status=user.status.value,
                   created_at=user.created_at)


class StatusUpdate(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"status": "suspended"}})

    status: Literal["active", "suspended"]


class UserSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"user_id": "6741f0c2a1b2c3d4e5f60718", "name": "Asha Rao", "email": "asha@example.com",
                                          "phone": "+919876543210", "role": "customer", "status": "active",
                                          "kyc_status": "SUBMITTED", "risk_level": "Low", "overall_score": 86}})

    user_id: str
    name: str
    email: str | None
    phone: str | None
    role: str
    status: str
    kyc_status: str
    risk_level: str | None
    overall_score: float | None

    @classmethod
    def of(cls, user: User) -> UserSummary:
        return cls(user_id=user.id, name=user.name, email=user.email, phone=user.phone, role=user.role.value,
                   status=user.status.value, kyc_status=user.kyc_status.value, risk_level=user.risk_level,
                   overall_score=user.kyc_score)


class UserDetail(UserSummary):
    created_at: UtcDatetime
    profile: dict[str, Any]
    profile_risk: dict[str, Any] | None
    financial_details: FinancialDetails | None
    employment_details: EmploymentDetails | None
    kyc_cases: list[KycCaseBrief] = Field(default_factory=list, description="Newest first")
    loans: list[LoanSummary] = Field(default_factory=list, description="Newest first")


class RoleOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"name": "auditor", "permissions": ["kyc:review", "audit:read", "users:read"]}})

    name: str
    permissions: list[str]


class AuditLogOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"user_id": "6741f0c2a1b2c3d4e5f60718", "actor_id": "6741f0c2a1b2c3d4e5f60718",
                                          "actor_role": "customer", "action": "login_success",
                                          "timestamp": "2026-11-22T10:00:00.000Z", "ip_address": "203.0.113.7",
                                          "details": {"method": "password"}}})

    user_id: str | None
    actor_id: str | None
    actor_role: str | None
    action: str
    timestamp: UtcDatetime
    ip_address: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditLogOut:
        return cls(user_id=entry.user_id, actor_id=entry.actor_id, actor_role=entry.actor_role, action=entry.action,
                   timestamp=entry.timestamp, ip_address=entry.ip_address, details=entry.details)


class UserCounts(BaseModel):
    total: int
    by_role: dict[str, int]


class KycCounts(BaseModel):
    total: int
    status_counts: dict[str, int] = Field(description="Cases by status: OPEN, SUBMITTED, APPROVED, REJECTED")
    risk_levels: dict[str, int] = Field(description="Checked cases by risk level")


class LoanCounts(BaseModel):
    total: int
    status_counts: dict[str, int]
    disbursed_amount: Money


class StatsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "users": {"total": 1250, "by_role": {"customer": 1238, "auditor": 9, "admin": 3}},
        "kyc": {"total": 1104, "status_counts": {"OPEN": 140, "SUBMITTED": 96, "APPROVED": 812, "REJECTED": 56},
                "risk_levels": {"Low": 610, "Medium": 280, "High": 74}},
        "loans": {"total": 402, "status_counts": {"APPLIED": 40, "APPROVED": 12, "DISBURSED": 300, "CLOSED": 50},
                  "disbursed_amount": 48250000.0}}})

    users: UserCounts
    kyc: KycCounts
    loans: LoanCounts
