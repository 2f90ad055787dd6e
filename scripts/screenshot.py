"""Take docs/chat.png: start the chat on a free loopback port, ask one question in headless Chromium, capture it.

    .venv/bin/python scripts/screenshot.py [--question "..."] [--out docs/chat.png]

Needs Debian's chromium and chromium-driver (``apt-get install chromium chromium-driver``) and selenium (in the
``test`` extra). Selenium is pointed at /usr/bin/chromedriver, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--hide-scrollbars")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, timeout: float) -> subprocess.Popen:
    """``app.py`` on ``port``, once it says where the chat is."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                raise SystemExit(f"app.py exited with status {proc.returncode}") from None
            continue
        print(line, end="", file=sys.stderr)
        if "the chat is at" in line:
            return proc
    proc.terminate()
    raise SystemExit(f"app.py did not start within {timeout:.0f} s")


def capture(url: str, question: str, out: Path, width: int, height: int) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="articleqa-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=os.devnull), options=options)
    try:
        browser.set_window_size(width, height)
        browser.get(url)
        box = WebDriverWait(browser, 90).until(
            EC.element_to_be_clickable((By.CSS_SELECTOR, "#qa-question textarea")))
        box.click()
        box.send_keys(question)
        box.send_keys(Keys.ENTER)
        WebDriverWait(browser, 180).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "#qa-chatbot .qa-answer:not(.qa-pending)"))
        time.sleep(1)  # let the page settle (fonts, scroll)
        out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(out))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--question", default="Who is the commander of the Quds Force?")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "chat.png")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for the app to start")
    args = parser.parse_args(argv)
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not Path(tool).exists():
            raise SystemExit(f"no {tool}: apt-get install chromium chromium-driver")
    port = free_port()
    app = start_app(port, args.timeout)
    try:
        capture(f"http://127.0.0.1:{port}/", args.question, args.out, args.width, args.height)
    finally:
        app.terminate()
        app.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
