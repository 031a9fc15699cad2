"""Attacker's review, round 2 (issue 21): a receiver's odd `Retry-After` never breaks a delivery."""

from __future__ import annotations

from tests.integration.test_webhook_retries import _at, _attempts, _event, _run, _setup, receiver  # noqa: F401


async def test_a_retry_after_of_superscript_digits_is_ignored_not_a_crash(api_factory, receiver):  # noqa: F811
    # "²" is a digit to str.isdigit() but not to float(): the try must still be recorded and retried on schedule.
    api, admin, hook = await _setup(api_factory, receiver)
    api.container.webhooks.rand = lambda: 0.5
    receiver.statuses = [(503, {"retry-after": "²"}), (429, {"retry-after": "-30"}), 200]
    await _event(api)
    await _run(api)
    [first] = await _attempts(api, admin, hook)
    assert first["status_code"] == 503 and (_at(first["next_retry_at"]) - _at(first["at"])).total_seconds() == 5
    api.container.clock.advance(seconds=5)
    await _run(api)
    second = (await _attempts(api, admin, hook))[-1]
    assert second["status_code"] == 429 and (_at(second["next_retry_at"]) - _at(second["at"])).total_seconds() == 300
    assert len(receiver.requests) == 2
