"""The chat in a real headless browser: Debian's chromium + chromium-driver, driven by selenium.

Needs ``apt-get install chromium chromium-driver`` and ``pip install selenium``; skipped (with the reason)
when they are missing. Selenium is pointed at /usr/bin/chromedriver, so selenium-manager never
downloads anything. Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import REPO
from test_web import QUDS, XSS_QUESTION, reader_override, running

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: apt-get install chromium chromium-driver"),
    pytest.mark.skipif(not CHROMEDRIVER.exists(),
                       reason="no /usr/bin/chromedriver: apt-get install chromium-driver"),
]

selenium = pytest.importorskip("selenium", reason="selenium is not installed: pip install 'selenium>=4.20'")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ANSWERS = "#qa-chatbot .qa-answer:not(.qa-pending)"


@pytest.fixture(scope="module")
def app_url(article_index, tmp_path_factory, request):
    """The app over a copy of the article index, with an assistant that always answers (any reader)."""
    from qa import index as store
    from qa.assistant import Assistant

    path = tmp_path_factory.mktemp("browser") / "index"
    store.save(article_index, path)
    assistant = Assistant.load(path, no_answer_threshold=-1e9, **reader_override(request))
    assistant.reader  # load the reader before timing  # noqa: B018
    with running(assistant) as (url, _):
        yield url


@pytest.fixture()
def driver(tmp_path):
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=os.devnull)
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_window_size(1280, 1400)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def no_alert(browser) -> bool:
    try:
        browser.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def ask(browser, question: str, answers_before: int, timeout: float = 180) -> float:
    """Type ``question``, press Enter and wait for one more rendered answer; the seconds it took."""
    box = WebDriverWait(browser, 60).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#qa-question textarea")))
    box.click()
    box.send_keys(question)
    started = time.perf_counter()
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, timeout).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ANSWERS)) > answers_before)
    return time.perf_counter() - started


def test_chat_in_a_real_browser(app_url, driver):
    driver.get(app_url)
    WebDriverWait(driver, 90).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#qa-question textarea")))

    elapsed = ask(driver, QUDS, 0)
    answer = driver.find_elements(By.CSS_SELECTOR, ANSWERS)[-1]
    marks = answer.find_elements(By.CSS_SELECTOR, "mark.qa-mark")
    assert marks, "the answer shows its span highlighted with <mark>"
    assert marks[0].text.strip()
    assert "confidence" in answer.text and "characters" in answer.text and "[1]" in answer.text
    print(f"\nsubmit-to-render time: {elapsed:.2f} s (question typed, Enter pressed, answer with <mark> rendered)")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "browser-chat.png"))

    # An injected script in the question shows as text and runs nothing.
    ask(driver, XSS_QUESTION, 1)
    chat = driver.find_element(By.CSS_SELECTOR, "#qa-chatbot")
    assert "<script>alert(1)</script>" in chat.text
    assert not chat.find_elements(By.CSS_SELECTOR, "script")
    assert not chat.find_elements(By.CSS_SELECTOR, "img[src='x']")
    assert no_alert(driver)

    # The Sources tab shows the article with the cited spans highlighted in place.
    tab = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text.strip() == "Sources")
    tab.click()
    WebDriverWait(driver, 30).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#qa-source-view mark.qa-mark"))
    view = driver.find_element(By.CSS_SELECTOR, "#qa-source-view")
    assert "Iran" in view.text
    # The text is scrolled so that the span cited last is in view.
    in_view = """
        const box = document.querySelector('#qa-source-view .qa-source-text');
        const mark = box.querySelector('mark.qa-focus') || box.querySelector('mark');
        const b = box.getBoundingClientRect(), m = mark.getBoundingClientRect();
        return m.top >= b.top && m.bottom <= b.bottom;
    """
    WebDriverWait(driver, 10).until(lambda b: b.execute_script(in_view))
    driver.save_screenshot(str(ARTIFACTS / "browser-sources.png"))

    severe = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"
              and "favicon" not in entry.get("message", "")]
    assert not severe, severe


# --------------------------------------------------------------------------------------------------
# A shared deployment: an anonymous browser cannot change the index


EDIT_TOKEN = "browser-editor-token-0123456789"

WRITE_CALLS_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const out = {};
  for (const name of ["add_sources", "remove_source", "reload"]) {
    const r = await fetch(`gradio_api/call/${name}`, {method: "POST", headers: {"Content-Type": "application/json"},
                                                      body: JSON.stringify({data: [null, null]})});
    out[name] = r.status;
  }
  const form = new FormData();
  form.append("files", new Blob(["The banana festival opened in Quito."]), "evil.txt");
  out.upload = (await fetch("gradio_api/upload", {method: "POST", body: form})).status;
  done(out);
})().catch((e) => done({error: String(e)}));
"""


@pytest.fixture()
def shared_apps(article_index, tmp_path, request):
    """The same index served twice with the rules of 0.0.0.0: read-only (the default), and with an editor token."""
    from qa import index as store
    from qa.access import Access
    from qa.assistant import Assistant

    path = tmp_path / "shared" / "index"
    store.save(article_index, path)
    assistant = Assistant.load(path, no_answer_threshold=-1e9, **reader_override(request))
    read_only = Access.from_env("0.0.0.0", {})
    with_token = Access.from_env("0.0.0.0", {"QA_EDIT_TOKEN": EDIT_TOKEN})
    with running(assistant, read_only) as (off_url, _), running(assistant, with_token) as (token_url, _):
        yield path, off_url, token_url


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _page_says(browser, text: str, timeout: float = 30) -> None:
    WebDriverWait(browser, timeout).until(lambda b: text in b.find_element(By.TAG_NAME, "body").text)


def test_an_anonymous_browser_cannot_change_the_index_of_a_shared_app(shared_apps, driver):
    path, off_url, token_url = shared_apps
    before = _snapshot(path)

    # Read-only (the default on 0.0.0.0): no Index tab, no file input, and the write endpoints do not exist.
    driver.get(off_url)
    WebDriverWait(driver, 90).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#qa-question textarea")))
    tabs = [b.text.strip() for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']")]
    assert "Chat" in tabs and "Index" not in tabs
    assert not driver.find_elements(By.CSS_SELECTOR, "input[type='file']")
    statuses = driver.execute_async_script(WRITE_CALLS_JS)
    assert "error" not in statuses, statuses
    assert all(code >= 400 for code in statuses.values()), statuses
    assert statuses["upload"] == 413
    assert _snapshot(path) == before

    # With an editor token: the Index tab asks for it; without it, or with a wrong one, nothing changes.
    driver.get(token_url)
    WebDriverWait(driver, 90).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#qa-question textarea")))
    tab = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text.strip() == "Index")
    tab.click()
    reload = WebDriverWait(driver, 30).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#qa-reload")))
    reload.click()
    _page_says(driver, "editing needs the editor token")
    token = driver.find_element(By.CSS_SELECTOR, "#qa-edit-token input, #qa-edit-token textarea")
    token.send_keys("not-the-editor-token")
    driver.find_element(By.CSS_SELECTOR, "#qa-urls textarea").send_keys("https://example.com/evil.html")
    driver.find_element(By.CSS_SELECTOR, "#qa-add").click()
    _page_says(driver, "the editor token is wrong")
    assert _snapshot(path) == before
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "browser-refused-write.png"))

    # The editor's token is taken (nothing on disk changed, so the reload says so).
    token.clear()
    token.send_keys(EDIT_TOKEN)
    reload.click()
    WebDriverWait(driver, 30).until(
        lambda b: "has not changed" in b.find_element(By.CSS_SELECTOR, "#qa-index-report").text)
    assert _snapshot(path) == before
    assert no_alert(driver)
