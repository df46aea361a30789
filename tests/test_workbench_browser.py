"""The workbench in a real browser: Debian's headless Chromium driven by Selenium through Debian's
chromedriver (no browser is downloaded at run time). A coder signs in with its link, codes 10 documents with
the keyboard, reloads and sees its progress; the database holds exactly those codes. A lead's dashboard shows
the overlap's agreement. With ANNOTATOR_SCREENSHOTS=DIR the pages are saved there (`make screenshots` refreshes
the README's pictures)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from annotator.project import Project
from annotator.services.workbench import accounts
from annotator.services.workbench.assign import assign
from tests.conftest import coder_codes, import_docs
from tests.workbench_server import serving

pytestmark = [pytest.mark.slow, pytest.mark.both_databases]


def _driver(tmp_path: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        if os.environ.get("ANNOTATOR_SKIP_BROWSER") == "1":
            pytest.skip("ANNOTATOR_SKIP_BROWSER=1 and no chromium/chromedriver")
        pytest.fail(
            "chromium and chromedriver are needed: apt-get install -y chromium chromium-driver (`make test` does "
            "it as root), or set ANNOTATOR_SKIP_BROWSER=1 to skip this test"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def _shot(driver, name: str) -> None:
    folder = os.environ.get("ANNOTATOR_SCREENSHOTS")
    if folder:
        target = Path(__file__).resolve().parent.parent / folder  # relative: to the repository (tests chdir)
        target.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(target / name))


def test_a_coder_codes_ten_documents_with_the_keyboard(project: Project, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    words = ["a gripping, warm film", "dull and far too long", "the cast is wonderful", "I wanted to leave"]
    texts = {f"d{i:02d}": f"{words[i % 4]} (review {i}) <b>not bold</b>" for i in range(40)}
    import_docs(project, tmp_path, texts)
    lead = accounts.add_coder(project, "lena", "lead")
    alice = accounts.add_coder(project, "alice")
    accounts.add_coder(project, "bob")
    assign(project, "alice,bob", n=15, overlap=5, seed=4)
    driver = _driver(tmp_path)
    try:
        with serving(project) as base:
            driver.get(base + alice.path)
            assert "alice (coder)" in driver.find_element(By.TAG_NAME, "header").text
            assert "<b>not bold</b>" in driver.find_element(By.ID, "text").text  # markup in a text is text
            _shot(driver, "workbench-coding.png")
            coded: dict[str, str] = {}
            for k in range(10):
                doc = driver.find_element(By.NAME, "document").get_attribute("value")
                key, label = ("1", "negative") if k % 3 else ("2", "positive")
                body = driver.find_element(By.TAG_NAME, "body")
                body.send_keys(key)
                coded[str(doc)] = label
                _wait_for_progress(driver, k + 1)
            driver.refresh()
            assert driver.find_element(By.ID, "progress").text.startswith("10 of 15 coded")
            assert coder_codes(project, "alice") == coded
            body = driver.find_element(By.TAG_NAME, "body")
            body.send_keys("z")  # undo the last code
            _wait_for_progress(driver, 9)
            assert len(coder_codes(project, "alice")) == 9
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert not errors, errors  # no script error and no Content-Security-Policy violation
            driver.delete_all_cookies()
            driver.get(base + lead.path)
            driver.get(base + "/dashboard")
            table = driver.find_element(By.ID, "coders").text
            assert "alice" in table and "9" in table
            _shot(driver, "workbench-dashboard.png")
    finally:
        driver.quit()


def _go(driver, element) -> None:
    """Click ``element`` and wait until the page it leads to has replaced the one it was on."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def replaced(_driver: object) -> bool:
        try:
            element.is_enabled()
        except WebDriverException:  # stale; or chromium's "node does not belong to the document" mid-swap
            return True
        return False

    element.click()
    WebDriverWait(driver, 20).until(replaced)


def _wait_for_progress(driver, done: int) -> None:
    """Wait until the page says ``done`` coded. While the next page replaces this one, reading an element can
    fail in several ways (stale, or chromedriver's "node does not belong to the document"): read again."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.find_element(By.ID, "progress").text.startswith(f"{done} of ")
    )


def test_a_lead_reviews_a_disagreement_and_adjudicates_two_items(
    project: Project, tmp_path: Path, coded
) -> None:
    from selenium.webdriver.common.by import By

    from annotator.services.validation import validate
    from annotator.services.workbench import adjudicate, review

    run_id = coded["run"]
    adjudicate.open_adjudication(project, "alice,bob")
    driver = _driver(tmp_path)
    try:
        with serving(project) as base:
            driver.get(base + coded["lead"].path)
            driver.get(base + "/review")
            _go(driver, driver.find_element(By.LINK_TEXT, "review"))
            assert "documents agree" in driver.find_element(By.ID, "units").text
            _shot(driver, "workbench-review.png")
            cells = driver.find_elements(By.CSS_SELECTOR, "#matrix td.disagree a")
            assert cells, "no disagreement cell"
            _go(driver, cells[0])
            _go(driver, driver.find_element(By.CSS_SELECTOR, "#cell a"))
            doc = driver.find_element(By.NAME, "doc").get_attribute("value")
            driver.find_element(By.CSS_SELECTOR, 'input[value="model error"]').click()
            driver.find_element(By.NAME, "memo").send_keys("the model misses the irony")
            _go(driver, driver.find_element(By.ID, "save-note"))
            assert driver.find_element(By.CSS_SELECTOR, 'input[value="model error"]').is_selected()
            [row] = review.note_rows(project)
            assert row["document"] == doc and row["tags"] == "model error"
            driver.get(base + "/adjudicate")
            before = driver.find_element(By.ID, "adjudication-state").text
            assert "4 waiting" in before
            for _ in range(2):
                driver.find_element(By.NAME, "note").send_keys("decided in the browser")
                _go(driver, driver.find_element(By.CSS_SELECTOR, '#adjudicate-form button[value="negative"]'))
            assert "2 adjudicated, 2 waiting" in driver.find_element(By.ID, "adjudication-state").text
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert not errors, errors
    finally:
        driver.quit()
    [entry] = validate(project, "adjudicated", split="dev", n_boot=50).runs
    assert entry["run_id"] == run_id and entry["n_gold"] == 18
