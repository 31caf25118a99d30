"""Debian's Chromium through Playwright, as every browser test of the control room launches it."""
from __future__ import annotations

import shutil

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def launch(playwright, *extra_args: str):
    return playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                      args=[*ARGS, *extra_args])
