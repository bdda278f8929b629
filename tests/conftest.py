"""pytest configuration: one torch thread for the unit tests, and the browser tier's set-up.

The unit tests use tiny tensors, for which torch's intra-op threads only add overhead (on a busy
2-core machine they made some tests 100× slower), so every test runs with one thread.

Tests marked ``ui`` (tests/test_ui.py) are skipped, with the reason, when Debian's Chromium or Playwright is missing.
When they do run, SIGTERM (e.g. from `timeout`) is turned into KeyboardInterrupt so that the
fixtures' ``finally`` blocks still kill the JupyterLab/Voilà servers and the browser.
"""
import signal

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


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
