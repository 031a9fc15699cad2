"""Submitted KYC cases for the console tests, built through the repositories (no models): real
encrypted image files in GridFS, documents with fields as OCR would read them, and a finished set
of checks (High risk: the face match failed, the name needs review). Used in-process by the
integration tests and, run as `python -m tests.console_cases DATA_DIR`, against a real server."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import uuid
from typing import Any

from PIL import Image, ImageDraw

from app.bootstrap import Container
from app.domain.kyc import CaseDocument, Check, CheckStatus, Selfie, assess
from app.domain.users import KycStatus, Role
from tests.conftest import PASSWORD


def picture(label: str, colour: tuple[int, int, int], size: tuple[int, int] = (640, 400)) -> bytes:
    """A JPEG a person can tell apart on a screenshot: a coloured card with its label."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, size[0] - 20, size[1] - 20), outline=(255, 255, 255), width=6)
    draw.ellipse((40, 60, 200, 260), fill=(230, 200, 170))  # a "photo"
    draw.text((230, 80), label, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


async def customer(c: Container, *, name: str = "Asha Rao", email: str | None = None,
                   dob: str = "1990-04-12") -> Any:
    email = email or f"cust{uuid.uuid4().hex[:10]}@example.com"
    user = await c.admin.create_user(email=email, password=PASSWORD, name=name, role=Role.CUSTOMER)
    updated = await c.users_repo.save_profile(user.id, profile={"dob": dob}, name=None, now=c.clock.now())
    assert updated is not None
    return updated


async def submitted_case(c: Container, *, name: str = "Asha Rao", read_name: str = "ASHA R RAO",
                         email: str | None = None) -> dict[str, Any]:
    """A SUBMITTED case whose checks are DONE: Aadhaar (front), PAN and a selfie."""
    user = await customer(c, name=name, email=email)
    now = c.clock.now()
    case = await c.kyc.cases.open_case(user.id, now)
    docs = []
    for kind, side, colour, fields in (
        ("aadhaar", "front", (40, 90, 160), {"full_name": read_name, "date_of_birth": "1990-04-12", "gender": "F"}),
        ("pan", None, (150, 90, 30), {"full_name": read_name, "father_name": "R K RAO"}),
    ):
        file_id = await c.files.put(picture(f"{kind} {side or ''}", colour), owner_id=user.id, case_id=case.id,
                                    content_type="image/jpeg")
        doc = CaseDocument(id=uuid.uuid4().hex, type=kind, side=side, file_id=file_id, content_type="image/jpeg",
                           uploaded_at=now, fields=fields, confidence=0.91, validation={"number_valid": True},
                           number_masked="XXXX-XXXX-1234" if kind == "aadhaar" else "XXXXX1234X")
        assert await c.kyc.cases.replace_document(case.id, user.id, doc, now) is not None
        docs.append(doc)
    selfie_id = await c.files.put(picture("selfie", (60, 140, 80), (400, 480)), owner_id=user.id, case_id=case.id,
                                  content_type="image/jpeg")
    assert await c.kyc.cases.set_selfie(case.id, user.id, Selfie(
        file_id=selfie_id, content_type="image/jpeg", uploaded_at=now, face_detected=True,
        quality={"acceptable": True, "issues": []}), now) is not None
    applicant = {"name": user.name, "email": user.email, "phone": user.phone}
    assert await c.kyc.cases.submit(case.id, user.id, applicant, now) is not None
    await c.users_repo.set_kyc_status(user.id, KycStatus.SUBMITTED, now)
    aadhaar, pan = docs
    checks = [
        Check("ocr", CheckStatus.PASS, 0.91, "The document was read.", aadhaar.id),
        Check("document_validity", CheckStatus.PASS, 1.0, "The document number passed its checks.", aadhaar.id),
        Check("name_match", CheckStatus.REVIEW, 0.82, "The name on the document agrees 82% with the profile.",
              aadhaar.id),
        Check("dob_match", CheckStatus.PASS, 1.0, "The date of birth agrees.", aadhaar.id),
        Check("ocr", CheckStatus.PASS, 0.91, "The document was read.", pan.id),
        Check("face_match", CheckStatus.FAIL, 0.31, "The faces do not match.", aadhaar.id),
        Check("selfie_quality", CheckStatus.PASS, 1.0, "The selfie is sharp and well lit."),
        Check("liveness", CheckStatus.REVIEW, 0.5, "No liveness challenge was taken."),
    ]
    assert await c.kyc.cases.record_checks(case.id, checks, assess(checks), now) is not None
    return {"kyc_id": case.id, "user_id": user.id, "email": user.email, "name": user.name}


async def _seed(count: int, auditors: list[str]) -> dict[str, Any]:
    """Against the server's database (DATA_DIR from the environment, as `kycflow` commands find it):
    `count` cases and the named auditors (password PASSWORD)."""
    from app.bootstrap import build_container
    from app.config import Settings

    c = await build_container(Settings(ml_preload=False, ml_processes=False, job_workers=0))  # type: ignore[call-arg]
    try:
        names = ["Asha Rao", "Vikram Nair", "Meera Iyer", "Rahul Verma"]
        cases = [await submitted_case(c, name=names[n % len(names)]) for n in range(count)]
        for n, email in enumerate(auditors):
            await c.admin.create_user(email=email, password=PASSWORD, name=("Ravi Auditor", "Neha Auditor")[n % 2],
                                      role=Role.AUDITOR)
        return {"cases": cases}
    finally:
        await c.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_seed(int(sys.argv[1]), sys.argv[2:]))))
