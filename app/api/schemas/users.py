"""User, profile and details bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.api.schemas.common import BirthDate, Input, Money, Out, PersonName, PlainText, UtcDatetime
from app.domain.users import KycStatus, Role, UserStatus


class Address(Input):
    line1: PlainText = Field(min_length=1, max_length=200, examples=["12 MG Road"])
    city: PlainText = Field(min_length=1, max_length=80, examples=["Bengaluru"])
    state: PlainText = Field(min_length=1, max_length=80, examples=["Karnataka"])
    pincode: str = Field(max_length=6, pattern=r"^[1-9][0-9]{5}$", examples=["560001"], description="6-digit Indian PIN code")


class ProfileUpdate(Input):
    """Only these fields can change here; role, status and kyc_status never can. Send a field as
    null to clear it."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "dob": "1990-04-12", "gender": "female", "marital_status": "married", "family_size": 4,
        "working_members": 2, "children": 2,
        "current_address": {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"},
        "permanent_address": {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"},
    }})

    name: PersonName | None = None
    dob: BirthDate | None = Field(None, description="Not in the future, at most 120 years ago")
    gender: Literal["male", "female", "other"] | None = None
    marital_status: Literal["single", "married", "divorced", "widowed"] | None = None
    family_size: int | None = Field(None, ge=1, le=50)
    working_members: int | None = Field(None, ge=0, le=50)
    children: int | None = Field(None, ge=0, le=30)
    current_address: Address | None = None
    permanent_address: Address | None = None
    business_location: PlainText | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _name_not_null(self) -> ProfileUpdate:
        # null clears a profile field, but an account always has a name
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class ProfileRisk(BaseModel):
    status: Literal["PENDING", "DONE"]
    score: int | None = None
    level: str | None = None
    factors: dict[str, int] | None = None


class UserOut(Out):
    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "6741f0c2a1b2c3d4e5f60718", "email": "asha@example.com", "phone": "+919876543210", "name": "Asha Rao",
        "role": "customer", "status": "active", "kyc_status": "PENDING", "kyc_level": None, "created_at": "2026-11-22T10:00:00.000Z",
        "profile": {"dob": "1990-04-12", "gender": "female", "family_size": 4},
        "profile_risk": {"status": "DONE", "score": 42, "level": "Medium",
                         "factors": {"age": 0, "dependants": 24, "no_earner": 0, "children": 8, "address_mismatch": 10}}}})

    id: str
    email: str | None
    phone: str | None
    name: str
    role: Role
    status: UserStatus
    kyc_status: KycStatus
    kyc_level: str | None = Field(None, description="The verification level (KYC_LEVELS) KYC approved; null unless "
                                                    "APPROVED. A loan product may need a higher one: POST /kyc/level",
                                  examples=["standard"])
    kyc_valid_until: UtcDatetime | None = Field(None, description="When the last KYC approval runs out: the "
                                                "customer is mailed KYC_RENEWAL_NOTICE_DAYS ahead, then RE_KYC_DUE")
    created_at: UtcDatetime
    profile: dict[str, Any]
    profile_risk: ProfileRisk | None = None


class KycStatusOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"kyc_status": "SUBMITTED", "risk_level": None, "updated_at": "2026-11-22T10:05:00.000Z"}})

    kyc_status: KycStatus
    risk_level: str | None = Field(description="Always null: a case's risk level is shown to auditors only "
                                               "(`GET /kyc/{kyc_id}`), never to the customer")
    updated_at: UtcDatetime = Field(description="When the KYC status last changed (not other edits to the account)")


class FinancialDetails(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"monthly_income": 85000.5, "monthly_expenses": 30000, "existing_emi": 12500.25, "credit_score": 760}})

    monthly_income: Money
    monthly_expenses: Money
    existing_emi: Money
    credit_score: int | None = Field(None, ge=300, le=900, description="CIBIL-style score")


class EmploymentDetails(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"employment_type": "salaried", "employer_name": "Infosys", "designation": "Engineer",
                                          "years_in_current_job": 3, "total_experience_years": 7.5}})

    employment_type: Literal["salaried", "self_employed", "business"]
    employer_name: PlainText = Field(min_length=1, max_length=200)
    designation: PlainText = Field(min_length=1, max_length=120)
    years_in_current_job: float = Field(ge=0, le=60)
    total_experience_years: float = Field(ge=0, le=60, description="At least `years_in_current_job`")

    @field_validator("total_experience_years")
    @classmethod
    def _covers_current_job(cls, value: float, info: ValidationInfo) -> float:
        current = info.data.get("years_in_current_job")
        if current is not None and current > value:
            raise ValueError("must be at least years_in_current_job")
        return value
