"""The automated checks of a KYC case, a module each: the module registers its rule under its
`CheckName`, and `document_checks` / `selfie_checks` run every rule registered here, in the order
the names are declared. Rules are pure: what one needs from the database (the other accounts that
show a number) the checks service reads first (app/services/kyc/checks.py, which adds the
model-backed face match)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from app.domain.kyc import CaseDocument, Check, CheckName, Selfie
from app.domain.users import User


@dataclass(frozen=True)
class Facts:
    """One document of a case and what it is compared with."""

    document: CaseDocument
    user: User  # the profile's name and date of birth
    today: date
    other_owners: tuple[str, ...] = ()  # other accounts with a submitted or approved case showing its number


DocumentRule = Callable[[Facts], Check | list[Check] | None]  # None: the check does not apply
SelfieRule = Callable[[Selfie], Check]
R = TypeVar("R")
_DOCUMENT_RULES: dict[CheckName, DocumentRule] = {}
_SELFIE_RULES: dict[CheckName, SelfieRule] = {}


def _registrar(rules: dict[CheckName, R], name: CheckName) -> Callable[[R], R]:
    def register(rule: R) -> R:
        if name in rules:
            raise ValueError(f"two rules for the check {name}")
        rules[name] = rule
        return rule

    return register


def document_rule(name: CheckName) -> Callable[[DocumentRule], DocumentRule]:
    return _registrar(_DOCUMENT_RULES, name)


def selfie_rule(name: CheckName) -> Callable[[SelfieRule], SelfieRule]:
    return _registrar(_SELFIE_RULES, name)


def document_checks(facts: Facts) -> list[Check]:
    found: list[Check] = []
    for name in CheckName:
        result = _DOCUMENT_RULES[name](facts) if name in _DOCUMENT_RULES else None
        found += [] if result is None else result if isinstance(result, list) else [result]
    return found


def selfie_checks(selfie: Selfie) -> list[Check]:
    return [_SELFIE_RULES[name](selfie) for name in CheckName if name in _SELFIE_RULES]


# Each module here registers its rule when imported: adding a check is adding its name and its module.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
