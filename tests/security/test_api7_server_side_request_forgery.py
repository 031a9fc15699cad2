"""OWASP API Security Top 10 (2023), API7: Server Side Request Forgery

Items of issue 15 that belong here: every IPv6 form of a private address is refused (8). Each test fails on the code before the fix."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# --- item 8: every IPv6 form that carries an IPv4 address is judged by that IPv4 address --------

def _embeddings(v4: str) -> dict[str, str]:
    """`v4` written in each IPv6 form the standard library (or RFC 6052) can take it back out of."""
    import ipaddress

    n = int(ipaddress.IPv4Address(v4))
    hi, lo = n >> 16, n & 0xFFFF
    # Teredo (RFC 4380): 2001:0:<server>:<flags>:<port ^ ffff>:<client ^ ffffffff>; a public server.
    public = int(ipaddress.IPv4Address("65.54.227.120"))
    return {
        "6to4": f"2002:{hi:x}:{lo:x}::1",
        "teredo client": f"2001:0:{public >> 16:x}:{public & 0xFFFF:x}:8000:63bf:{(hi ^ 0xFFFF):x}:{(lo ^ 0xFFFF):x}",
        "teredo server": f"2001:0:{hi:x}:{lo:x}:8000:63bf:3fff:fdd2",
        "nat64": f"64:ff9b::{v4}",
        "nat64 local-use": f"64:ff9b:1::{v4}",
        "ipv4-mapped": f"::ffff:{v4}",
    }


_PRIVATE_V4 = {"169.254.169.254": "link-local", "10.0.0.1": "private", "127.0.0.1": "loopback"}


@pytest.mark.parametrize("form", list(_embeddings("10.0.0.1")))
@pytest.mark.parametrize("v4", list(_PRIVATE_V4))
async def test_a_webhook_url_whose_ipv6_address_embeds_a_private_ipv4_is_refused(api, v4, form):
    from tests.conftest import bearer

    address = _embeddings(v4)[form]
    admin = await api.staff("admin")
    r = await api.client.post("/admin/webhooks", headers=bearer(admin),
                              json={"url": f"https://[{address}]/hook", "events": ["kyc.approved"]})
    assert r.status_code == 422, (address, r.text)
    body = r.json()
    assert body["error_code"] == "invalid_webhook_url" and body["errors"][0]["loc"] == ["body", "url"]
    assert f"{_PRIVATE_V4[v4]} address {v4}" in body["detail"], body["detail"]
    assert (await api.client.get("/admin/webhooks", headers=bearer(admin))).json()["total"] == 0


@given(v4=st.ip_addresses(v=4).filter(lambda ip: not ip.is_global))
@settings(max_examples=300, deadline=None)
def test_every_embedding_of_a_non_public_ipv4_is_refused_whatever_the_environment(v4):
    """The rule for IPv6 forms is the plain IPv4 rule: whatever a plain IPv4 target is refused for,
    its 6to4, Teredo, NAT64 and mapped forms are refused for too, naming the IPv4 address."""
    from app.domain.webhooks import InvalidWebhookUrl, check_addresses, parse_target

    plain = str(v4)
    for production in (True, False):
        for form, address in _embeddings(plain).items():
            target = parse_target(f"https://[{address}]/hook", production=production)
            with pytest.raises(InvalidWebhookUrl) as refused:
                check_addresses([address], target=target, production=production)
            assert f"address {plain}" in refused.value.message, (form, address, refused.value.message)


@given(v4=st.ip_addresses(v=4).filter(lambda ip: ip.is_global and not ip.is_multicast))
@settings(max_examples=100, deadline=None)
def test_a_6to4_or_well_known_nat64_form_of_a_public_ipv4_is_judged_as_that_address(v4):
    """RFC 6052: the well-known NAT64 prefix carries public IPv4 only (what an IPv6-only network's
    DNS64 answers for a public receiver); 6to4 of a public IPv4 is public too."""
    from app.domain.webhooks import check_addresses, parse_target

    for address in (f"2002:{int(v4) >> 16:x}:{int(v4) & 0xFFFF:x}::1", f"64:ff9b::{v4}"):
        target = parse_target(f"https://[{address}]/hook", production=True)
        check_addresses([address], target=target, production=True)


async def test_a_name_resolving_to_a_6to4_form_of_a_private_address_at_delivery_time_is_not_called(api_factory):
    """The check made at delivery time (DNS answers) is the same function: a 6to4 answer for
    10.0.0.1 is refused and recorded as the attempt's error."""
    from tests.conftest import bearer
    from tests.integration.events_helpers import run_jobs, submitted_case

    api = await api_factory(job_workers=0)
    admin = await api.staff("admin")
    answers = {"hooks.example.com": ["93.184.215.14"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    api.container.webhooks.resolver = resolver
    r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={
        "url": "https://hooks.example.com/kycflow", "events": ["kyc.checks_completed"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    answers["hooks.example.com"] = ["2002:a9fe:a9fe::1"]
    customer = await api.customer()
    await submitted_case(api.container, customer["user_id"])
    await run_jobs(api.container)
    r = await api.client.get(f"/admin/webhooks/{hook['id']}/attempts", headers=bearer(admin))
    [attempt] = r.json()["items"]
    assert attempt["status_code"] is None and not attempt["success"]
    assert "link-local address 169.254.169.254" in attempt["error"], attempt["error"]
