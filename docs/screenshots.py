"""Remake the README's viewer screenshots (docs/viewer-tree.png, docs/viewer-transcript.png)
from the browser tests' demo repository: ``python docs/screenshots.py`` (needs chromium,
chromium-driver and the test extra)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_viewer_browser import build_demo, make_driver, running_server  # noqa: E402


def main() -> int:
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory(prefix="sessionsgit-shots-") as tmp:
        repo = Path(tmp) / "repo"
        build_demo(repo)
        with running_server(repo) as url:
            driver = make_driver(str(Path(tmp) / "profile"), size="900,960")
            try:
                driver.get(url + "tree")
                driver.find_element(By.ID, "fork-tree").screenshot(
                    str(ROOT / "docs" / "viewer-tree.png"))
                driver.get(url + "session?id=porto-trip")
                driver.save_screenshot(str(ROOT / "docs" / "viewer-transcript.png"))
            finally:
                driver.quit()
    print("wrote docs/viewer-tree.png and docs/viewer-transcript.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
