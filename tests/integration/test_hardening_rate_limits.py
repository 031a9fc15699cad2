"""Code sends: the one-minute cooldown and the hourly quota (5) are reported apart. The quota
headers describe the hourly window only; the cooldown shows as `Retry-After` on the 429."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

FORGOT = "/auth/password/forgot"


def _quota(r: Any) -> tuple[int, int, int]:
    return (int(r.headers["x-ratelimit-limit"]), int(r.headers["x-ratelimit-remaining"]),
            int(r.headers["x-ratelimit-reset"]))


async def test_the_cooldown_does_not_report_the_hourly_quota_as_spent(api, email):
    await api.customer(email)
    first_at = api.container.clock.now()
    r = await api.client.post(FORGOT, json={"identifier": email})
    assert r.status_code == 200 and "retry-after" not in r.headers
    limit, remaining, reset = _quota(r)
    assert (limit, remaining) == (5, 4)
    assert abs(reset - (first_at + timedelta(hours=1)).timestamp()) <= 2  # when the first send leaves the hour

    r = await api.client.post(FORGOT, json={"identifier": email})  # within the minute
    assert r.status_code == 429 and r.json()["error_code"] == "rate_limited"
    assert r.json()["detail"] == "Please wait before asking for another code."
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert _quota(r) == (5, 4, reset)  # four sends are still left this hour
    assert len(api.mailbox.for_address(email)) == 2  # the sign-up code and one reset code, no more

    api.container.clock.advance(seconds=61)
    r = await api.client.post(FORGOT, json={"identifier": email})
    assert r.status_code == 200 and _quota(r) == (5, 3, reset) and "retry-after" not in r.headers


async def test_a_spent_quota_says_so_and_waits_for_the_window_not_the_cooldown(api, email):
    await api.customer(email)
    first_at = api.container.clock.now()
    for remaining in (4, 3, 2, 1, 0):
        r = await api.client.post(FORGOT, json={"identifier": email})
        assert r.status_code == 200 and _quota(r)[1] == remaining, r.text
        if remaining:
            api.container.clock.advance(seconds=61)
    reset = int((first_at + timedelta(hours=1)).timestamp())

    # Right after the fifth send both limits apply: the later one (the hour) is the wait.
    r = await api.client.post(FORGOT, json={"identifier": email})
    assert r.status_code == 429 and r.json()["detail"] == "Too many requests; try again later."
    limit, remaining, reset_header = _quota(r)
    assert (limit, remaining) == (5, 0) and abs(reset_header - reset) <= 2
    wait = int(r.headers["retry-after"])
    assert 3600 - 4 * 61 - 2 <= wait <= 3600 - 4 * 61 + 2

    api.container.clock.advance(seconds=wait)  # the first send has left the window: one slot again
    r = await api.client.post(FORGOT, json={"identifier": email})
    assert r.status_code == 200 and _quota(r)[:2] == (5, 0)
    assert len(api.mailbox.for_address(email)) == 1 + 6  # sign-up code, then six reset codes


async def test_resend_right_after_sign_up_leaves_four_of_five(api, email):
    await api.register(email)
    r = await api.client.post("/auth/resend-otp", json={"identifier": email})
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-limit"] == "5" and r.headers["x-ratelimit-remaining"] == "4"
