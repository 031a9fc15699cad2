"""The console shows each case's verification level: in the queue, on the case page with an approval's
validity (periodic re-KYC), and on a step-up case a link to the approved case it builds on."""

from __future__ import annotations

import re

from tests.conftest import bearer
from tests.console_cases import submitted_case
from tests.integration.lending_helpers import relogin
from tests.integration.test_console import Console, case_doc


async def test_the_console_shows_levels_validity_and_what_a_step_up_builds_on(api_factory):
    api = await api_factory(job_workers=0)
    console = Console(api)
    await console.staff("auditor")
    case = await submitted_case(api.container)
    row = re.search(rf'<tr data-kyc-id="{case["kyc_id"]}">.*?</tr>', (await console.get("/console/kyc")).text, re.S)
    assert row and 'class="level">standard<' in row.group(0)

    auditor = bearer(await api.staff("auditor"))
    assert (await api.client.put(f"/kyc/{case['kyc_id']}/approve", headers=auditor, json={})).status_code == 200
    until = (await case_doc(api, case["kyc_id"]))["decision"]["valid_until"]
    page = (await console.get(f"/console/kyc/{case['kyc_id']}")).text
    assert 'id="level">standard<' in page and f'id="valid-until">{until:%Y-%m-%d}<' in page
    assert 'id="step-up"' not in page

    who = await relogin(api, {"email": case["email"]})
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "full"})
    assert r.status_code == 201, r.text
    page = (await console.get(f"/console/kyc/{r.json()['kyc_id']}")).text
    assert 'id="level">full<' in page and 'id="valid-until"' not in page
    step_up = re.search(r'<span[^>]*id="step-up".*?</span>', page, re.S)
    assert step_up and f'href="/console/kyc/{case["kyc_id"]}"' in step_up.group(0) and "standard" in step_up.group(0)
