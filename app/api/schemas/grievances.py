"""Grievance bodies: what a borrower raises, staff replies, and the grievance on its 30-day clock."""

from __future__ import annotations

from datetime import datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.api.schemas.common import Input, Out, PlainText, UtcDatetime
from app.domain.grievances import OMBUDSMAN, Grievance, GrievanceCategory, GrievanceStatus
from app.services.grievances import GrievanceOfficer


class GrievanceIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {
        "category": "charges", "text": "A late fee was charged although I paid on the due date."}})

    category: GrievanceCategory
    text: PlainText = Field(min_length=10, max_length=4000)


class ReplyIn(Input):
    model_config = ConfigDict(json_schema_extra={"example": {
        "message": "The fee was reversed on 12 Dec; it shows in your statement."}})

    message: PlainText = Field(min_length=3, max_length=4000, description="Sent to the borrower as it is")


class ReplyOut(Out):
    message: str
    at: UtcDatetime
    closing: bool


class OfficerOut(Out):
    name: str
    email: str
    phone: str


class Escalation(BaseModel):
    """Where an unresolved grievance may go once its 30 days have passed."""

    name: str = OMBUDSMAN[0]
    url: str = OMBUDSMAN[1]
    note: str = ("Not resolved within 30 days: you may complain to the RBI Ombudsman through the RBI's Complaint "
                 "Management System.")


class GrievanceOut(Out):
    grievance_id: str = Field(validation_alias=AliasChoices("grievance_id", "id"))
    loan_id: str
    user_id: str
    category: GrievanceCategory
    text: str
    status: GrievanceStatus
    opened_at: UtcDatetime
    due_at: UtcDatetime = Field(description="30 days after opening: the RBI's limit to resolve it")
    days_open: int
    replies: list[ReplyOut]
    closed_at: UtcDatetime | None
    escalation_available: bool = Field(description="Unresolved past `due_at`: `escalation` says where to go")
    escalation: Escalation | None
    grievance_officer: OfficerOut

    @classmethod
    def at(cls, grievance: Grievance, now: datetime, officer: GrievanceOfficer) -> GrievanceOut:
        late = grievance.escalation_available(now)
        return cls.of(grievance, days_open=grievance.days_open(now), escalation_available=late,
                      escalation=Escalation() if late else None, grievance_officer=OfficerOut.of(officer))
