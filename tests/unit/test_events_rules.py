"""Pure rules of events and webhooks: payload masking, audiences, the URL policy, the retry schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.domain.events import STAFF, EventType, UnsafeEventPayload, audiences_for, safe_payload, viewer_audiences
from app.domain.webhooks import (
    DEFAULT_RETRY_SCHEDULE,
    InvalidWebhookUrl,
    SigningSecret,
    WebhookEndpoint,
    address_refusal,
    check_addresses,
    parse_target,
)
from app.repositories.events import id_time, new_event_id
from app.services.webhooks import new_secret, sign


@pytest.mark.parametrize("clear", ["234123412346", "2341 2341 2346", "ABCDE1234F", "J8369854", "my PAN is ABCDE1234F"])
def test_a_clear_document_number_never_enters_an_event(clear):
    with pytest.raises(UnsafeEventPayload):
        safe_payload({"documents": [{"number": clear}]})


def test_masked_numbers_ids_amounts_and_instants_are_what_an_event_carries():
    at = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    data = safe_payload({"kyc_id": "6741f0c2a1b2c3d4e5f60718", "aadhaar": "XXXX XXXX 1234", "pan": "XXXXXX234F",
                         "amount": Decimal("100000.00"), "at": at, "status": EventType.KYC_APPROVED, "n": 3,
                         "reason": None})
    assert data == {"kyc_id": "6741f0c2a1b2c3d4e5f60718", "aadhaar": "XXXX XXXX 1234", "pan": "XXXXXX234F",
                    "amount": "100000.00", "at": "2026-11-22T10:00:00.000Z", "status": "kyc.approved", "n": 3,
                    "reason": None}
    with pytest.raises(UnsafeEventPayload, match="Decimal"):
        safe_payload({"amount": 1000.5})


def test_review_queue_events_reach_staff_and_loan_events_only_their_customer():
    assert audiences_for(EventType.KYC_SUBMITTED, "u1") == ("user:u1", STAFF)
    assert audiences_for(EventType.LOAN_DISBURSED, "u1") == ("user:u1",)
    assert viewer_audiences("u1", staff=False) == {"user:u1"}
    assert viewer_audiences("a1", staff=True) == {"user:a1", STAFF}


def test_event_ids_sort_by_creation_to_the_millisecond():
    base = 1_795_000_000_000_000_000
    ids = [new_event_id(base + ms * 1_000_000) for ms in (0, 1, 999, 1000, 1001)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert id_time(ids[3]) == datetime.fromtimestamp(base // 10**9 + 1, UTC)


def test_the_default_schedule_is_svix_s_and_spans_more_than_a_day():
    assert DEFAULT_RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert timedelta(hours=27) < timedelta(seconds=sum(DEFAULT_RETRY_SCHEDULE)) < timedelta(hours=28)


@pytest.mark.parametrize(("url", "production", "message"), [
    ("http://example.com/h", True, "must use https"),
    ("gopher://example.com/h", False, "must use http or https"),
    ("https://u:p@example.com/h", True, "credentials"),
    ("https:///nohost", True, "no host"),
    ("http://example.com:99999/h", False, "not valid"),
])
def test_urls_the_policy_never_allows(url, production, message):
    with pytest.raises(InvalidWebhookUrl, match=message) as info:
        parse_target(url, production=production)
    assert info.value.details["errors"][0]["field"] == "url"


@pytest.mark.parametrize(("url", "address", "production", "refused"), [
    ("http://127.0.0.1:8000/h", "127.0.0.1", False, None),  # local receivers in development and tests
    ("https://127.0.0.1/h", "127.0.0.1", True, "loopback"),
    ("http://localhost/h", "127.0.0.1", False, "loopback"),  # a name: could be rebound
    ("http://[::1]/h", "::1", False, "loopback"),
    ("https://x.example/h", "10.0.0.1", True, "private"),
    ("https://x.example/h", "172.16.0.1", True, "private"),
    ("https://x.example/h", "192.168.1.1", True, "private"),
    ("https://x.example/h", "169.254.169.254", True, "link-local"),
    ("https://x.example/h", "fe80::1%eth0", True, "link-local"),
    ("https://x.example/h", "fd00::1", True, "private"),
    ("https://x.example/h", "::ffff:192.168.0.1", True, "private"),
    ("https://x.example/h", "100.64.0.1", True, "non-public"),
    ("https://x.example/h", "240.0.0.1", True, "reserved"),
    ("https://x.example/h", "93.184.215.14", True, None),
    ("https://x.example/h", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", True, None),
])
def test_every_resolved_address_must_be_public(url, address, production, refused):
    target = parse_target(url, production=production)
    reason = address_refusal(address, target=target, production=production)
    assert (reason is None) if refused is None else (refused in str(reason))


def test_one_private_address_among_public_ones_refuses_the_host():
    target = parse_target("https://x.example/h", production=True)
    with pytest.raises(InvalidWebhookUrl, match="private address 10.0.0.7"):
        check_addresses(["93.184.215.14", "10.0.0.7"], target=target, production=True)


def test_during_a_rotation_both_secrets_sign_and_each_verifies():
    from standardwebhooks import Webhook

    now = datetime.now(UTC)
    old, new = new_secret(), new_secret()
    endpoint = WebhookEndpoint(id="e", url="https://x.example", events=("kyc.approved",), description="", enabled=True,
                               secrets=(SigningSecret(old, now, now + timedelta(hours=1)), SigningSecret(new, now)),
                               created_at=now, updated_at=now)
    assert endpoint.signing_secrets(now) == [new, old]
    assert endpoint.signing_secrets(now + timedelta(hours=2)) == [new]
    headers = sign(endpoint.signing_secrets(now), "msg_1", now, '{"type":"kyc.approved"}')
    for secret in (old, new):
        assert Webhook(secret).verify('{"type":"kyc.approved"}', headers) == {"type": "kyc.approved"}
