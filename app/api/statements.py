"""A loan's statement of account, for its borrower and for staff, as PDF or CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.api.deps import ClockDep, PrincipalDep, StatementServiceDep
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import error_responses
from app.domain.errors import InsufficientRole
from app.domain.loans import InvalidTransition, LoanNotFound

router = APIRouter(tags=["Loans"], route_class=ExactJsonRoute)
MEDIA = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}


@router.get("/loans/my-loans/{loan_id}/statement", response_class=Response, summary="Statement of account",
            responses={200: {"description": "The statement, as the file `format` asks for", "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string"}, "example":
                             "on,entry,reference,description,amount,interest,principal,charges,paid,due,outstanding_after\r\n"
                             "2026-12-06,disbursement,UTR20261206000123,Disbursed,100000.00,,,,,,\r\n"}}},
                       **error_responses(401, InsufficientRole, LoanNotFound, InvalidTransition, 422)})
async def statement(loan_id: str, principal: PrincipalDep, statements: StatementServiceDep, clock: ClockDep,
                    format: Annotated[Literal["pdf", "csv"], Query(description="`pdf` (laid out to read) or `csv` "
                                                                   "(one header row, then dated entries)")] = "pdf",
                    ) -> Response:
    """Terms, the schedule with paid and due amounts, every payment and charge, and what is outstanding: the
    loan view's figures. The borrower's own loan (anyone else's is 404) or, for staff, any disbursed loan."""
    body = await statements.statement(principal.user, loan_id.lower(), format)
    name = f"statement-{loan_id.lower()}-{clock.now().date().isoformat()}.{format}"
    return Response(body, media_type=MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
