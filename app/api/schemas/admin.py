"""Staff administration bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.api.schemas.common import Input, Money, Out, PersonName, UtcDatetime
from app.api.schemas.kyc import KycCaseBrief
from app.api.schemas.loans import LoanSummary
from app.api.schemas.users import EmploymentDetails, FinancialDetails
from app.domain.delinquency import LoanClass
from app.domain.users import KycStatus, Role, UserStatus


class CreateStaffRequest(Input):
    model_config = ConfigDict(json_schema_extra={"example": {
        "email": "auditor@kycflow.example", "password": "a-long-staff-passphrase", "name": "Ravi Auditor",
        "role": "auditor"}})

    email: str = Field(max_length=254)
    password: str = Field(min_length=1, max_length=128)
    name: PersonName
    role: Literal["auditor", "admin"]


class StaffOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {"id": "6741f0c2a1b2c3d4e5f60719", "email": "ravi@kycflow.example", "name": "Ravi Auditor",
                                          "role": "auditor", "status": "active", "created_at": "2026-11-22T10:00:00.000Z"}})

    id: str
    email: str | None
    name: str
    role: Role
    status: UserStatus
    created_at: UtcDatetime


class StatusUpdate(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"status": "suspended"}})

    status: Literal["active", "suspended"]


class UserSummary(Out):
    model_config = ConfigDict(json_schema_extra={"example": {"user_id": "6741f0c2a1b2c3d4e5f60718", "name": "Asha Rao", "email": "asha@example.com",
                                          "phone": "+919876543210", "role": "customer", "status": "active",
                                          "kyc_status": "SUBMITTED", "risk_level": "Low", "overall_score": 86}})

    user_id: str = Field(validation_alias=AliasChoices("user_id", "id"))
    name: str
    email: str | None
    phone: str | None
    role: Role
    status: UserStatus
    kyc_status: KycStatus
    risk_level: str | None
    overall_score: float | None = Field(validation_alias=AliasChoices("overall_score", "kyc_score"))


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


class AuditLogOut(Out):
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


class UserCounts(BaseModel):
    total: int
    by_role: dict[str, int]


class KycCounts(BaseModel):
    total: int
    status_counts: dict[str, int] = Field(description="Cases by status: OPEN, SUBMITTED, APPROVED, REJECTED")
    risk_levels: dict[str, int] = Field(description="Checked cases by risk level")


class ClassFigures(BaseModel):
    count: int
    amount: Money = Field(description="Outstanding")
    overdue: Money
    charges_due: Money


class LoanCounts(BaseModel):
    total: int
    status_counts: dict[str, int]
    disbursed_amount: Money
    by_class: dict[LoanClass, ClassFigures] = Field(description="Running loans by RBI class (the daily review)")
    overdue_amount: Money = Field(description="Instalments past due and unpaid, over the book")


class StatsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "users": {"total": 1250, "by_role": {"customer": 1238, "auditor": 9, "admin": 3}},
        "kyc": {"total": 1104, "status_counts": {"OPEN": 140, "SUBMITTED": 96, "APPROVED": 812, "REJECTED": 56},
                "risk_levels": {"Low": 610, "Medium": 280, "High": 74}},
        "loans": {"total": 402, "status_counts": {"APPLIED": 40, "APPROVED": 12, "DISBURSED": 300, "CLOSED": 50},
                  "disbursed_amount": 48250000.0, "overdue_amount": 412000.0, "by_class": {
                      "CURRENT": {"count": 288, "amount": 40100000.0, "overdue": 0, "charges_due": 0},
                      "SMA_0": {"count": 9, "amount": 1210000.0, "overdue": 212000.0, "charges_due": 4500.0},
                      "SMA_1": {"count": 2, "amount": 300000.0, "overdue": 120000.0, "charges_due": 2000.0},
                      "SMA_2": {"count": 0, "amount": 0, "overdue": 0, "charges_due": 0},
                      "NPA": {"count": 1, "amount": 150000.0, "overdue": 80000.0, "charges_due": 3000.0}}}}})

    users: UserCounts
    kyc: KycCounts
    loans: LoanCounts
