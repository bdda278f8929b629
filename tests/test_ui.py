"""Browser tier (marker ``ui``): every notebook's widgets in a real JupyterLab 4 page, and one
notebook as a Voilà dashboard, in headless Chromium.

For each notebook: convert the jupytext source to .ipynb in a temporary root, open it in JupyterLab
(server env LSB_FAST=1), run all cells from the Run menu, and check that no cell errored and no
widget failed to display ("Error displaying widget: model not found" is what front-end/kernel
version skew looks like). Then, for every widget panel (an output holding ``lsb-*`` controls), move
its first slider and its first dropdown (another control kind if it has neither) as a user would
and check that the front end took the new value, that the kernel received it, and that the panel's
output (figure images, text) changed. No kernel error or traceback may appear on the way.
A screenshot of a failing page is saved to build/ui/<notebook>.png.

Run:  pytest -m ui tests/test_ui.py   (LSB_UI_NOTEBOOKS=<dir> tests the notebooks of another folder;
LSB_UI_VOILA=01,03 picks the notebooks also tested as a dashboard; "none" tests none.)
"""
import os
import time
from pathlib import Path

import pytest

import ui_helpers as ui

NB_DIR = Path(os.environ.get("LSB_UI_NOTEBOOKS", ui.ROOT / "notebooks"))
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.py"))
_voila = os.environ.get("LSB_UI_VOILA", "01")
VOILA_NOTEBOOKS = [] if _voila == "none" else [
    p for p in NOTEBOOKS if any(p.name.startswith(k.strip()) for k in _voila.split(",") if k.strip())
] or NOTEBOOKS[:1]

pytestmark = pytest.mark.ui


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = ui.launch_browser(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    ui.write_lab_settings(tmp / "settings")
    port = ui.free_port()
    base = f"http://127.0.0.1:{port}"
    with ui.server(ui.lab_command(port, root, tmp), f"{base}/api", ui.server_env(tmp), tmp / "lab.log"):
        yield {"base": base, "root": root, "log": tmp / "lab.log"}


def _new_page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.set_default_navigation_timeout(90_000)
    page.__dict__["lsb_page_errors"] = []
    page.on("pageerror", lambda e: page.__dict__["lsb_page_errors"].append(str(e)))
    return page


def _pick(controls):
    """First slider and first dropdown of a panel; another operable control if it has neither."""
    usable = [c for c in controls if not c["disabled"] and c["kind"]]
    picks = [next((c for c in usable if c["kind"] == k), None) for k in ("slider", "dropdown")]
    picks = [c for c in picks if c]
    if not picks:
        picks = [c for c in usable if c["kind"] in ("toggle", "radio", "checkbox")][:1]
    return picks


def _exercise_panels(page, *, lab: bool) -> list[str]:
    """Move controls of every panel; return the problems found (empty when all is well)."""
    panels = ui.find_panels(page)
    if not panels:
        return ["no widget panel with lsb-* controls found"]
    problems = []
    for p in panels:
        picks = _pick(p["controls"])
        if not picks:
            problems.append(f"panel {p['panel']}: no slider/dropdown/toggle among {p['controls']}")
            continue
        where = ui.panel_selector(page, p["panel"])
        for c in picks:
            before = ui.fingerprint(page, where)
            busy = ui.lab_kernel_log(page)["busy"] if lab else 0
            if not ui.move_control(page, c):
                problems.append(f"panel {p['panel']} .{c['cls']} ({c['kind']}): the front end did "
                                "not take a new value")
                continue
            changed, how = ui.wait_panel_change(page, where, before, lab=lab, busy_before=busy)
            if not changed:
                problems.append(f"panel {p['panel']} .{c['cls']} ({c['kind']}): {how}")
    return problems


def _kernel_problems(page) -> list[str]:
    log = ui.lab_kernel_log(page)
    out = [f"kernel error: {e}" for e in log["errors"]]
    out += [f"kernel stderr traceback: {s[-500:]}" for s in log["stderr"] if "Traceback" in s]
    return out


@pytest.mark.parametrize("src", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_widgets_in_jupyterlab(src, lab, browser):
    nb = ui.to_ipynb(src, lab["root"])
    page = _new_page(browser)
    t0 = time.monotonic()
    try:
        ui.lab_open(page, lab["base"], nb.name)
        state = ui.lab_run_all(page, nb.stem)
        t_run = time.monotonic() - t0
        cell_errors = ui.lab_cell_errors(page)
        assert not cell_errors, f"{nb.stem}: cells failed: {cell_errors}"
        assert state["done"] == state["total"], f"{nb.stem}: not every cell ran: {state}"
        bad = ui.widget_errors(page)
        assert not bad, f"{nb.stem}: widgets failed to display: {bad}"
        problems = _exercise_panels(page, lab=True) + _kernel_problems(page)
        problems += [f"widget display: {b}" for b in ui.widget_errors(page)]
        assert not problems, f"{nb.stem}:\n  " + "\n  ".join(problems)
        print(f"\n{nb.stem}: run-all {t_run:.1f} s, total {time.monotonic() - t0:.1f} s, "
              f"{len(ui.find_panels(page))} panel(s)")
    except BaseException:
        shot = ui.screenshot(page, nb.stem)
        print(f"\nscreenshot: {shot}; page errors: {page.__dict__['lsb_page_errors'][-5:]}")
        raise
    finally:
        page.close()
        ui.delete_sessions(lab["base"])


@pytest.mark.parametrize("src", VOILA_NOTEBOOKS, ids=[p.stem for p in VOILA_NOTEBOOKS])
def test_dashboard_in_voila(src, browser, tmp_path):
    nb = ui.to_ipynb(src, tmp_path)
    port = ui.free_port()
    base = f"http://127.0.0.1:{port}"
    env = ui.server_env(tmp_path)
    with ui.server(ui.voila_command(port, nb), f"{base}/voila/static/lsb-probe", env, tmp_path / "voila.log"):
        page = _new_page(browser)
        try:
            page.goto(base, timeout=ui.RUN_ALL_TIMEOUT * 1000, wait_until="load")
            page.wait_for_selector(".jp-OutputArea-output [class*='lsb-']", timeout=60_000)
            page.wait_for_timeout(1000)
            assert "Traceback" not in page.inner_text("body"), f"{nb.stem}: a cell failed in Voilà"
            bad = ui.widget_errors(page)
            assert not bad, f"{nb.stem}: widgets failed to display in Voilà: {bad}"
            problems = _exercise_panels(page, lab=False)
            problems += [f"widget display: {b}" for b in ui.widget_errors(page)]
            if "Traceback" in page.inner_text("body"):
                problems.append("a traceback appeared on the page after moving the controls")
            assert not problems, f"{nb.stem} (Voilà):\n  " + "\n  ".join(problems)
        except BaseException:
            shot = ui.screenshot(page, f"voila_{nb.stem}")
            print(f"\nscreenshot: {shot}; log: {(tmp_path / 'voila.log').read_text()[-2000:]}")
            raise
        finally:
            page.close()
