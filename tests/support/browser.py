"""A headless Chromium (the distribution's package) for the one browser check: a page's rendered DOM and a
screenshot, and the screenshot's text read back by OCR (tesseract) where it is installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

# Virtual time lets the page's scripts run (mitmweb's UI fetches the flows, then the view) without a wall-clock wait.
BUDGET_MS = 10_000


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(url: str, *flags: str) -> str:
    browser = chromium()
    assert browser, "no Chromium installed"
    with tempfile.TemporaryDirectory(prefix="ai-proxy-chromium-") as profile:
        result = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={profile}", f"--virtual-time-budget={BUDGET_MS}", *flags, url],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
    return result.stdout


def dom(url: str) -> str:
    """The page's DOM once its scripts have run."""
    return _run(url, "--dump-dom")


def screenshot(url: str, out: Path, width: int = 1400, height: int = 1000) -> Path:
    _run(url, f"--window-size={width},{height}", f"--screenshot={out}")
    assert out.read_bytes().startswith(b"\x89PNG"), "no PNG written"
    return out


def ocr(png: Path) -> str | None:
    """The text in an image, by tesseract; None where tesseract is not installed."""
    if shutil.which("tesseract") is None:
        return None
    result = subprocess.run(["tesseract", str(png), "-"], capture_output=True, text=True, timeout=120, check=True)
    return result.stdout
