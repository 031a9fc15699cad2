"""Is the selfie sharp, well lit and of one face (as the models judged it on upload)."""

from __future__ import annotations

from app.domain.checks import selfie_rule
from app.domain.kyc import Check, CheckName, CheckStatus, Selfie


@selfie_rule(CheckName.SELFIE_QUALITY)
def selfie_quality(selfie: Selfie) -> Check:
    ok = bool(selfie.quality.get("acceptable"))
    return Check(CheckName.SELFIE_QUALITY, CheckStatus.PASS if ok else CheckStatus.REVIEW, 1.0 if ok else 0.5,
                 "; ".join(selfie.quality.get("issues") or []) or "The selfie is sharp and well lit.")
