"""Catalogue administration: banks and their loan products (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from app.api.deps import CatalogueServiceDep, ClientDep, allow
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import Page, PageNo, PageSize, error_responses
from app.api.schemas.loans import BankIn, BankOut, ProductIn, ProductOut
from app.domain.catalogue import BankExists, BankNotFound, ProductExists, ProductNotFound
from app.domain.loans import InvalidLoanProduct, LoanType
from app.domain.pages import PageRequest
from app.services.auth import Principal

router = APIRouter(prefix="/admin", tags=["Catalogue"], route_class=ExactJsonRoute)
Keeper = Annotated[Principal, allow("catalogue:manage")]


@router.get("/banks", response_model=Page[BankOut], summary="Banks", responses=error_responses(401, 403, 422))
async def list_banks(_: Keeper, catalogue: CatalogueServiceDep, page: PageNo = 1, page_size: PageSize = 20) -> Page[BankOut]:
    """Every bank, by name."""
    return Page.of(await catalogue.list_banks(PageRequest(page, page_size)), BankOut.of)


@router.post("/banks", status_code=status.HTTP_201_CREATED, response_model=BankOut, summary="Add a bank",
             responses=error_responses(401, 403, BankExists, 422))
async def add_bank(body: BankIn, admin: Keeper, catalogue: CatalogueServiceDep, client: ClientDep) -> BankOut:
    """The code is unique (stored in capitals)."""
    return BankOut.of(await catalogue.add_bank(name=body.name, code=body.code, active=body.active,
                                                 actor=admin.user, client=client))


@router.get("/products", response_model=Page[ProductOut], summary="All loan products",
            responses=error_responses(401, 403, 422))
async def all_products(_: Keeper, catalogue: CatalogueServiceDep, page: PageNo = 1, page_size: PageSize = 20,
                   type: LoanType | None = None) -> Page[ProductOut]:
    """Inactive products included."""
    found = await catalogue.browse(include_inactive=True, type=type, page=PageRequest(page, page_size))
    names = await catalogue.bank_names(found.items)
    return Page.of(found, lambda p: ProductOut.of(p, bank_name=names.get(p.bank_id)))


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductOut,
             summary="Add a loan product",
             responses=error_responses(401, 403, BankNotFound, ProductExists, InvalidLoanProduct, 422))
async def add_product(body: ProductIn, admin: Keeper, catalogue: CatalogueServiceDep, client: ClientDep) -> ProductOut:
    """Limits that cannot all hold at once are refused, each named in `errors`."""
    saved = await catalogue.add_product(body.fields(), actor=admin.user, client=client)
    return ProductOut.of(saved, bank_name=(await catalogue.bank_names([saved])).get(saved.bank_id))


@router.put("/products/{product_id}", response_model=ProductOut, summary="Replace a product's terms",
            responses=error_responses(401, 403, ProductNotFound, BankNotFound, ProductExists,
                                      InvalidLoanProduct, 422))
async def update_product(product_id: str, body: ProductIn, admin: Keeper, catalogue: CatalogueServiceDep,
                         client: ClientDep) -> ProductOut:
    """New terms apply to new loans; loans already opened keep the terms they were agreed on."""
    saved = await catalogue.update_product(product_id, body.fields(), actor=admin.user, client=client)
    return ProductOut.of(saved, bank_name=(await catalogue.bank_names([saved])).get(saved.bank_id))
