"""The staff console in a real Chromium (Debian's `chromium` and `chromedriver`, driven by Selenium;
no browser download) against a real `kycflow serve` process on the embedded database, its mail
going to an SMTP sink. Screenshots of the main pages go to $KYCFLOW_ARTIFACTS (else the test's
tmp dir)/console-screens. Skipped, saying why, where Chromium or its driver is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.e2e.test_server_process import _env, start_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - the dev extra installs it
    webdriver = None

pytestmark = pytest.mark.skipif(
    webdriver is None or not CHROMIUM or not CHROMEDRIVER,
    reason="browser tests need Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver) "
           "and selenium; `make test` installs them where it runs as root")
WAIT = 30  # seconds: generous for a loaded 2-core machine; each wait ends as soon as the page is there


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    root = Path(os.environ.get("KYCFLOW_ARTIFACTS") or tmp_path)
    folder = root / "console-screens"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def console_server(tmp_path: Path, smtp: Any) -> Iterator[dict[str, Any]]:
    mailbox, port = smtp
    data_dir = tmp_path / "var"
    env = _env(data_dir, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), ML_PRELOAD="false", JOB_POLL_SECONDS="0.2")
    with start_server(tmp_path, env) as (base, _proc):
        auditors = ["ravi.auditor@example.com", "neha.auditor@example.com"]
        seeded = subprocess.run([sys.executable, "-m", "tests.console_cases", "3", *auditors], env=env,
                                cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=120)
        assert seeded.returncode == 0, seeded.stderr
        yield {"base": base, "mailbox": mailbox, "auditors": auditors, **json.loads(seeded.stdout.splitlines()[-1])}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1440,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, css: str) -> Any:
    try:
        return WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
    except TimeoutException:
        raise AssertionError(f"{css!r} never appeared on {driver.current_url}:\n{driver.page_source[-3000:]}") from None


def shot(driver: Any, folder: Path, name: str) -> None:
    """The whole page: the viewport is made as tall as the page first (a headless window stops at the
    screen's height, which cut long pages off)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1440, "height": max(900, min(height, 4000)), "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.save_screenshot(str(folder / f"{name}.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def submit(driver: Any, form_css: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"{form_css} button[type=submit]").click()


def sign_in(driver: Any, server: dict[str, Any], email: str, folder: Path | None = None) -> None:
    driver.get(f"{server['base']}/console/login")
    wait_for(driver, "#identifier").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    if folder:
        shot(driver, folder, "01-sign-in")
    sent = len(server["mailbox"].for_address(email))
    submit(driver, "form[action='/console/login']")
    code = wait_for(driver, "#code")
    deadline = time.monotonic() + WAIT
    while len(server["mailbox"].for_address(email)) == sent and time.monotonic() < deadline:
        time.sleep(0.1)
    code.send_keys(server["mailbox"].last_code(email))
    if folder:
        shot(driver, folder, "02-code")
    submit(driver, "form[action='/console/login/code']")
    wait_for(driver, "form[aria-label='Filter the queue']")


def sign_out(driver: Any) -> None:
    driver.find_element(By.CSS_SELECTOR, "form[action='/console/logout'] button").click()
    wait_for(driver, "#identifier")


def images_side_by_side(driver: Any) -> list[dict[str, Any]]:
    return driver.execute_script("""
        return [...document.querySelectorAll('#images img')].map(img => {
            const r = img.getBoundingClientRect();
            return {alt: img.alt, loaded: img.complete && img.naturalWidth > 0, x: r.left, y: r.top};
        });""")


def test_an_auditor_reviews_and_rejects_a_case_in_the_browser(console_server, browser, artifacts):
    server, driver = console_server, browser
    ravi, neha = server["auditors"]
    first, second, third = server["cases"]

    # A customer cannot sign in: the answer a wrong password gets.
    driver.get(f"{server['base']}/console/login")
    wait_for(driver, "#identifier").send_keys(first["email"])
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(driver, "form[action='/console/login']")
    assert "Invalid identifier or password." in wait_for(driver, "#error").text
    shot(driver, artifacts, "00-customer-refused")

    # Sign in with the mailed code; the queue, filtered as GET /kyc/pending filters.
    sign_in(driver, server, ravi, artifacts)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")) == 3
    Select(driver.find_element(By.ID, "risk_level")).select_by_visible_text("High")
    Select(driver.find_element(By.ID, "document_type")).select_by_visible_text("PAN card")
    Select(driver.find_element(By.ID, "sort")).select_by_visible_text("Highest risk first")
    driver.find_element(By.ID, "apply-filters").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains("risk_level=High"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    assert len(rows) == 3 and "✗ Selfie matches document photo" in rows[0].text
    shot(driver, artifacts, "03-queue-filtered")
    driver.find_element(By.ID, "risk_level")
    Select(driver.find_element(By.ID, "risk_level")).select_by_visible_text("Low")
    driver.find_element(By.ID, "apply-filters").click()
    assert "No case is waiting with these filters" in wait_for(driver, "#empty").text

    # Claim the second case (to hold it against Neha), then open the first and claim it.
    driver.get(f"{server['base']}/console/kyc/{second['kyc_id']}")
    wait_for(driver, "#claim-button").click()
    WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "You hold this case" in d.find_element(By.ID, "claim").text)
    driver.get(f"{server['base']}/console/kyc?risk_level=High")
    driver.find_element(By.CSS_SELECTOR, f"tr[data-kyc-id='{first['kyc_id']}'] a.open").click()
    wait_for(driver, "#claim-button").click()
    # The page before the claim goes while it is read: read the new one.
    WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "You hold this case" in d.find_element(By.ID, "claim").text)

    # Both images and the selfie side by side, loaded through the console's file route; checks with thresholds.
    WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: all(i["loaded"] for i in images_side_by_side(d)))
    images = images_side_by_side(driver)
    assert [i["alt"] for i in images] == ["Aadhaar (front)", "PAN card", "Selfie"]
    assert len({round(i["y"]) for i in images}) == 1 and images[0]["x"] < images[1]["x"] < images[2]["x"]
    checks = driver.find_element(By.ID, "checks").text
    assert "Threshold" in checks.splitlines()[0] or "THRESHOLD" in checks.splitlines()[0]
    assert "pass at ≥ 0.90, review at ≥ 0.75" in checks and "0.31" in checks and "Aadhaar (front)" in checks
    assert driver.find_elements(By.CSS_SELECTOR, "#fields tr.differs")
    shot(driver, artifacts, "04-case")

    # A form without its CSRF token is refused (the hidden field removed before sending).
    driver.execute_script("document.querySelector(\"#claim form input[name=csrf_token]\").remove()")
    driver.find_element(By.ID, "claim-button").click()
    assert "did not come from this console" in wait_for(driver, "#error").text
    shot(driver, artifacts, "05-csrf-refused")

    # Reject with two reasons, an internal note and a message for the customer.
    driver.get(f"{server['base']}/console/kyc/{first['kyc_id']}")
    wait_for(driver, "#decision-reject").click()
    for reason in ("face_mismatch", "liveness_failed"):
        driver.find_element(By.CSS_SELECTOR, f"input[name=reasons][value={reason}]").click()
    driver.find_element(By.ID, "internal_note").send_keys("Printed photo held to the camera; ticket FRAUD-4412")
    driver.find_element(By.ID, "customer_message").send_keys("Please take a new selfie in daylight.")
    shot(driver, artifacts, "06-decision-form")
    driver.find_element(By.ID, "decide-button").click()
    assert "Case rejected" in wait_for(driver, "#notice").text
    assert not driver.find_elements(By.CSS_SELECTOR, f"tr[data-kyc-id='{first['kyc_id']}']")
    shot(driver, artifacts, "07-queue-after-decision")

    # The customer's mail has the message, never the internal note.
    deadline = time.monotonic() + WAIT
    while not server["mailbox"].for_address(first["email"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    mails = server["mailbox"].for_address(first["email"])
    assert mails, "the customer was never mailed the decision"
    text = mails[-1].get_body(preferencelist=("plain",)).get_content()
    assert "Please take a new selfie in daylight." in text and "FRAUD-4412" not in text

    # Signing out ends the session: the old cookie, sent again, opens nothing.
    old_cookie = driver.get_cookie("kycflow_console")["value"]
    sign_out(driver)
    driver.add_cookie({"name": "kycflow_console", "value": old_cookie, "path": "/console"})
    driver.get(f"{server['base']}/console/kyc")
    assert "Your session ended" in wait_for(driver, ".notice").text
    assert httpx.get(f"{server['base']}/console/kyc", cookies={"kycflow_console": old_cookie}).status_code == 303

    # A second auditor sees who holds the claimed case and cannot decide it.
    sign_in(driver, server, neha)
    driver.get(f"{server['base']}/console/kyc/{second['kyc_id']}")
    assert "Ravi Auditor is working on this case" in wait_for(driver, "#claim").text
    assert not driver.find_elements(By.ID, "claim-button")
    driver.find_element(By.ID, "decision-reject").click()
    driver.find_element(By.CSS_SELECTOR, "input[name=reasons][value=other]").click()
    driver.find_element(By.ID, "decide-button").click()
    assert "Ravi Auditor is working on this case" in wait_for(driver, "#error").text
    shot(driver, artifacts, "08-held-by-another")
    assert third["kyc_id"]  # the third case stays waiting: the queue is not emptied by the test
