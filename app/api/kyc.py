"""KYC case routes: the customer's documents, selfie and submission; the auditor's queue,
case view, files and decisions."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile, status
from fastapi.responses import JSONResponse

from app.api.deps import ClientDep, IdempotencyServiceDep, KycCaseServiceDep, KycReviewServiceDep, SettingsDep, allow
from app.api.middleware import body_limit
from app.api.model_routes import RUNS_MODELS
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import Page, PageNo, PageSize, error_responses
from app.api.schemas.kyc import (
    ApproveIn,
    CaseDetail,
    ClaimOut,
    CorrectionsIn,
    CustomerCase,
    DecisionMessage,
    DocumentTypeIn,
    DocumentUploaded,
    FileLink,
    LevelIn,
    OneStepUpload,
    OneStepUploaded,
    PendingCase,
    RejectIn,
    ResubmissionIn,
    SelfieUploaded,
    Submitted,
)
from app.api.verification import read_upload
from app.domain import errors as e
from app.domain import kyc as k
from app.domain import kyc_levels
from app.domain.pages import PageRequest
from app.services.auth import Principal
from app.services.kyc.review import DecisionInput

router = APIRouter(prefix="/kyc", tags=["KYC"], route_class=ExactJsonRoute)
Customer = Annotated[Principal, allow("kyc:submit")]
Reader = Annotated[Principal, allow("kyc:read_own")]
Reviewer = Annotated[Principal, allow("kyc:review")]
CaseViewer = Annotated[Principal, allow("kyc:read_any")]

UPLOAD_ERRORS = (e.InvalidImage, (400, "invalid_document_number", "The Aadhaar number fails its checksum."),
                 (409, "kyc_in_review", "Your KYC case is being reviewed; wait for the decision."), k.AlreadyApproved,
                 (413, "file_too_large", "The file is larger than 10 MB."), 401, 403, 422,
                 (429, "too_many_concurrent", "At most 4 of your requests that run a model may run at once."),
                 (503, "ml_busy", "The verification engine is busy; retry shortly."))


@router.post("/documents", status_code=status.HTTP_201_CREATED, response_model=DocumentUploaded,
             summary="Upload a KYC document", responses=error_responses(*UPLOAD_ERRORS), dependencies=[RUNS_MODELS])
async def upload_document(
    principal: Customer, kyc: KycCaseServiceDep, settings: SettingsDep, client: ClientDep,
    document_type: Annotated[DocumentTypeIn, Form(description="What the document is")],
    file: Annotated[UploadFile, File(description="JPG, PNG or PDF (first page), at most 10 MB")],
    # Optional fields carry an empty example: Swagger UI would otherwise pre-fill `side=front` and a
    # number generated from the pattern, which an untouched form then sends as if the customer typed them.
    side: Annotated[Literal["front", "back"] | None, Form(description="Card side; read from the card if omitted",
                                                          examples=[""])] = None,
    document_number: Annotated[str | None, Form(max_length=32, pattern=r"^[A-Za-z0-9 \-]+$", examples=[""],
                                                description="The number as the customer typed it (optional; "
                                                            "leave empty to use what is read)")] = None,
) -> DocumentUploaded:
    """Adds the document to the open case (one is started on the first upload) and answers at
    once with what OCR read (numbers masked) and its validation. A document of the same type and
    side replaces the earlier one."""
    data = await read_upload(file, settings.max_upload_bytes)
    case, document = await kyc.upload_document(principal.user, document_type=document_type, side=side, data=data,
                                               declared_number=document_number, client=client)
    return DocumentUploaded.of(document, kyc_id=case.id)


@router.put("/documents/{document_id}/corrections", response_model=CustomerCase,
            summary="Confirm or correct what was read",
            responses=error_responses(k.CaseNotFound, k.CaseNotEditable, 401, 403, 422,
                                      (400, "invalid_correction", "date_of_birth must be a real date as YYYY-MM-DD.")))
async def correct_document(document_id: str, body: CorrectionsIn, principal: Customer, kyc: KycCaseServiceDep,
                  client: ClientDep) -> CustomerCase:
    """A corrected value is stored beside the OCR value; any difference becomes a `review` check."""
    case = await kyc.correct(principal.user, document_id, body.corrections(), client)
    return CustomerCase.view(case, kyc.missing(case))


@router.post("/selfie", status_code=status.HTTP_201_CREATED, response_model=SelfieUploaded,
             summary="Upload the selfie", dependencies=[RUNS_MODELS],
             responses=error_responses(e.NoFaceDetected, *UPLOAD_ERRORS,
                                       (400, "liveness_not_passed", "That liveness challenge was not passed by you, or a selfie used it already.")))
async def upload_selfie(
    principal: Customer, kyc: KycCaseServiceDep, settings: SettingsDep, client: ClientDep,
    file: Annotated[UploadFile, File(description="JPG or PNG, one face, facing the camera")],
    liveness_challenge_id: Annotated[str | None, Form(max_length=64, examples=[""],
                                                      description="A challenge you passed at /liveness/verify")]
    = None,
) -> SelfieUploaded:
    """Checks the face and the photo's quality; a selfie without a face is refused."""
    data = await read_upload(file, settings.max_upload_bytes)
    case, selfie = await kyc.upload_selfie(principal.user, data, liveness_challenge_id, client)
    return SelfieUploaded.of(selfie, kyc_id=case.id)


@router.post("/submit", status_code=status.HTTP_202_ACCEPTED, response_model=Submitted, summary="Submit the case",
             responses=error_responses((422, "kyc_incomplete", "The case is incomplete: pan; selfie."),
                                       (409, "kyc_already_submitted", "The case was already submitted."),
                                       k.AlreadyApproved, 401, 403))
async def submit_case(principal: Customer, kyc: KycCaseServiceDep, client: ClientDep) -> Submitted:
    """The checks then run in the background and survive a restart; `GET /kyc/me` shows them. A case sent
    back (`RESUBMISSION_REQUESTED`) is submitted again the same way once what was asked is uploaded: the
    same case, a new round; checks whose inputs did not change keep their results."""
    case = await kyc.submit(principal.user, client)
    return Submitted.of(case)


@router.post("/level", status_code=status.HTTP_201_CREATED, response_model=CustomerCase,
             summary="Choose the verification level (step up)",
             responses=error_responses(kyc_levels.UnknownLevel, kyc_levels.LevelReached, 401, 403, (
                 409, "kyc_in_review", "Your KYC case is being reviewed; wait for the decision."), (
                 409, "kyc_rejected_final", "Your KYC was rejected finally; you cannot apply again.")))
async def choose_level(body: LevelIn, principal: Customer, kyc: KycCaseServiceDep, client: ClientDep) -> CustomerCase:
    """Cases are for the `standard` level (KYC_LEVELS) unless this asks another: the open case (or a new one)
    is for `level`, and `missing` lists what it needs. An approved customer below `level` gets a step-up case
    that keeps the approved case's documents, selfie and the results of checks whose inputs stay the same:
    only what the level adds is asked (upload it, then `POST /kyc/submit`); meanwhile, and if the step-up is
    rejected, they stay approved at their level. A level already reached is 409 `kyc_level_reached`."""
    case = await kyc.choose_level(principal.user, body.level, client)
    return CustomerCase.view(case, kyc.missing(case))


@router.post("/upload", status_code=status.HTTP_201_CREATED, response_model=OneStepUploaded,
             summary="Upload a document in one JSON step (smartBank form)", dependencies=[RUNS_MODELS],
             responses=error_responses(*UPLOAD_ERRORS, (422, "idempotency_key_reused",
                                                        "This Idempotency-Key was already used with a different "
                                                        "request body.")))
@body_limit("uploads")  # the file travels as base64 in the JSON body
async def upload_one_step(
    body: OneStepUpload, principal: Customer, kyc: KycCaseServiceDep, idempotency: IdempotencyServiceDep,
    client: ClientDep,
    idempotency_key: Annotated[str | None, Header(max_length=128, description="Same key and body within 24 h: "
                                                                            "the first answer, never a second "
                                                                            "document")] = None,
) -> JSONResponse:
    """Adds the document (with the number the customer typed, checked against what OCR reads) to
    the open case. When the case then meets the submission policy (an identity document, a PAN and
    a selfie by default) it is submitted in the same call: `status: SUBMITTED`. Otherwise the answer
    is 201 with `status: OPEN` and `missing` listing what is still needed (upload the rest with
    `POST /kyc/documents` / `POST /kyc/selfie`, then `POST /kyc/submit`, or send this again)."""
    data = await asyncio.to_thread(_base64, body.document_data)  # up to ~13 MB of text: off the loop
    user = principal.user

    async def work() -> tuple[int, dict[str, object]]:
        case, missing = await kyc.upload_and_submit(user, document_type=body.document_type, side=body.side,
                                                      data=data, declared_number=body.document_number, client=client)
        message = ("Document added; the case needs more before it can be submitted." if missing
                   else "Document added and KYC submitted.")
        out = OneStepUploaded(message=message, kyc_id=case.id, status="OPEN" if missing else "SUBMITTED",
                              missing=missing)
        return 201, out.model_dump(mode="json")

    code, payload = await idempotency.run("kyc_upload", user.id, idempotency_key, body.model_dump(), work)
    return JSONResponse(payload, status_code=code)


def _base64(value: str) -> bytes:
    text = value.strip()
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise e.InvalidImage("document_data is not valid base64.") from None


@router.get("/me", response_model=CustomerCase, summary="My current KYC case",
            responses=error_responses(k.CaseNotFound, 401, 403))
async def my_case(principal: Reader, kyc: KycCaseServiceDep) -> CustomerCase:
    """The status, what is still missing, each check as pass or needs attention with what to do, and
    the decision's reasons and message. Scores and the risk level are for auditors only."""
    case = await kyc.current(principal.user)
    return CustomerCase.view(case, kyc.missing(case))


@router.get("/pending", response_model=Page[PendingCase], summary="The review queue",
            responses=error_responses(401, 403, 422))
async def review_queue(
    _: CaseViewer, review: KycReviewServiceDep, page: PageNo = 1, page_size: PageSize = 20,
    risk_level: Annotated[k.RiskLevel | None, Query()] = None,
    document_type: Annotated[DocumentTypeIn | None, Query()] = None,
    sort: Annotated[Literal["oldest", "risk"], Query(description="oldest first (default), or High risk first")]
    = "oldest",
) -> Page[PendingCase]:
    """Submitted cases waiting for a decision."""
    cases = await review.pending(risk_level=risk_level, document_type=document_type, by_risk=sort == "risk",
                                 page=PageRequest(page, page_size))
    return Page.of(cases, PendingCase.view)


@router.get("/{kyc_id}", response_model=CaseDetail, summary="One case in full (auditor)",
            responses=error_responses(k.CaseNotFound, 401, 403))
async def get_case(kyc_id: str, principal: CaseViewer, review: KycReviewServiceDep, kyc: KycCaseServiceDep,
                   client: ClientDep) -> CaseDetail:
    """Every check, the extracted fields (numbers masked), corrections, the risk breakdown and links
    to the files. The view is audit-logged."""
    case = await review.get_case(kyc_id, principal.user, client)
    earlier = [d for r in case.rounds for d in r.documents if d.file_id not in {c.file_id for c in case.documents}]
    files = [FileLink(file_id=d.file_id, kind="document", document_id=d.id, content_type=d.content_type,
                      url=f"/api/v1/kyc/{case.id}/files/{d.file_id}") for d in case.documents + earlier]
    if case.selfie:
        files.append(FileLink(file_id=case.selfie.file_id, kind="selfie", document_id=None,
                              content_type=case.selfie.content_type,
                              url=f"/api/v1/kyc/{case.id}/files/{case.selfie.file_id}"))
    return CaseDetail.view(case, kyc.missing(case), files)


# A stored file is the customer's, not the service's: whatever it holds, a browser that opens it runs
# nothing (no script, no plugin, no form, no request) and treats it as an opaque origin.
FILE_CSP = "sandbox; default-src 'none'"
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}


@router.get("/{kyc_id}/files/{file_id}", summary="A stored document image (auditor)",
            response_class=Response, dependencies=[RUNS_MODELS],
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "application/pdf": {}},
                             "description": "The image, shown inline (a PDF as its first page, PNG); with "
                                            "`original=true` the file as uploaded, as an attachment"},
                       **error_responses((404, "file_not_found", "No such file in this case."), 401, 403)})
async def get_case_file(
    kyc_id: str, file_id: str, principal: CaseViewer, review: KycReviewServiceDep, client: ClientDep,
    original: Annotated[bool, Query(description="The bytes as uploaded (a PDF included), to download")] = False,
) -> Response:
    """Decrypted, under a sandboxing CSP; a PDF is shown as its rendered first page. Every view is audit-logged."""
    data, content_type = await review.file(kyc_id, file_id, principal.user, client, original=original)
    disposition = f'attachment; filename="{file_id.lower()}.{_EXTENSIONS.get(content_type, "bin")}"' if original \
        else "inline"
    return Response(data, media_type=content_type, headers={
        "Content-Disposition": disposition, "Content-Security-Policy": FILE_CSP, "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@router.post("/{kyc_id}/claim", response_model=ClaimOut, summary="Claim a case to work on it",
             responses=error_responses(k.CaseNotFound, (409, "kyc_claimed", "Ravi Auditor is working on this case "
                                                            "(claimed until 10:30 UTC); only they can decide it until then."),
                                       401, 403))
async def claim_case(kyc_id: str, principal: Reviewer, review: KycReviewServiceDep, client: ClientDep) -> ClaimOut:
    """Until the claim lapses (KYC_CLAIM_MINUTES; claiming again renews it) or is released, no other
    auditor can claim or decide the case. The console's claim button does the same."""
    return ClaimOut.of(await review.claim(kyc_id, principal.user, client))


@router.delete("/{kyc_id}/claim", response_model=ClaimOut, summary="Release one's claim on a case",
               responses=error_responses(k.CaseNotFound, (409, "kyc_not_claimed", "You do not hold this case."),
                                         401, 403))
async def release_case(kyc_id: str, principal: Reviewer, review: KycReviewServiceDep, client: ClientDep) -> ClaimOut:
    """Gives back one's own claim at once (another auditor's claim is left to lapse)."""
    return ClaimOut.of(await review.release(kyc_id, principal.user, client))


@router.put("/{kyc_id}/approve", response_model=DecisionMessage, summary="Approve a case",
            responses=error_responses(k.CaseNotFound, k.CaseNotReviewable, k.SecondApproverRequired, 401, 403, 422, (
                409, "kyc_base_under_review", "The approval this step-up builds on is under review or was rejected.")))
async def approve_case(kyc_id: str, body: ApproveIn, principal: Reviewer, review: KycReviewServiceDep,
                  client: ClientDep) -> DecisionMessage:
    """Only a SUBMITTED case whose checks finished, never one's own. The customer is mailed the decision
    and `customer_message`; `internal_note` stays in the case file. With KYC_FOUR_EYES_HIGH_RISK a High-risk
    case's first approval is recorded and it stays `SUBMITTED` until another auditor approves it."""
    case = await review.decide(kyc_id, principal.user, DecisionInput(
        approved=True, internal_note=body.internal_note, customer_message=body.customer_message), client)
    if case.status == k.CaseStatus.SUBMITTED:
        return DecisionMessage(message="First approval recorded; a second auditor's approval decides this case",
                               status=case.status.value)
    return DecisionMessage(message="KYC approved successfully", status=case.status.value)


@router.put("/{kyc_id}/reject", response_model=DecisionMessage, summary="Reject a case",
            responses=error_responses(k.CaseNotFound, k.CaseNotReviewable, 401, 403, 422))
async def reject_case(kyc_id: str, body: RejectIn, principal: Reviewer, review: KycReviewServiceDep,
                 client: ClientDep) -> DecisionMessage:
    """With one or more reason codes; the customer is mailed each reason's sentence and `customer_message`,
    never `internal_note`."""
    case = await review.decide(kyc_id, principal.user, DecisionInput(
        approved=False, reasons=[str(r) for r in body.reasons or []], internal_note=body.internal_note,
        customer_message=body.customer_message, final=body.reject_type == "FINAL"), client)
    return DecisionMessage(message="KYC rejected successfully", status=case.status.value)


@router.put("/{kyc_id}/request-resubmission", response_model=DecisionMessage, summary="Ask the customer to redo part",
            responses=error_responses(k.CaseNotFound, k.CaseNotReviewable, 401, 403, 422, (
                409, "resubmission_limit_reached", "This case was sent back 3 times, the most allowed; approve or "
                                                   "reject it.")))
async def request_resubmission(kyc_id: str, body: ResubmissionIn, principal: Reviewer, review: KycReviewServiceDep,
                               client: ClientDep) -> DecisionMessage:
    """Sends a SUBMITTED case whose checks finished back to its customer (`RESUBMISSION_REQUESTED`) to
    upload again only the named documents, the selfie or the liveness step, at most KYC_MAX_RESUBMISSIONS
    times. The customer is mailed the items and `customer_message` (never `internal_note`), sees them in
    `GET /kyc/me` (`resubmission`, `missing`) and submits again into the same case; `GET /kyc/{kyc_id}`
    keeps every round. A document the case does not have is 422 `resubmission_item_unknown`."""
    case = await review.request_resubmission(kyc_id, principal.user, body.redo(), body.customer_message,
                                             body.internal_note or None, client)
    return DecisionMessage(message="Resubmission requested", status=case.status.value)
