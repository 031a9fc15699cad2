"""The console with the keyboard alone, in a real Chromium: an auditor signs in, opens a case from the
queue, claims it and rejects it with Tab, Space and Enter only, and every control reached shows where
the focus is. (Fixtures and skip reason: tests/e2e/test_console_browser.py.)"""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import PASSWORD
from tests.e2e.test_console_browser import (  # noqa: F401 - fixtures used by name
    WAIT,
    artifacts,
    browser,
    console_server,
    pytestmark,
    shot,
    wait_for,
)

try:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - skipped by pytestmark
    pass


def tab_to(driver: Any, matches: Any, limit: int = 120) -> Any:
    """Press Tab until the focused element satisfies `matches`; an element reached by Tab must show a focus
    ring (one focused on arrival, `autofocus`, is checked only for being focused: headless Chromium draws
    no ring before a key is pressed)."""
    for pressed in range(limit):
        element = driver.switch_to.active_element
        if matches(element) and pressed == 0:
            return element
        if matches(element):
            outline = driver.execute_script(
                "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth];", element)
            assert outline[0] != "none" and outline[1] != "0px", f"no visible focus on {element.get_attribute('outerHTML')[:120]}"
            return element
        element.send_keys(Keys.TAB)
    raise AssertionError(f"Tab never reached the control on {driver.current_url}")


def by_id(name: str) -> Any:
    return lambda element: element.get_attribute("id") == name


def test_an_auditor_works_a_case_with_the_keyboard_alone(console_server, browser, artifacts):  # noqa: F811
    server, driver = console_server, browser
    ravi = server["auditors"][0]
    first = server["cases"][0]

    driver.get(f"{server['base']}/console/login")
    wait_for(driver, "#identifier")
    driver.find_element("tag name", "body").send_keys(Keys.TAB)  # into the page from the address bar
    tab_to(driver, by_id("identifier")).send_keys(ravi)
    tab_to(driver, by_id("password")).send_keys(PASSWORD + Keys.ENTER)
    code = wait_for(driver, "#code")
    deadline = time.monotonic() + WAIT
    while not server["mailbox"].for_address(ravi) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert driver.switch_to.active_element == code  # the code field has the focus on arrival
    code.send_keys(server["mailbox"].last_code(ravi) + Keys.ENTER)
    wait_for(driver, "form[aria-label='Filter the queue']")

    # From the queue to the first case: links are reached in order and opened with Enter.
    link = tab_to(driver, lambda e: (e.get_attribute("href") or "").endswith(f"/console/kyc/{first['kyc_id']}"))
    link.send_keys(Keys.ENTER)
    wait_for(driver, "#claim-button")
    tab_to(driver, by_id("claim-button")).send_keys(Keys.ENTER)
    WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "You hold this case" in d.find_element("id", "claim").text)  # the old page may go mid-read

    # Reject: the radio and two reasons with Space, the messages typed, the form sent with Enter.
    tab_to(driver, lambda e: e.get_attribute("name") == "decision").send_keys(Keys.ARROW_DOWN)  # approve → reject
    WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element("id", "decision-reject").is_selected())
    for reason in ("face_mismatch", "liveness_failed"):
        tab_to(driver, lambda e, r=reason: e.get_attribute("value") == r).send_keys(Keys.SPACE)
    tab_to(driver, by_id("internal_note")).send_keys("Keyboard review; ticket KB-7")
    tab_to(driver, by_id("customer_message")).send_keys("Please take a new selfie in daylight.")
    shot(driver, artifacts, "20-keyboard-decision")
    tab_to(driver, by_id("decide-button")).send_keys(Keys.ENTER)
    assert "Case rejected" in wait_for(driver, "#notice").text
