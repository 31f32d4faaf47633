"""The viewer in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``)
driven by selenium against ``sessionsgit serve`` on 127.0.0.1. Skipped with the reason when
Chromium, its driver or selenium is missing; under CI (``CI=true``) that is a failure instead.
With ``SESSIONSGIT_SCREENSHOTS=dir`` each page visited is saved there as a PNG."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from sessionsgit import GitSessionStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")
PNG = ("iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAH0lEQVR42mNkYPhfz0AEYBxVSF+FjKMKR"
       "xWOKqSjQgBtzBgR2lhqkgAAAABJRU5ErkJggg==")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    try:
        import flask  # noqa: F401
    except ImportError:
        return "flask is not installed (the serve extra)"
    if CHROMIUM is None or DRIVER is None:
        return "chromium and chromedriver are not installed (apt-get install -y chromium " \
               "chromium-driver)"
    return None


def require_browser(missing: str | None = None) -> None:
    """Skip (locally) or fail (under ``CI=true``) when the browser stack is missing."""
    reason = missing if missing is not None else _missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {reason}")
        pytest.skip(reason)


def make_driver(profile: str, size: str = "1000,700") -> Any:
    """Headless Chromium through Debian's chromedriver (never a downloaded one), with a fresh
    profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={size}")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(10)  # a form's navigation may finish after click() returns
    return driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    profile = tempfile.mkdtemp(prefix="sessionsgit-chromium-")
    driver = make_driver(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_demo(repo: Path) -> None:
    """A small repository of trip plans: a transcript with code, a tool call and result, an
    image and a ``<script>``; two forks of it and an unrelated session."""
    store = GitSessionStore(repo)
    store.save("porto-trip", [
        {"role": "system", "content": "You plan trips."},
        {"role": "user", "content": "Make me a Porto itinerary for two days."},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Day 1: Ribeira, the Dom Luís I bridge, port cellars.\n"
                                     "Day 2: Livraria Lello, then the coast at Foz.\n"
                                     "```python\nbudget = {'food': 60, 'trams': 10}\n```"},
            {"type": "tool_use", "id": "w1", "name": "weather", "input": {"city": "Porto"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "w1", "content": "18°C, sunny"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}]},
        {"role": "user", "content": "<script>window.pwned = 1; alert('pwned')</script> ok?"},
    ], {"label": "Porto itinerary"})
    store.fork("porto-trip", "porto-rainy", at=3, metadata={"label": "rainy-day variant"})
    store.save("porto-rainy", store.load("porto-rainy").messages + [
        {"role": "user", "content": "And if it rains?"},
        {"role": "assistant", "content": "Museums: Serralves and the Soares dos Reis."}])
    store.fork("porto-trip", "porto-food", at=2, metadata={"label": "food only"})
    store.save("lisbon", [{"role": "user", "content": "Three days in Lisbon, trams please."}],
               {"label": "Lisbon"})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``sessionsgit serve`` on a free port over a small repository of trip plans."""
    require_browser()
    repo = tmp_path_factory.mktemp("viewer") / "repo"
    build_demo(repo)
    with running_server(repo) as url:
        yield url, repo


@contextlib.contextmanager
def running_server(repo: Path) -> Iterator[str]:
    """``sessionsgit serve`` in a child process on a free port; yields its URL."""
    port = _free_port()
    log = tempfile.TemporaryFile()  # not a pipe: the server logs every request
    process = subprocess.Popen([sys.executable, "-m", "sessionsgit", "--repo", str(repo), "serve",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise AssertionError("sessionsgit serve did not start: " +
                                         log.read().decode(errors="replace"))
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def shot(driver: Any, name: str) -> None:
    folder = os.environ.get("SESSIONSGIT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def test_list_search_session_tree_and_fork(browser: Any, server: tuple[str, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, repo = server
    browser.get(url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
    assert len(rows) == 4
    assert "Lisbon" in rows[0].text  # newest first
    shot(browser, "list")

    box = browser.find_element(By.ID, "search-box")
    box.send_keys('"porto itinerary"')
    browser.find_element(By.ID, "search-button").click()
    hits = browser.find_elements(By.CSS_SELECTOR, "#hits .hit")
    assert hits and all("porto" in hit.text.lower() for hit in hits)
    assert browser.find_elements(By.CSS_SELECTOR, "#hits mark")
    shot(browser, "search")

    trip = [hit for hit in hits if "porto-trip" in hit.text]
    assert len(trip) == 1
    trip[0].find_element(By.TAG_NAME, "a").click()
    assert "highlight" in browser.find_element(By.ID, "m1").get_attribute("class")
    assert browser.find_element(By.ID, "transcript").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "pre code").text.startswith("budget =")
    image = browser.find_element(By.CSS_SELECTOR, ".kind-image img")
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 16

    browser.get(url + "session?id=porto-trip")
    transcript = browser.find_element(By.ID, "transcript").text
    assert "<script>window.pwned = 1; alert('pwned')</script> ok?" in transcript
    assert browser.execute_script("return window.pwned === undefined")
    shot(browser, "transcript")

    browser.find_element(By.ID, "nav-tree").click()
    tree = browser.find_element(By.ID, "fork-tree")
    assert len(tree.find_elements(By.CSS_SELECTOR, "circle")) == 4
    assert len(tree.find_elements(By.CSS_SELECTOR, "path.edge")) == 2
    assert "after message 3" in tree.text and "after message 2" in tree.text
    shot(browser, "tree")

    browser.get(url + "history?id=porto-rainy")
    shot(browser, "history")
    browser.find_element(By.ID, "diff-button").click()
    assert "2 added" in browser.find_element(By.ID, "diff-stat").text
    shot(browser, "diff")

    browser.get(url + "session?id=lisbon")
    browser.find_element(By.CSS_SELECTOR, "#m0 .fork-button").click()
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    # the page is replaced under the lookup while the fork's redirect loads: look again
    WebDriverWait(browser, 10, ignored_exceptions=(NoSuchElementException,
                                                   StaleElementReferenceException)).until(
        lambda b: b.find_element(By.ID, "session-id").text != "lisbon")
    new_id = browser.find_element(By.ID, "session-id").text
    assert new_id not in ("lisbon", "") and "Three days in Lisbon" in browser.find_element(
        By.ID, "transcript").text
    browser.get(url)
    assert new_id[:8] in browser.find_element(By.ID, "sessions").text
    browser.find_element(By.ID, "nav-tree").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#fork-tree circle")) == 5
    assert GitSessionStore(repo, create=False).load(new_id).metadata.parent_id == "lisbon"


def test_delete_and_restore_through_confirmation(browser: Any, server: tuple[str, Path]) -> None:
    from selenium.webdriver.common.by import By

    url, repo = server
    browser.get(url + "session?id=porto-food")
    browser.find_element(By.ID, "delete-link").click()
    assert "Yes, delete" in browser.find_element(By.ID, "confirm-button").text
    shot(browser, "confirm-delete")
    assert GitSessionStore(repo, create=False).exists("porto-food")  # not before confirming
    browser.find_element(By.ID, "confirm-button").click()
    assert "porto-food" not in browser.find_element(By.ID, "sessions").text
    assert not GitSessionStore(repo, create=False).exists("porto-food")
    browser.find_element(By.ID, "nav-trash").click()
    browser.find_element(By.LINK_TEXT, "Restore…").click()
    browser.find_element(By.ID, "confirm-button").click()
    assert browser.find_element(By.ID, "session-id").text == "porto-food"


def test_a_missing_browser_skips_locally_and_fails_under_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="chromium"):
        require_browser("chromium and chromedriver are not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI: chromium"):
        require_browser("chromium and chromedriver are not installed")
