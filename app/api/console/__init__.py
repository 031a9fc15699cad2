"""The staff console at /console: server-rendered pages for auditors and admins, served by
the service with its own assets, behind a cookie session of the API's sign-in."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from app.api.console import admin, book, kyc, signin
from app.api.console.pages import HERE, PATH, Refused, SignInRequired, error_page, redirect, sign_in_url


def install_console(app: FastAPI) -> None:
    app.mount(f"{PATH}/static", StaticFiles(directory=str(HERE / "static")), name="console-assets")
    app.include_router(signin.router)
    app.include_router(kyc.router)
    app.include_router(admin.router)
    app.include_router(book.router)

    @app.exception_handler(SignInRequired)
    async def sign_in_again(request: Request, exc: SignInRequired) -> Response:
        return redirect(sign_in_url(exc.reason))

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return error_page(request, exc.staff, exc.status, exc.message)
