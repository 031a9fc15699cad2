"""An admin runs the loan book in a real Chromium (Debian's `chromium` and `chromedriver`, Selenium)
against a real `kycflow serve`: signs in with the mailed code, reads the dashboard, approves and
disburses a loan with a payout reference, retries a failed job and finds the borrower. Screenshots
of each page go beside the auditor test's ($KYCFLOW_ARTIFACTS or the test's tmp dir)/console-screens."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_console_browser import (  # noqa: F401  (fixtures)
    CHROMEDRIVER,
    CHROMIUM,
    WAIT,
    artifacts,
    browser,
    shot,
    sign_in,
    wait_for,
    webdriver,
)
from tests.e2e.test_server_process import _env, start_server

pytestmark = pytest.mark.skipif(
    webdriver is None or not CHROMIUM or not CHROMEDRIVER,
    reason="browser tests need Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver) "
           "and selenium; `make test` installs them where it runs as root")
if webdriver is not None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

ADMIN = "anil.admin@example.com"


@pytest.fixture
def book_server(tmp_path: Path, smtp: Any) -> Iterator[dict[str, Any]]:
    mailbox, port = smtp
    env = _env(tmp_path / "var", SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), ML_PRELOAD="false",
               JOB_POLL_SECONDS="0.2")
    with start_server(tmp_path, env) as (base, _proc):
        seeded = subprocess.run([sys.executable, "-m", "tests.console_book", ADMIN], env=env,
                                cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=120)
        assert seeded.returncode == 0, seeded.stderr
        yield {"base": base, "mailbox": mailbox, **json.loads(seeded.stdout.splitlines()[-1])}


def nav(driver: Any, words: str) -> None:
    """Follow a header link, as a person would."""
    driver.find_element(By.CSS_SELECTOR, "nav.sections").find_element(By.LINK_TEXT, words).click()


def notice(driver: Any) -> str:
    return str(wait_for(driver, "#notice").text)


def test_an_admin_approves_and_disburses_a_loan_and_retries_a_failed_job(book_server, browser, artifacts):  # noqa: F811
    server, driver = book_server, browser
    sign_in(driver, server, ADMIN)

    nav(driver, "Dashboard")
    wait_for(driver, "svg#trend")
    assert "Personal Loan" in driver.find_element(By.ID, "loan-product").text
    shot(driver, artifacts, "10-admin-dashboard")

    # The application waits in the loan book; approve it from its row.
    nav(driver, "Loans")
    row = wait_for(driver, f"tr[data-loan-id='{server['loan_id']}']")
    assert "₹2,50,000.00" in row.text and "Home renovation" in row.text and "Kavya Menon" in row.text
    shot(driver, artifacts, "11-admin-loans-applied")
    row.find_element(By.CSS_SELECTOR, "button.approve").click()
    assert "The loan is approved" in notice(driver)

    # Disburse it with the bank's payout reference (typed, then the button reached by keyboard).
    Select(driver.find_element(By.ID, "status")).select_by_visible_text("Approved")
    driver.find_element(By.ID, "apply-filters").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains("status=APPROVED"))
    payout = wait_for(driver, f"#payout-{server['loan_id']}")
    payout.send_keys("UTR20261206000042")
    shot(driver, artifacts, "12-admin-loans-approved")
    payout.submit()
    assert "The loan is disbursed" in notice(driver)
    shot(driver, artifacts, "13-admin-loan-disbursed")
    Select(driver.find_element(By.ID, "status")).select_by_visible_text("Disbursed")
    driver.find_element(By.ID, "apply-filters").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains("status=DISBURSED"))
    disbursed = wait_for(driver, f"tr[data-loan-id='{server['loan_id']}']").text
    assert "UTR20261206000042" in disbursed and "CURRENT" in disbursed  # a running loan's class
    shot(driver, artifacts, "13b-admin-loans-disbursed")

    # A failed job, retried.
    nav(driver, "Jobs")
    job = wait_for(driver, f"tr[data-job-id='{server['job_id']}']")
    assert "RuntimeError: upstream down" in job.text
    shot(driver, artifacts, "14-admin-jobs-failed")
    job.find_element(By.CSS_SELECTOR, "button.retry").click()
    assert "queued again" in notice(driver)
    assert not driver.find_elements(By.CSS_SELECTOR, f"tr[data-job-id='{server['job_id']}']")

    # The borrower, found by email, with the loan on their page.
    nav(driver, "Users")
    wait_for(driver, "#q").send_keys(server["borrower"])
    driver.find_element(By.ID, "find").click()
    # The page before the search lists users too: wait for the answer to the search, not an old link.
    WebDriverWait(driver, WAIT).until(ec.url_contains("q="))
    found = wait_for(driver, "#users a.open")
    shot(driver, artifacts, "15-admin-users")
    found.click()
    assert "Disbursed" in wait_for(driver, "#loans").text
    shot(driver, artifacts, "16-admin-user")

    nav(driver, "Dashboard")
    assert "₹2,50,000.00" in wait_for(driver, "#totals").text
    heights = [int(r.get_attribute("height")) for r in driver.find_elements(By.CSS_SELECTOR, "svg#trend rect.bar-disbursals")]
    assert len(heights) == 30 and heights[-1] > 0  # today's disbursal drawn, the last day of the trend
    shot(driver, artifacts, "17-admin-dashboard-after")
    nav(driver, "Webhooks")
    wait_for(driver, "#empty")
    shot(driver, artifacts, "18-admin-webhooks")
