"""The grievance clock: 30 days to resolve, then the RBI Ombudsman; a closed grievance takes no reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.grievances import Grievance, GrievanceCategory, GrievanceClosed, GrievanceStatus

OPENED = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _open() -> Grievance:
    return Grievance.open(user_id="u", loan_id="l", category=GrievanceCategory.CHARGES, text="A fee I did not expect.",
                          now=OPENED)


def test_escalation_opens_only_after_the_30th_day_while_unresolved():
    g = _open()
    assert g.due_at == OPENED + timedelta(days=30)
    assert not g.escalation_available(g.due_at) and g.days_open(g.due_at) == 30
    assert g.escalation_available(g.due_at + timedelta(seconds=1))
    replied = g.reply("Checking.", by="s", now=OPENED + timedelta(days=3))
    assert replied.status is GrievanceStatus.RESPONDED and replied.escalation_available(OPENED + timedelta(days=31))
    closed = replied.reply("Refunded.", by="s", now=OPENED + timedelta(days=40), close=True)
    assert closed.status is GrievanceStatus.CLOSED and not closed.escalation_available(OPENED + timedelta(days=90))
    assert closed.days_open(OPENED + timedelta(days=90)) == 40  # the clock stops at closing
    assert [r.closing for r in closed.replies] == [False, True]


def test_a_closed_grievance_takes_no_reply():
    closed = _open().reply("Done.", by="s", now=OPENED, close=True)
    with pytest.raises(GrievanceClosed):
        closed.reply("More.", by="s", now=OPENED)
