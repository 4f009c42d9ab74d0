"""Screenshots of the inspectors' pages: the list at 1400 px and at 400 px (a phone), and a route sheet.

    .venv/bin/python tests/app/screens.py [docs/screenshots]

serves the app on a free loopback port (a fresh SQLite file, the committed models and sample data)
and writes the three PNGs into the folder given (default docs/screenshots/, linked from the
README). tests/app/test_inspector_browser.py takes the same screenshots into a temporary folder.
Needs Debian's chromium (./scripts/test installs it).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from app_helpers import serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIST_PAGE = "/inspector?city=chicago&date=2014-08-30&limit=25"
PHONE_PAGE = "/inspector?city=chicago&date=2014-08-30&limit=6"  # whole page, a phone's few screens
ROUTES_PAGE = "/inspector/routes?city=chicago&date=2014-08-30&inspectors=4&per_inspector=8"
SHOTS = ("inspector-1400.png", "inspector-400.png", "route-sheet-400.png", "route-sheet-1400.png")


def take(base: str, folder: Path, browser: Any) -> dict[str, Path]:
    """The screenshots of the pages served at `base`, written into `folder`; their paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in SHOTS}
    wide = browser.new_page(viewport={"width": 1400, "height": 1000})
    wide.goto(f"{base}{LIST_PAGE}", timeout=120_000)
    wide.screenshot(path=str(paths["inspector-1400.png"]), full_page=True)
    phone = browser.new_page(viewport={"width": 400, "height": 900})
    phone.goto(f"{base}{PHONE_PAGE}", timeout=120_000)
    phone.screenshot(path=str(paths["inspector-400.png"]), full_page=True)
    phone.goto(f"{base}{ROUTES_PAGE}", timeout=120_000)
    sheet = phone.locator("a.route-sheet").first.get_attribute("href")
    phone.goto(f"{base}{sheet}", timeout=60_000)
    phone.screenshot(path=str(paths["route-sheet-400.png"]), full_page=True)
    wide.goto(f"{base}{sheet}", timeout=60_000)
    wide.emulate_media(media="print")  # the sheet as it prints
    wide.screenshot(path=str(paths["route-sheet-1400.png"]), full_page=True)
    wide.close()
    phone.close()
    return paths


def main(folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    from app.main import create_app
    from app.platform.settings import Settings

    if CHROMIUM is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            database_url=f"sqlite:///{scratch}/lists.sqlite3",
            keys_file=Path(scratch) / "partner-keys.json",
            daily_precompute=False,
        )
        with serving(create_app(settings)) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for name, path in take(base, folder, browser).items():
                print(f"{path} ({path.stat().st_size:,} bytes)" if re.search(r"png$", name) else path)
            browser.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots"))
