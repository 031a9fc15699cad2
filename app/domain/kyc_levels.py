"""Verification levels (KYC_LEVELS), lowest first: a customer is verified at the level of the case an
auditor approved, a loan product may need a level (or the highest above an amount), and a customer
below it steps up with a case that keeps what already passed. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.errors import Conflict, Forbidden, InvalidInput
from app.domain.kyc import DEFAULT_LEVEL, SubmissionPolicy


class UnknownLevel(InvalidInput):
    """No such verification level."""

    code = "kyc_level_unknown"


class LevelReached(Conflict):
    """The customer is already verified at this level or above."""

    code = "kyc_level_reached"


class LevelRequired(Forbidden):
    """The loan needs KYC at a higher level."""

    code = "kyc_level_required"


@dataclass(frozen=True)
class Levels:
    order: tuple[SubmissionPolicy, ...] = (SubmissionPolicy(),)

    @property
    def names(self) -> list[str]:
        return [level.name for level in self.order]

    def __getitem__(self, name: str) -> SubmissionPolicy:
        for level in self.order:
            if level.name == name:
                return level
        raise UnknownLevel(f"Unknown KYC level {name!r}; one of: {', '.join(self.names)}.",
                           errors=[{"field": "level", "message": f"one of: {', '.join(self.names)}"}])

    def of(self, name: str) -> SubmissionPolicy:
        """A stored case's level; one no longer configured reads as the default."""
        return next((level for level in self.order if level.name == name), self[DEFAULT_LEVEL])

    def reaches(self, have: str | None, need: str) -> bool:
        """Whether a customer verified at `have` (None: not verified; a level no longer configured counts
        as none) is at `need` or above."""
        return have in self.names and self.names.index(have) >= self.names.index(need)

    def needed(self, required: str | None, highest_above: Decimal | None, amount: Decimal) -> str | None:
        """The level a loan of `amount` needs from a product that asks `required` (None: any approved KYC),
        and the highest level above `highest_above`; a level no longer configured needs the highest (fail closed)."""
        if (highest_above is not None and amount > highest_above) or (required and required not in self.names):
            return self.names[-1]
        return required

    def shortfall(self, have: str | None, need: str | None) -> str | None:
        """Why a customer verified at `have` cannot borrow what needs `need` (None: they can), for applying
        and the eligibility check alike."""
        return None if need is None or self.reaches(have, need) else (
            f"This loan needs KYC at level {need!r}; you are verified at {have!r}. Step up with "
            f"POST /kyc/level {{\"level\": \"{need}\"}}: what already passed is kept.")

    def ensure(self, have: str | None, need: str | None) -> None:
        if message := self.shortfall(have, need):
            raise LevelRequired(message, reasons=[{"code": LevelRequired.code, "message": message,
                                                   "required_level": need, "kyc_level": have}])


DEFAULT_LEVELS = Levels((SubmissionPolicy(identity_documents=(), name="basic"), SubmissionPolicy(name=DEFAULT_LEVEL),
                         SubmissionPolicy(liveness=True, checks=("liveness",), name="full")))
