"""The chat page at / in a real headless browser (Debian's chromium, driven through its chromedriver):
it asks for the API key the server wants, streams a reply into the page (the text `minimind.generate`
gives for the same greedy request), shows the server's errors, and starts over."""

from __future__ import annotations

import shutil

import pytest

from serve_helpers import API_KEY

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and its chromedriver: `make setup` installs them (Debian: apt-get install chromium "
           "chromium-driver)")

COUNT_UPDATES = """
window.updates = 0;
new MutationObserver(() => window.updates++).observe(document.getElementById("log"),
                                                      {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1000,760"):
        options.add_argument(arg)  # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # a given driver: nothing downloaded
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_the_page_streams_a_reply_and_starts_over(browser, server, reference, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    find = lambda css: browser.find_element(By.CSS_SELECTOR, css)  # noqa: E731
    browser.get(server.url + "/")
    try:
        wait.until(ec.visibility_of_element_located((By.ID, "key-row")))  # /v1/models said 401
        assert "needs an API key" in find("#model-info").text
        find("#api-key").send_keys(API_KEY, Keys.TAB)
        wait.until(ec.text_to_be_present_in_element((By.ID, "model-info"), "tiny · context 256 tokens"))
        assert not find("#thinking-row").is_displayed()  # ChatML cannot think

        for field, value in (("#temperature", "0"), ("#max-tokens", "24")):
            find(field).clear()
            find(field).send_keys(value)
        browser.execute_script(COUNT_UPDATES)
        find("#input").send_keys("the red cat sees a dog", Keys.ENTER)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".message.assistant[data-state=done]")))

        assert find(".message.user").text == "the red cat sees a dog"
        shown = find(".message.assistant .content").get_attribute("textContent")
        expected = reference.reply([{"role": "user", "content": "the red cat sees a dog"}], temperature=0.0,
                                   max_new_tokens=24)
        assert shown.strip() == expected
        assert browser.execute_script("return window.updates") > 5  # the reply arrived piece by piece
        assert "tokens/s" in find(".message.assistant .stats").text

        find("#max-tokens").clear()
        find("#max-tokens").send_keys("1000")
        find("#input").send_keys("and then?", Keys.ENTER)
        error = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".message.error")))
        assert "max_tokens=1000 is more than this server allows (256)" in error.text
        assert len(browser.find_elements(By.CSS_SELECTOR, ".message.user")) == 2

        find("#reset").click()
        assert browser.find_elements(By.CSS_SELECTOR, ".message") == []
        assert find("#empty").is_displayed()
    except Exception:
        browser.save_screenshot(str(tmp_path / "page.png"))  # what the page showed, for the failure report
        raise
