"""The lending catalogue: banks and their loan products, browsed by anyone, kept by admins."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.catalogue import Bank, BankNotFound, ProductNotFound
from app.domain.loan_schedule import RepaymentFrequency
from app.domain.loans import LoanProduct, LoanType
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
SEED_PRODUCTS: list[dict[str, Any]] = [
    dict(bank="BNB", name="Salary Personal Loan", type="personal", min_amount=D(50000), max_amount=D(2500000),
         min_tenure_months=12, max_tenure_months=60, annual_interest_rate=D("11.25"), processing_fee_pct=D("1.5"),
         prepayment_charge_pct=D(4), repayment_frequency="monthly", min_monthly_income=D(25000), min_age=21,
         max_age=60, max_foir=D("0.55"), max_risk_level="Medium"),
    dict(bank="BNB", name="Home Loan", type="home", min_amount=D(500000), max_amount=D(50000000),
         min_tenure_months=60, max_tenure_months=360, annual_interest_rate=D("8.50"), processing_fee_pct=D("0.5"),
         prepayment_charge_pct=D(0), repayment_frequency="monthly", min_monthly_income=D(30000), min_age=21,
         max_age=70, max_foir=D("0.60"), max_risk_level="Medium"),
    dict(bank="BNB", name="New Car Loan", type="auto", min_amount=D(100000), max_amount=D(5000000),
         min_tenure_months=12, max_tenure_months=84, annual_interest_rate=D("9.10"), processing_fee_pct=D(1),
         prepayment_charge_pct=D(2), repayment_frequency="monthly", min_monthly_income=D(25000), min_age=21,
         max_age=65, max_foir=D("0.55"), max_risk_level="Medium"),
    dict(bank="BNB", name="Education Loan", type="education", min_amount=D(50000), max_amount=D(4000000),
         min_tenure_months=12, max_tenure_months=180, annual_interest_rate=D("10.15"), processing_fee_pct=D(0),
         prepayment_charge_pct=D(0), repayment_frequency="monthly", min_monthly_income=D(15000), min_age=18,
         max_age=65, max_foir=D("0.60"), max_risk_level="High"),
    dict(bank="SSFB", name="Business Growth Loan", type="business", min_amount=D(200000), max_amount=D(7500000),
         min_tenure_months=12, max_tenure_months=60, annual_interest_rate=D("15.50"), processing_fee_pct=D(2),
         prepayment_charge_pct=D(3), repayment_frequency="monthly", min_monthly_income=D(40000), min_age=23,
         max_age=65, max_foir=D("0.60"), max_risk_level="Medium"),
    dict(bank="SSFB", name="Gold Loan", type="gold", min_amount=D(10000), max_amount=D(2000000),
         min_tenure_months=3, max_tenure_months=24, annual_interest_rate=D("9.90"), processing_fee_pct=D("0.5"),
         prepayment_charge_pct=D(0), repayment_frequency="monthly", min_monthly_income=D(0), min_age=18,
         max_age=75, max_foir=D("0.70"), max_risk_level="High"),
    dict(bank="SSFB", name="Daily Micro Loan", type="micro", min_amount=D(5000), max_amount=D(100000),
         min_tenure_months=3, max_tenure_months=12, annual_interest_rate=D("24.00"), processing_fee_pct=D(1),
         prepayment_charge_pct=D(0), repayment_frequency="daily", min_monthly_income=D(8000), min_age=18,
         max_age=65, max_foir=D("0.50"), max_risk_level="High"),
]


def product_of(fields: dict[str, Any]) -> LoanProduct:
    """A validated product from its fields (every broken limit reported at once)."""
    amounts = {name: money(fields[name], strict=True) for name in ("min_amount", "max_amount", "min_monthly_income")}
    return LoanProduct(**{**fields, **amounts, "type": LoanType(fields["type"]),
                          "repayment_frequency": RepaymentFrequency(fields["repayment_frequency"])}).validate()


class CatalogueService:
    def __init__(self, banks: BankRepository, products: LoanProductRepository, audit: AuditService,
                 clock: Clock) -> None:
        self.banks, self.products, self.audit, self.clock = banks, products, audit, clock

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
        product = product_of(fields)
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
        product = product_of(fields)
        await self._bank_exists(product.bank_id)
        saved = await self.products.replace(product_id, product, self.clock.now())
        if saved is None:
            raise ProductNotFound()
        await self.audit.record(AuditAction.PRODUCT_UPDATED, user_id=None, actor=actor, client=client,
                                product_id=saved.id, fields=sorted(fields))
        return saved

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
