"""Loan routes: products, eligibility and EMI, the customer's applications, loans, repayments and
pre-closure; the admin's loan book, transitions and statistics."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import JSONResponse

from app.api.deps import CatalogueServiceDep, ClientDep, IdempotencyServiceDep, LoanServiceDep, allow
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import IdFilter, Page, PageNo, PageSize, error_responses
from app.api.schemas.loans import (
    ApplyIn,
    CoolingOffExited,
    CoolingOffQuoteOut,
    DirectLoanIn,
    DisburseIn,
    EligibilityIn,
    EligibilityOut,
    EmiIn,
    EmiOut,
    KfsAccepted,
    KfsAcceptIn,
    KfsOut,
    LoanApplied,
    LoanDetail,
    LoanStatistics,
    LoanSummary,
    PreClosureConfirmed,
    PreClosureRequested,
    PrepaymentIn,
    PrepaymentQuoteOut,
    PrepaymentRecorded,
    ProductOut,
    QuoteOut,
    RejectLoanIn,
    RepaymentIn,
    RepaymentOut,
    RepaymentRecorded,
)
from app.domain import errors as e
from app.domain import kfs
from app.domain import loans as ln
from app.domain import prepayment as pp
from app.domain.catalogue import ProductNotFound
from app.domain.delinquency import LoanClass
from app.domain.kyc_levels import LevelRequired
from app.domain.loan_schedule import InvalidLoanTerms
from app.domain.money import InvalidAmount
from app.domain.pages import PageRequest
from app.services.auth import Principal
from app.services.loans import LoanService

router = APIRouter(tags=["Loans"], route_class=ExactJsonRoute)


def _kfs(loan: ln.Loan, loans: LoanService) -> KfsOut:
    return KfsOut.shown(loan, loans.kfs_issue(loan), loans.kfs)


def _detail(loan: ln.Loan, repayments: list[ln.Repayment], loans: LoanService) -> Response:
    return Response(LoanDetail.body(loan, repayments, loans.today(), kfs=_kfs(loan, loans)),
                    media_type="application/json")


Borrower = Annotated[Principal, allow("loans:apply")]
OwnReader = Annotated[Principal, allow("loans:read_own")]
BookReader = Annotated[Principal, allow("loans:read_any")]
Manager = Annotated[Principal, allow("loans:manage")]
Disburser = Annotated[Principal, allow("loans:disburse")]
TRANSITION_ERRORS = (401, 403, ln.LoanNotFound, ln.InvalidTransition)


@router.get("/loans/products", response_model=Page[ProductOut], summary="Browse loan products",
            responses=error_responses(422))
async def products(
    catalogue: CatalogueServiceDep, page: PageNo = 1, page_size: PageSize = 20, type: ln.LoanType | None = None,
    bank_id: IdFilter = None,
    amount: Annotated[Decimal | None, Query(gt=0, max_digits=14, decimal_places=2,
                                            description="Rupees the product must lend")] = None,
    tenure_months: Annotated[int | None, Query(ge=1, le=360)] = None,
) -> Page[ProductOut]:
    """Active products; an amount or a tenure keeps those whose limits include it."""
    found = await catalogue.browse(
        include_inactive=False, type=type, bank_id=bank_id.lower() if bank_id else None,
        amount=amount, tenure_months=tenure_months, page=PageRequest(page, page_size))
    names = await catalogue.bank_names(found.items)
    return Page.of(found, lambda p: ProductOut.of(p, bank_name=names.get(p.bank_id)))


@router.get("/loans/products/{product_id}", response_model=ProductOut, summary="One loan product",
            responses=error_responses(ProductNotFound))
async def product(product_id: str, catalogue: CatalogueServiceDep) -> ProductOut:
    """An active product with its terms and limits."""
    found = await catalogue.product(product_id)
    return ProductOut.of(found, bank_name=(await catalogue.bank_names([found])).get(found.bank_id))


@router.post("/eligibility/check", response_model=EligibilityOut, summary="Am I eligible?",
             responses=error_responses(401, 403, ProductNotFound, 422))
async def eligibility(body: EligibilityIn, principal: Borrower, loans: LoanServiceDep) -> EligibilityOut:
    """Every rule checked against my stored profile and details; all failures listed in `reasons`, KYC's as
    applying refuses them (`kyc_not_approved`, `re_kyc_due`, `kyc_level_required`)."""
    found, result = await loans.eligibility(principal.user, body.product_id, body.amount, body.tenure_months)
    return EligibilityOut.of(result, product_id=found.id)


@router.post("/eligibility/calculate-emi", response_model=EmiOut, summary="EMI calculator",
             responses=error_responses(InvalidLoanTerms, 422))
async def calculate_emi(body: EmiIn, loans: LoanServiceDep) -> EmiOut:
    """Monthly reducing-balance EMI, total interest and, on request, the schedule."""
    schedule = loans.emi_schedule(body.principal, body.annual_interest_rate, body.tenure_months)
    return EmiOut.of(schedule, schedule=schedule.instalments if body.include_schedule else None)


@router.post("/loans/apply", status_code=status.HTTP_201_CREATED, response_model=LoanApplied,
             summary="Apply for a loan",
             responses=error_responses(401, ln.KycNotApproved, (403, "re_kyc_due", "Your KYC verification has "
                                       "expired; renew it (GET /kyc/me lists what to upload) before you apply."),
                                       LevelRequired, e.InsufficientRole, ProductNotFound,
                                       ln.DuplicateApplication, e.IdempotencyInProgress, ln.NotEligible,
                                       e.IdempotencyKeyReused, 422))
async def apply(
    body: ApplyIn, principal: Borrower, loans: LoanServiceDep, idempotency: IdempotencyServiceDep, client: ClientDep,
    idempotency_key: Annotated[str | None, Header(max_length=128, description="Same key and body within 24 h: the "
                                                                            "first answer, never a second loan")] = None,
) -> JSONResponse:
    """201 `APPLIED` with the EMI and the Key Fact Statement; 403 without approved KYC (`re_kyc_due` once an
    approval ran out: periodic re-KYC), 422 with every `reasons` entry when not eligible, 409 when this product is
    already open for me."""
    user = principal.user

    async def work() -> tuple[int, dict[str, object]]:
        loan = await loans.apply(user, product_id=body.product_id.lower(), amount=body.amount,
                                   tenure_months=body.tenure_months, purpose=body.purpose, client=client)
        return 201, LoanApplied.of(loan, kfs=_kfs(loan, loans)).model_dump(mode="json")

    code, payload = await idempotency.run("loan_apply", user.id, idempotency_key, body.model_dump(mode="json"),
                                            work)
    return JSONResponse(payload, status_code=code)


@router.get("/loans/my-loans", response_model=Page[LoanSummary], summary="My loans",
            responses=error_responses(401, 403, 422))
async def my_loans(principal: OwnReader, loans: LoanServiceDep, page: PageNo = 1,
                   page_size: PageSize = 20) -> Page[LoanSummary]:
    """Newest first, with what is outstanding and next due."""
    return Page.of(await loans.my_loans(principal.user, PageRequest(page, page_size)), LoanSummary.of)


@router.get("/loans/my-loans/{loan_id}", response_model=LoanDetail, summary="One of my loans",
            responses=error_responses(401, 403, ln.LoanNotFound))
async def my_loan(loan_id: str, principal: OwnReader, loans: LoanServiceDep) -> Response:
    """Schedule, repayments, outstanding, next due and the KFS; anyone else's loan is 404."""
    return _detail(*await loans.my_loan(principal.user, loan_id), loans)


@router.post("/loans/my-loans/{loan_id}/repayments", status_code=status.HTTP_201_CREATED,
             response_model=RepaymentRecorded, summary="Record a repayment",
             responses=error_responses(401, 403, ln.LoanNotFound, ln.InvalidTransition, ln.LoanRepaid,
                                       ln.LoanChanged, ln.Overpayment, ln.PaidAhead, InvalidAmount, 422))
async def repay(loan_id: str, body: RepaymentIn, principal: Borrower, loans: LoanServiceDep,
                client: ClientDep) -> RepaymentRecorded:
    """Allocated to the oldest unpaid instalments, interest first; more than is outstanding is refused."""
    loan, record = await loans.repay(principal.user, loan_id, body.amount, client)
    return RepaymentRecorded(loan=LoanSummary.of(loan), repayment=RepaymentOut.of(record))


@router.get("/loans/my-loans/{loan_id}/pre-close", response_model=QuoteOut, summary="Pre-closure quote",
            responses=error_responses(401, 403, ln.LoanNotFound, ln.InvalidTransition))
async def preclosure_quote(loan_id: str, principal: OwnReader, loans: LoanServiceDep) -> QuoteOut:
    """What closes the loan today: outstanding principal, accrued interest and the prepayment charge."""
    return QuoteOut.of(await loans.preclosure_quote(principal.user, loan_id))


@router.post("/loans/my-loans/{loan_id}/pre-close", response_model=PreClosureRequested,
             summary="Request pre-closure", responses=error_responses(401, 403, ln.LoanNotFound,
                                                                      ln.InvalidTransition, ln.LoanChanged))
async def request_preclosure(loan_id: str, principal: Borrower, loans: LoanServiceDep,
                             client: ClientDep) -> PreClosureRequested:
    """The loan becomes `PRE_CLOSURE_REQUESTED`; an admin confirms it once the amount is paid."""
    loan, quote = await loans.request_preclosure(principal.user, loan_id, client)
    return PreClosureRequested(loan=LoanSummary.of(loan), quote=QuoteOut.of(quote))


@router.post("/loans/my-loans/{loan_id}/kfs/accept", response_model=KfsAccepted, summary="Accept the Key Fact Statement",
             responses=error_responses(401, 403, ln.LoanNotFound, ln.InvalidTransition, kfs.KfsExpired, kfs.KfsStale,
                                       ln.LoanChanged, 422))
async def accept_kfs(loan_id: str, body: KfsAcceptIn, principal: Borrower, loans: LoanServiceDep,
                     client: ClientDep) -> KfsAccepted:
    """Accepts the KFS shown (`kfs.number`) within its validity, recorded with the time and your address; a
    disbursal needs it. 409 `kfs_expired` / `kfs_stale` when the number is not the current issue."""
    loan = await loans.accept_kfs(principal.user, loan_id, body.kfs_number, client)
    return KfsAccepted(loan=LoanSummary.of(loan), kfs=_kfs(loan, loans))


PREPAYMENT_ERRORS = (401, 403, ln.LoanNotFound, ln.InvalidTransition, pp.InstalmentsOverdue, pp.PrepaymentOutOfRange,
                     InvalidAmount, 422)


@router.post("/loans/my-loans/{loan_id}/prepayments/quote", response_model=PrepaymentQuoteOut,
             summary="Part-prepayment quote", responses=error_responses(*PREPAYMENT_ERRORS))
async def prepayment_quote(loan_id: str, body: PrepaymentIn, principal: OwnReader,
                           loans: LoanServiceDep) -> PrepaymentQuoteOut:
    """What prepaying `amount` today costs and the schedule it leaves; nothing is changed."""
    return PrepaymentQuoteOut.of(await loans.prepayment_quote(principal.user, loan_id, body.amount, body.keep))


@router.post("/loans/my-loans/{loan_id}/prepayments", status_code=status.HTTP_201_CREATED,
             response_model=PrepaymentRecorded, summary="Prepay part of the principal",
             responses=error_responses(*PREPAYMENT_ERRORS, ln.LoanChanged, e.IdempotencyInProgress,
                                       e.IdempotencyKeyReused))
async def prepay(
    loan_id: str, body: PrepaymentIn, principal: Borrower, loans: LoanServiceDep, idempotency: IdempotencyServiceDep,
    client: ClientDep, idempotency_key: Annotated[str | None, Header(max_length=128, description=(
        "Same key and body within 24 h: the first answer, never a second prepayment"))] = None,
) -> JSONResponse:
    """Pays today's quote; the schedule is rebuilt and the earlier one kept in `schedule_versions`."""
    async def work() -> tuple[int, dict[str, object]]:
        loan, record, quote = await loans.prepay(principal.user, loan_id, body.amount, body.keep, client)
        return 201, PrepaymentRecorded(loan=LoanSummary.of(loan), repayment=RepaymentOut.of(record),
                                       quote=PrepaymentQuoteOut.of(quote)).model_dump(mode="json")

    code, payload = await idempotency.run("loan_prepayment", principal.user.id, idempotency_key,
                                          {**body.model_dump(mode="json"), "loan_id": loan_id}, work)
    return JSONResponse(payload, status_code=code)


COOLING_OFF_ERRORS = (401, 403, ln.LoanNotFound, ln.InvalidTransition, pp.CoolingOffEnded)


@router.get("/loans/my-loans/{loan_id}/cooling-off-exit", response_model=CoolingOffQuoteOut,
            summary="Cooling-off exit quote", responses=error_responses(*COOLING_OFF_ERRORS))
async def cooling_off_quote(loan_id: str, principal: OwnReader, loans: LoanServiceDep) -> CoolingOffQuoteOut:
    """Within the product's cooling-off period: the principal and the APR for the days used; 409 after it."""
    return CoolingOffQuoteOut.of(await loans.cooling_off_quote(principal.user, loan_id))


@router.post("/loans/my-loans/{loan_id}/cooling-off-exit", response_model=CoolingOffExited,
             summary="Leave the loan in the cooling-off period",
             responses=error_responses(*COOLING_OFF_ERRORS, ln.LoanChanged))
async def exit_cooling_off(loan_id: str, principal: Borrower, loans: LoanServiceDep,
                           client: ClientDep) -> CoolingOffExited:
    """Pays today's quote, no penalty: the loan is `CLOSED` with closure `cooling_off_exit`."""
    loan, record, quote = await loans.exit_cooling_off(principal.user, loan_id, client)
    return CoolingOffExited(loan=LoanSummary.of(loan), repayment=RepaymentOut.of(record),
                            quote=CoolingOffQuoteOut.of(quote))


# --- admin ------------------------------------------------------------------------------


@router.get("/admin/loans", response_model=Page[LoanSummary], summary="The loan book",
            responses=error_responses(401, 403, 422))
async def admin_loans(
    _: BookReader, loans: LoanServiceDep, page: PageNo = 1, page_size: PageSize = 20,
    status: Annotated[ln.LoanStatus | None, Query(alias="status")] = None, product_id: IdFilter = None,
    user_id: IdFilter = None, loan_class: Annotated[LoanClass | None, Query(description="RBI class")] = None,
) -> Page[LoanSummary]:
    """Auditors and admins; newest first; filter by status, product, customer or class (CURRENT, SMA_0...NPA:
    a class lists running loans, `DISBURSED` and `PRE_CLOSURE_REQUESTED`, unless a status is given)."""
    found = await loans.search(status=status.value if status else None,
                               product_id=product_id.lower() if product_id else None,
                               user_id=user_id.lower() if user_id else None, page=PageRequest(page, page_size),
                               loan_class=loan_class.value if loan_class else None)
    return Page.of(found, LoanSummary.of)


@router.get("/admin/loans/{loan_id}", response_model=LoanDetail, summary="One loan in full",
            responses=error_responses(401, 403, ln.LoanNotFound))
async def admin_loan(loan_id: str, _: BookReader, loans: LoanServiceDep) -> Response:
    """Any customer's loan with schedule, repayments and history."""
    return _detail(*await loans.loan(loan_id), loans)


@router.post("/admin/loans", status_code=status.HTTP_201_CREATED, response_model=LoanApplied,
             summary="Open a loan directly",
             responses=error_responses(401, 403, ln.KycNotApproved, e.UserNotFound, ProductNotFound,
                                       ln.DuplicateApplication, ln.NotEligible, 422))
async def open_loan(body: DirectLoanIn, admin: Manager, loans: LoanServiceDep, client: ClientDep) -> LoanApplied:
    """`APPROVED` at once, under the same rules as an application (KYC, eligibility, one per product)."""
    loan = await loans.open_direct(admin.user, user_id=body.user_id.lower(), product_id=body.product_id.lower(),
                                     amount=body.amount, tenure_months=body.tenure_months, purpose=body.purpose,
                                     client=client)
    return LoanApplied.of(loan, kfs=_kfs(loan, loans))


@router.post("/admin/loans/{loan_id}/approve", response_model=LoanSummary, summary="Approve an application",
             responses=error_responses(*TRANSITION_ERRORS))
async def approve(loan_id: str, admin: Manager, loans: LoanServiceDep, client: ClientDep) -> LoanSummary:
    """`APPLIED → APPROVED`; 409 from any other state."""
    return LoanSummary.of(await loans.approve(admin.user, loan_id, client))


@router.post("/admin/loans/{loan_id}/reject", response_model=LoanSummary, summary="Reject an application",
             responses=error_responses(*TRANSITION_ERRORS, 422))
async def reject(loan_id: str, body: RejectLoanIn, admin: Manager, loans: LoanServiceDep,
                 client: ClientDep) -> LoanSummary:
    """`APPLIED → REJECTED` with a reason the customer is told."""
    return LoanSummary.of(await loans.reject(admin.user, loan_id, body.reason, client))


@router.post("/admin/loans/{loan_id}/disburse", response_model=LoanDetail, summary="Disburse a loan",
             responses=error_responses(*TRANSITION_ERRORS, kfs.KfsNotAccepted, 422))
async def disburse(loan_id: str, admin: Disburser, loans: LoanServiceDep, client: ClientDep,
                   body: DisburseIn | None = None) -> Response:
    """`APPROVED → DISBURSED` once the borrower accepted the KFS (else 409 `kfs_not_accepted`): the net amount is
    paid out and due dates run from today."""
    loan = await loans.disburse(admin.user, loan_id, body.payout_reference if body else None, client)
    return _detail(loan, [], loans)


@router.post("/admin/loans/{loan_id}/pre-close/confirm", response_model=PreClosureConfirmed,
             summary="Confirm a pre-closure", responses=error_responses(*TRANSITION_ERRORS, ln.LoanChanged))
async def confirm_preclosure(loan_id: str, admin: Manager, loans: LoanServiceDep,
                             client: ClientDep) -> PreClosureConfirmed:
    """`PRE_CLOSURE_REQUESTED → CLOSED` with a final repayment of today's foreclosure amount."""
    loan, record = await loans.confirm_preclosure(admin.user, loan_id, client)
    return PreClosureConfirmed(loan=LoanSummary.of(loan), repayment=RepaymentOut.of(record))


@router.get("/admin/statistics", response_model=LoanStatistics, summary="Loan book statistics",
            responses=error_responses(401, 403))
async def statistics(_: BookReader, loans: LoanServiceDep) -> LoanStatistics:
    """Loans by status, disbursed and outstanding totals, by product, and a 30-day daily trend."""
    return LoanStatistics.model_validate(await loans.statistics())
