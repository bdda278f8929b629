"""pytest configuration for the browser tier only (marker ``ui``, tests/test_ui.py).

Tests marked ``ui`` are skipped, with the reason, when Debian's Chromium or Playwright is missing.
When they do run, SIGTERM (e.g. from `timeout`) is turned into KeyboardInterrupt so that the
fixtures' ``finally`` blocks still kill the JupyterLab/Voilà servers and the browser.
"""
import signal

import pytest


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collection_modifyitems(config, items):
    ui_items = [item for item in items if "ui" in item.keywords]
    if not ui_items:
        return
    from ui_helpers import unavailable

    reason = unavailable()
    if reason:
        for item in ui_items:
            item.add_marker(pytest.mark.skip(reason=reason))
    else:
        signal.signal(signal.SIGTERM, _interrupt)
