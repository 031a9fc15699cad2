"""The lending catalogue: banks and their loan products, browsed by anyone, kept by admins."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.catalogue import Bank, BankNotFound, ProductNotFound
from app.domain.delinquency import PenalKind, PenalRule
from app.domain.kyc import DEFAULT_LEVEL
from app.domain.loan_schedule import RepaymentFrequency, ThirdPartyCharge
from app.domain.loans import InvalidLoanProduct, LoanProduct, LoanType, RateType
from app.domain.money import money
from app.domain.pages import Page, PageRequest
from app.domain.users import User
from app.repositories.catalogue import BankRepository, LoanProductRepository
from app.services.audit import AuditService
from app.services.clock import Clock

D = Decimal
# `kycflow seed-catalogue`: a small, realistic catalogue (rates and fees in the ranges Indian
# lenders advertised in 2025-26). Keyed by bank code and product name, so seeding twice adds nothing.
SEED_BANKS = [("Bharat National Bank", "BNB"), ("Sahyadri Small Finance Bank", "SSFB")]
_SEED_FIELDS = ("bank", "name", "type", "min_amount", "max_amount", "min_tenure_months", "max_tenure_months",
                "annual_interest_rate", "processing_fee_pct", "prepayment_charge_pct", "repayment_frequency",
                "min_monthly_income", "min_age", "max_age", "max_foir", "max_risk_level")
SEED_PRODUCTS: list[dict[str, Any]] = [dict(zip(_SEED_FIELDS, row, strict=True)) for row in [
    ("BNB", "Salary Personal Loan", "personal", D(50000), D(2500000), 12, 60, D("11.25"), D("1.5"), D(4), "monthly",
     D(25000), 21, 60, D("0.55"), "Medium"),
    ("BNB", "Home Loan", "home", D(500000), D(50000000), 60, 360, D("8.50"), D("0.5"), D(0), "monthly",
     D(30000), 21, 70, D("0.60"), "Medium"),
    ("BNB", "New Car Loan", "auto", D(100000), D(5000000), 12, 84, D("9.10"), D(1), D(2), "monthly",
     D(25000), 21, 65, D("0.55"), "Medium"),
    ("BNB", "Education Loan", "education", D(50000), D(4000000), 12, 180, D("10.15"), D(0), D(0), "monthly",
     D(15000), 18, 65, D("0.60"), "High"),
    ("SSFB", "Business Growth Loan", "business", D(200000), D(7500000), 12, 60, D("15.50"), D(2), D(3), "monthly",
     D(40000), 23, 65, D("0.60"), "Medium"),
    ("SSFB", "Gold Loan", "gold", D(10000), D(2000000), 3, 24, D("9.90"), D("0.5"), D(0), "monthly",
     D(0), 18, 75, D("0.70"), "High"),
    ("SSFB", "Daily Micro Loan", "micro", D(5000), D(100000), 3, 12, D("24.00"), D(1), D(0), "daily",
     D(8000), 18, 65, D("0.50"), "High"),
]]


def product_of(fields: dict[str, Any]) -> LoanProduct:
    """A validated product from its fields (every broken limit reported at once)."""
    amounts = {name: money(fields[name], strict=True) for name in ("min_amount", "max_amount", "min_monthly_income",
                                                                    "full_kyc_above") if fields.get(name) is not None}
    if isinstance(penal := fields.get("penal_charge"), dict):
        amounts["penal_charge"] = PenalRule(PenalKind(penal["kind"]), penal["value"], penal.get("cap"))  # type: ignore[assignment]
    charges = tuple(ThirdPartyCharge(c["name"], money(c["amount"], strict=True)) for c in fields.get("third_party_charges", ()))
    return LoanProduct(**{**fields, **amounts, "type": LoanType(fields["type"]),
                          "repayment_frequency": RepaymentFrequency(fields["repayment_frequency"]),
                          "rate_type": RateType(fields.get("rate_type", RateType.FIXED)),
                          "third_party_charges": charges}).validate()


class CatalogueService:
    def __init__(self, banks: BankRepository, products: LoanProductRepository, audit: AuditService,
                 clock: Clock, kyc_levels: Sequence[str] = (DEFAULT_LEVEL,)) -> None:
        self.banks, self.products, self.audit, self.clock = banks, products, audit, clock
        self.kyc_levels = kyc_levels  # what a product's `required_kyc_level` may name

    # --- banks -------------------------------------------------------------------------------

    async def add_bank(self, *, name: str, code: str, active: bool, actor: User, client: ClientInfo) -> Bank:
        bank = await self.banks.add(name=name, code=code.upper(), active=active, now=self.clock.now())
        await self.audit.record(AuditAction.BANK_CREATED, user_id=None, actor=actor, client=client,
                                bank_id=bank.id, code=bank.code)
        return bank

    async def list_banks(self, page: PageRequest) -> Page[Bank]:
        return await self.banks.search(page=page)

    async def bank_names(self, products: list[LoanProduct]) -> dict[str, str]:
        return await self.banks.names(sorted({p.bank_id for p in products}))

    # --- products ----------------------------------------------------------------------------

    async def add_product(self, fields: dict[str, Any], *, actor: User, client: ClientInfo) -> LoanProduct:
        product = self._check_level(product_of(fields))
        await self._bank_exists(product.bank_id)
        saved = await self.products.add(product, self.clock.now())
        await self.audit.record(AuditAction.PRODUCT_CREATED, user_id=None, actor=actor, client=client,
                                product_id=saved.id, name=saved.name)
        return saved

    async def update_product(self, product_id: str, fields: dict[str, Any], *, actor: User,
                             client: ClientInfo) -> LoanProduct:
        """Replaces the product's terms; loans already opened keep the terms they were agreed on."""
        if await self.products.get(product_id) is None:
            raise ProductNotFound()
        product = self._check_level(product_of(fields))
        await self._bank_exists(product.bank_id)
        saved = await self.products.replace(product_id, product, self.clock.now())
        if saved is None:
            raise ProductNotFound()
        await self.audit.record(AuditAction.PRODUCT_UPDATED, user_id=None, actor=actor, client=client,
                                product_id=saved.id, fields=sorted(fields))
        return saved

    def _check_level(self, product: LoanProduct) -> LoanProduct:
        if product.required_kyc_level not in (None, *self.kyc_levels):
            message = f"one of: {', '.join(self.kyc_levels)}"
            raise InvalidLoanProduct(f"Unknown KYC level; {message}.",
                                     errors=[{"field": "required_kyc_level", "message": message}])
        return product

    async def _bank_exists(self, bank_id: str) -> None:
        if await self.banks.get(bank_id) is None:
            raise BankNotFound(f"No bank with id {bank_id}.")

    async def product(self, product_id: str, *, include_inactive: bool = False) -> LoanProduct:
        product = await self.products.get(product_id)
        if product is None or (not product.active and not include_inactive):
            raise ProductNotFound()
        return product

    async def browse(self, *, include_inactive: bool, type: str | None = None, bank_id: str | None = None,
                     amount: Decimal | None = None, tenure_months: int | None = None,
                     page: PageRequest = PageRequest()) -> Page[LoanProduct]:
        return await self.products.search(active_only=not include_inactive, type=type, bank_id=bank_id,
                                          amount=amount, tenure_months=tenure_months, page=page)

    # --- seeding -----------------------------------------------------------------------------

    async def seed(self) -> tuple[int, int]:
        """Adds the sample banks and products that are missing; returns how many of each were added."""
        now, banks_added, products_added = self.clock.now(), 0, 0
        ids: dict[str, str] = {}
        for name, code in SEED_BANKS:
            bank = await self.banks.by_code(code)
            if bank is None:
                bank = await self.banks.add(name=name, code=code, active=True, now=now)
                banks_added += 1
            ids[code] = bank.id
        for spec in SEED_PRODUCTS:
            fields = {k: v for k, v in spec.items() if k != "bank"}
            product = product_of({**fields, "bank_id": ids[spec["bank"]]})
            if await self.products.find(bank_id=product.bank_id, name=product.name) is None:
                await self.products.add(product, now)
                products_added += 1
        return banks_added, products_added
