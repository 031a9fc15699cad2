"""The lending catalogue's records and refusals: banks, and the products they offer (whose
terms, `LoanProduct`, are in `app.domain.loans`: every loan keeps a copy of them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain.errors import Conflict, NotFound


class ProductNotFound(NotFound):
    """No such loan product."""

    code = "product_not_found"


class BankNotFound(NotFound):
    """No such bank."""

    code = "bank_not_found"


class BankExists(Conflict):
    """A bank with this code already exists."""

    code = "bank_exists"


class ProductExists(Conflict):
    """This bank already has a product with this name."""

    code = "product_exists"


@dataclass(frozen=True, slots=True)
class Bank:
    id: str
    name: str
    code: str
    active: bool
    created_at: datetime
