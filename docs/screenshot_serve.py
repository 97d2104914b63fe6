"""Take the README's picture of the chat page: a served checkpoint, a few messages, headless Chromium.

    .venv/bin/python docs/screenshot_serve.py --ckpt outputs/runs/DATE/TIME            # writes docs/serve-page.png
    .venv/bin/python docs/screenshot_serve.py --ckpt RUN_DIR --message "A list is" --out page.png

Needs Debian's chromium and chromium-driver (`make setup` installs them); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from minimind.serve.process import ServerProcess

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--message", nargs="+", default=["What is a list?", "And a tuple?"])
    parser.add_argument("--temperature", default="0.7")
    parser.add_argument("--max-tokens", default="32")
    parser.add_argument("--system", default="")
    parser.add_argument("--size", default="1000,900")
    parser.add_argument("--out", type=Path, default=HERE / "serve-page.png")
    args = parser.parse_args()

    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        raise SystemExit("error: needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={args.size}"):
        options.add_argument(arg)
    with tempfile.TemporaryDirectory() as tmp, \
            ServerProcess([f"ckpt={args.ckpt}"], Path(tmp) / "server.log", cwd=tmp) as server:
        browser = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            browser.get(server.url + "/")
            wait = WebDriverWait(browser, 120)
            wait.until(ec.text_to_be_present_in_element((By.ID, "model-info"), "context"))
            for field, value in (("temperature", args.temperature), ("max-tokens", args.max_tokens),
                                 ("system", args.system)):
                browser.find_element(By.ID, field).clear()
                browser.find_element(By.ID, field).send_keys(value)
            for i, message in enumerate(args.message, 1):
                browser.find_element(By.ID, "input").send_keys(message, Keys.ENTER)
                wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".message.assistant .stats")) == i)
            browser.save_screenshot(str(args.out))
        finally:
            browser.quit()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
