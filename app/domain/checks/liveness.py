"""Was the selfie taken with a passed liveness challenge."""

from __future__ import annotations

from app.domain.checks import selfie_rule
from app.domain.kyc import Check, CheckName, CheckStatus, Selfie


@selfie_rule(CheckName.LIVENESS)
def liveness(selfie: Selfie) -> Check:
    if selfie.liveness_passed:
        return Check(CheckName.LIVENESS, CheckStatus.PASS, 1.0, "A liveness challenge was passed.")
    return Check(CheckName.LIVENESS, CheckStatus.REVIEW, 0.5, "No liveness challenge was taken.")
