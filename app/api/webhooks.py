"""Webhook endpoints (admins): register, list, disable and enable, rotate the secret, see attempts, redeliver, replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from app.api.deps import ClientDep, ClockDep, WebhookServiceDep, allow
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import Page, PageNo, PageSize, error_responses
from app.api.schemas.webhooks import (
    AttemptOut,
    RedeliveryOut,
    ReplayIn,
    ReplayOut,
    WebhookCreate,
    WebhookOut,
    WebhookWithSecret,
)
from app.domain import webhooks as w
from app.domain.pages import PageRequest
from app.services.auth import Principal

router = APIRouter(prefix="/admin/webhooks", tags=["Admin"], route_class=ExactJsonRoute)
Admin = Annotated[Principal, allow("webhooks:manage")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookWithSecret,
             summary="Register a webhook endpoint",
             responses=error_responses(401, 403, (422, "invalid_webhook_url",
                                                  "The host 10.0.0.1 resolves to a private address 10.0.0.1; webhooks "
                                                  "go to public addresses only.")))
async def create_webhook(body: WebhookCreate, admin: Admin, hooks: WebhookServiceDep, clock: ClockDep,
                         client: ClientDep) -> WebhookWithSecret:
    """Returns the `whsec_` signing secret once. Deliveries follow Standard Webhooks (see the README)."""
    endpoint, secret = await hooks.create(admin.user, url=body.url, events=[e.value for e in body.events],
                                          description=body.description, client=client)
    return WebhookWithSecret.at(endpoint, clock.now(), secret=secret)


@router.get("", response_model=Page[WebhookOut], summary="List webhook endpoints",
            responses=error_responses(401, 403, 422))
async def list_webhooks(_: Admin, hooks: WebhookServiceDep, clock: ClockDep, page: PageNo = 1,
                        page_size: PageSize = 20) -> Page[WebhookOut]:
    """Newest first, disabled ones included; never a secret."""
    now = clock.now()
    return Page.of(await hooks.list_endpoints(page=PageRequest(page, page_size)), lambda e: WebhookOut.at(e, now))


@router.get("/{webhook_id}", response_model=WebhookOut, summary="One webhook endpoint",
            responses=error_responses(w.WebhookNotFound, 401, 403))
async def get_webhook(webhook_id: str, _: Admin, hooks: WebhookServiceDep, clock: ClockDep) -> WebhookOut:
    """The endpoint without its secret."""
    return WebhookOut.at(await hooks.get(webhook_id), clock.now())


@router.delete("/{webhook_id}", response_model=WebhookOut, summary="Disable a webhook endpoint",
               responses=error_responses(w.WebhookNotFound, 401, 403))
async def disable_webhook(webhook_id: str, admin: Admin, hooks: WebhookServiceDep, clock: ClockDep,
                          client: ClientDep) -> WebhookOut:
    """Nothing more is sent (queued retries end unsent); the endpoint and its attempts stay listed."""
    return WebhookOut.at(await hooks.set_enabled(admin.user, webhook_id, False, client), clock.now())


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookWithSecret, summary="Rotate the signing secret",
             responses=error_responses(w.WebhookNotFound, (409, "webhook_changed",
                                                           "The endpoint changed meanwhile; rotate again."),
                                       w.WebhookDisabled, 401, 403))
async def rotate_webhook_secret(webhook_id: str, admin: Admin, hooks: WebhookServiceDep, clock: ClockDep,
                                client: ClientDep) -> WebhookWithSecret:
    """A new secret, shown once; the previous one keeps signing beside it until `previous_secret_expires_at`."""
    endpoint, secret = await hooks.rotate(admin.user, webhook_id, client)
    return WebhookWithSecret.at(endpoint, clock.now(), secret=secret)


@router.get("/{webhook_id}/attempts", response_model=Page[AttemptOut], summary="Delivery attempts",
            responses=error_responses(w.WebhookNotFound, 401, 403, 422))
async def list_webhook_attempts(webhook_id: str, _: Admin, hooks: WebhookServiceDep, page: PageNo = 1,
                                page_size: PageSize = 20) -> Page[AttemptOut]:
    """Every try, newest first: status code, duration, error, and when the next try is due."""
    return Page.of(await hooks.list_attempts(webhook_id, page=PageRequest(page, page_size)), AttemptOut.of)


@router.post("/{webhook_id}/attempts/{attempt_id}/redeliver", status_code=status.HTTP_202_ACCEPTED,
             response_model=RedeliveryOut, summary="Send an attempt's event again",
             responses=error_responses(w.WebhookNotFound, w.DeliveryAttemptNotFound, w.WebhookDisabled, 401, 403,
                                       (404, "webhook_event_expired",
                                        "The event is no longer kept (EVENTS_RETENTION_DAYS).")))
async def redeliver_webhook_attempt(webhook_id: str, attempt_id: str, admin: Admin, hooks: WebhookServiceDep,
                                    client: ClientDep) -> RedeliveryOut:
    """Queues a new delivery of that event (same `webhook-id`, so receivers can drop a duplicate), with its
    own retries; its tries appear in the attempts."""
    return RedeliveryOut.of(await hooks.redeliver(admin.user, webhook_id, attempt_id, client))


@router.post("/{webhook_id}/enable", response_model=WebhookOut, summary="Enable a disabled webhook endpoint",
             responses=error_responses(w.WebhookNotFound, 401, 403))
async def enable_webhook(webhook_id: str, admin: Admin, hooks: WebhookServiceDep, clock: ClockDep,
                         client: ClientDep) -> WebhookOut:
    """New events are sent again (after a `410 Gone` or a long failure, or a delete); replay sends the missed ones."""
    return WebhookOut.at(await hooks.set_enabled(admin.user, webhook_id, True, client), clock.now())


@router.post("/{webhook_id}/replay", status_code=status.HTTP_202_ACCEPTED, response_model=ReplayOut,
             summary="Send again every failed delivery since a time",
             responses=error_responses(w.WebhookNotFound, w.WebhookDisabled, 401, 403, 422))
async def replay_webhook(webhook_id: str, body: ReplayIn, admin: Admin, hooks: WebhookServiceDep,
                         client: ClientDep) -> ReplayOut:
    """Queues a new delivery (same `webhook-id`) of each event whose last try to this endpoint at or after
    `since` failed for good (no retry left, or the endpoint was disabled). Asking again before those ran
    queues nothing more."""
    queued = await hooks.replay(admin.user, webhook_id, body.since, client)
    return ReplayOut(webhook_id=webhook_id, since=body.since, queued=queued)
