"""The FastAPI application: routers, middleware, docs and the lifespan that owns the services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__
from app.api import (
    admin,
    api_keys,
    audit,
    auth,
    catalogue,
    events,
    grievances,
    health,
    jobs,
    kyc,
    loans,
    statements,
    users,
    verification,
    webhooks,
)
from app.api.console import install_console
from app.api.docs import install_docs
from app.api.errors import install_error_handlers
from app.api.gateway import router as gateway_router
from app.api.metrics import router as metrics_router
from app.api.middleware import BodyLimitMiddleware, RequestContextMiddleware, SecurityHeadersMiddleware
from app.api.model_routes import model_routes
from app.api.rate_limit import RateLimitMiddleware
from app.api.realtime import mount_socketio
from app.api.schemas.common import error_responses
from app.bootstrap import build_container
from app.config import Settings, StartupError, checked_settings, get_settings
from app.logging_setup import configure_logging

API_PREFIX = "/api/v1"
ROUTERS = tuple(module.router for module in (health, auth, users, kyc, admin, audit, api_keys, verification, jobs, loans,
                                             statements, grievances, catalogue, webhooks, events)) + (gateway_router,)
# What the middleware answers before any route runs, so every route may answer it (a route's own 400
# or 429 replaces these in its docs): two credentials, a caller over its rate limit (never /health), and a
# request still running when SHUTDOWN_GRACE_SECONDS ran out.
_TWO_CREDENTIALS = (400, "duplicate_credentials", "Send one credential per request: one Authorization header or "
                                                  "one X-API-Key, not both and not twice.")
_CUT = (503, "shutting_down", "The service is restarting; send the request again.")
_ANY_ROUTE = error_responses(_TWO_CREDENTIALS, _CUT)
_LIMITED_ROUTE = error_responses(_TWO_CREDENTIALS, (429, "rate_limited", "Too many requests; try again later."), _CUT)

DESCRIPTION = """
KYC Flow onboards customers for lenders: sign-up and login with OTP, KYC documents and
their verification, an auditor review queue with an audit trail, and loans.

**Try it here:** register, read the code from `var/outbox/` (or your mailbox), verify,
log in, then press **Authorize** and paste the `access_token`.
Every error uses one envelope: `detail`, `error_code`, `status_code`, `timestamp`, `request_id`.
"""

TAGS = [
    {"name": "Health", "description": "Is the service usable?"},
    {"name": "Auth", "description": "Register, verify, sign in (password, OTP), sessions and passwords."},
    {"name": "Users", "description": "The signed-in user's own record."},
    {"name": "KYC", "description": "KYC cases: documents, selfie and submission (customers); the review queue, "
                                   "files and decisions (auditors)."},
    {"name": "Admin", "description": "Staff accounts, user browsing, roles, API keys and the audit trail."},
    {"name": "Verification", "description": "Stateless OCR, face match and liveness (bearer token or X-API-Key)."},
    {"name": "Loans", "description": "Products, eligibility and EMI, applications, repayments, pre-closure; the loan book."},
    {"name": "Grievances", "description": "A borrower's grievances about a loan; the staff queue on the RBI's 30-day clock."},
    {"name": "Catalogue", "description": "Banks and their loan products (admins)."},
    {"name": "Gateway", "description": "Configured internal services, proxied (staff or a `gateway`-scoped API key)."},
]


def create_app(settings: Settings | None = None, *, ml_loaders: dict[str, Any] | None = None,
               db_listeners: list[Any] | None = None) -> FastAPI:
    """`ml_loaders` replaces how models are built (tests share one set of loaded models);
    `db_listeners` are PyMongo command listeners (tests count each route's database commands)."""
    settings = settings or get_settings()
    settings.check_startup()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await build_container(settings, ml_loaders=ml_loaders, db_listeners=db_listeners)
        app.state.container = container
        container.jobs.start()  # JOB_WORKERS in-process workers; `close` stops them and releases leases
        await container.serve_metrics()  # METRICS_PORT, where set
        restore_signals = _on_stop_signal(container.begin_shutdown)
        # Models load in the pool while the API already answers; /health says when they are ready.
        docs = f"API docs at {os.environ.get('KYCFLOW_SERVE_URL', '')}/docs"  # set by `kycflow serve`
        preload = asyncio.create_task(container.ml.preload(announce=docs)) if settings.ml_preload else None
        # The face_duplicate index too, so the first checks after a start do not wait for it.
        faces = asyncio.create_task(container.kyc_checks.faces.warm()) if preload and container.kyc_checks.faces else None
        try:
            yield
        finally:
            restore_signals()
            for task in (preload, faces):
                if task:
                    task.cancel()
            await container.close()

    app = FastAPI(
        title="KYC Flow API", version=__version__, description=DESCRIPTION, openapi_tags=TAGS,
        lifespan=lifespan, docs_url=None, redoc_url=None,
        # One schema per model, not `-Input`/`-Output` twins: generated clients get one class per name.
        separate_input_output_schemas=False,
        # Operation ids are the endpoint names (`login`, `get_case`): short methods in generated clients.
        generate_unique_id_function=lambda route: route.name,
    )
    install_error_handlers(app)
    # Innermost but for the routes, before body parsing: a 429 (or the 400 of a request with several
    # credentials) still carries CORS headers (browsers can read it), preflights are never counted,
    # and it has its request id and access-log line.
    app.add_middleware(RateLimitMiddleware, prefix=API_PREFIX)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
                           allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["X-Request-ID", "Retry-After", "X-RateLimit-Limit",
                                           "X-RateLimit-Remaining", "X-RateLimit-Reset"])
    # Upload routes: two files plus room for the form; frame routes: a full set as base64 in JSON.
    # Every other route: a small JSON body (the rule is in app/api/middleware.py, by route).
    app.add_middleware(BodyLimitMiddleware, default=settings.max_json_body_bytes, prefix=API_PREFIX, limits={
        "uploads": 2 * settings.max_upload_bytes + 2**20,
        "frames": settings.max_frames * settings.max_frame_bytes * 4 // 3 + 2**20,
        "gateway": settings.gateway_max_body_bytes,
    })
    app.add_middleware(RequestContextMiddleware, quiet=(f"{API_PREFIX}/health",))
    # Outermost, so every answer (a 500 or a 413 included) carries the headers.
    app.add_middleware(SecurityHeadersMiddleware, api_prefix=API_PREFIX, trusted_proxies=settings.trusted_proxies,
                       public=(f"{API_PREFIX}/health",))
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX, responses=_ANY_ROUTE if router is health.router else _LIMITED_ROUTE)
    app.include_router(metrics_router)
    mount_socketio(app, settings.cors_origins or None)  # /socket.io: live events for socket.io-client apps
    install_docs(app)
    install_console(app)
    # Capped per caller in flight: by RateLimitMiddleware under /api/v1, by the route itself elsewhere.
    app.state.model_routes = model_routes(app.routes)
    return app


def _on_stop_signal(action: Callable[[], None]) -> Callable[[], None]:
    """Run `action` on the loop as soon as uvicorn is told to stop (SIGINT/SIGTERM), before it waits up
    to SHUTDOWN_GRACE_SECONDS for the requests in flight: a live stream never ends by itself, and job
    workers must not claim work meanwhile. Returns what puts uvicorn's handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop, restore = asyncio.get_running_loop(), {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not type(getattr(previous, "__self__", None)).__module__.startswith("uvicorn"):
            continue  # not under uvicorn's signal handling (tests, ASGI transports)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone already
                loop.call_soon_threadsafe(action)
            previous(signum, frame)

        restore[sig] = previous
        signal.signal(sig, handler)

    def put_back() -> None:
        for sig, previous in restore.items():
            signal.signal(sig, previous)

    return put_back


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory app.main:app_factory`."""
    try:
        settings = checked_settings()
    except StartupError as exc:  # one message listing each setting to fix, not a traceback
        raise SystemExit(f"kycflow: {exc}") from None
    configure_logging(settings.log_level)
    return create_app(settings)
