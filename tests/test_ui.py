"""Browser tier (marker ``ui``): every notebook's widgets in a real JupyterLab 4 page, and one
notebook as a Voilà dashboard, in headless Chromium.

For each notebook: convert the jupytext source to .ipynb in a temporary root, open it in JupyterLab
(server env LSB_FAST=1), run all cells from the Run menu, and check that every cell ran, none
errored and no widget failed to display ("Error displaying widget: model not found", or an error
widget, is what front-end/kernel version skew looks like). Then, for every widget panel (an output
holding ``lsb-*`` controls), move its first slider and its first dropdown (another control kind if
it has neither) as a user would, and check that the front end took the new value, that the kernel
received it, and that the panel's output (figure images, text) changed. No kernel error or
traceback may appear on the way. A screenshot of a failing page is saved to build/ui/<name>.png.

The notebooks run in ``LSB_UI_WORKERS`` browser threads at once (default 2, one per core), each
notebook in its own page and kernel of one shared JupyterLab server; each test waits for its
notebook's outcome.

Run:  pytest -m ui tests/test_ui.py      LSB_UI_NOTEBOOKS=<dir>: the notebooks of another folder;
LSB_UI_VOILA=01,03: the notebooks also tested as a Voilà dashboard ("none": none).
"""
import os
import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

import ui_helpers as ui

NB_DIR = Path(os.environ.get("LSB_UI_NOTEBOOKS", ui.ROOT / "notebooks"))
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.py"))
_voila = os.environ.get("LSB_UI_VOILA", "01")
VOILA_NOTEBOOKS = [] if _voila == "none" else [
    p for p in NOTEBOOKS if any(p.name.startswith(k.strip()) for k in _voila.split(",") if k.strip())
] or NOTEBOOKS[:1]
WORKERS = max(1, int(os.environ.get("LSB_UI_WORKERS", "2")))
TIER_TIMEOUT = float(os.environ.get("LSB_UI_TIER_TIMEOUT", "1100"))  # seconds, whole tier
# Voilà renders the whole dashboard before the page loads: ≈ 10 s alone, ≈ 15 s beside two notebooks.
# On this machine the kernel of a fresh Voilà server misses a message in 1 load of 5 to 1 of 2 (seen
# with ipykernel 6.31 and 7.4 alike; the kernel sits idle and the page never loads), so a short timeout
# and up to six fresh servers.
VOILA_TIMEOUT = float(os.environ.get("LSB_UI_VOILA_TIMEOUT", "45"))  # seconds, one load
VOILA_ATTEMPTS, LAB_ATTEMPTS = 6, 2

pytestmark = pytest.mark.ui


# ------------------------------------------------------------------------------ checks on a page
def _new_page(browser):
    """A fresh page (own context) with default timeouts, and the list its JavaScript errors go to."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.set_default_navigation_timeout(90_000)
    js_errors = []
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    return page, js_errors


def _pick(controls):
    """First slider and first dropdown of a panel; another operable control if it has neither."""
    usable = [c for c in controls if not c["disabled"] and c["kind"]]
    picks = [next((c for c in usable if c["kind"] == k), None) for k in ("slider", "dropdown")]
    picks = [c for c in picks if c]
    if not picks:
        picks = [c for c in usable if c["kind"] in ("toggle", "radio", "checkbox")][:1]
    return picks


def _exercise_panels(page, *, lab: bool, expected: bool = True) -> tuple[list[str], str]:
    """Move controls of every panel; return the problems found (none when all is well) and a
    summary (panels, controls moved).

    ``expected``: the notebook's source builds widgets, so finding no panel is a failure.
    """
    n_panels = len(ui.find_panels(page))
    if not n_panels:
        return (["no widget panel with lsb-* controls found"] if expected else []), "0 panels"
    problems, moved = [], []
    for i in range(n_panels):
        panels = ui.find_panels(page)  # again: a callback may have re-rendered the page's widgets
        if i >= len(panels):
            problems.append(f"panel {i} disappeared after moving controls of earlier panels")
            break
        p = panels[i]
        picks = _pick(p["controls"])
        if not picks:
            problems.append(f"panel {i}: no slider/dropdown/toggle among {p['controls']}")
            continue
        where = ui.panel_selector(page, i)
        for c in picks:
            before = ui.fingerprint(page, where)
            busy = ui.lab_kernel_log(page)["busy"] if lab else 0
            if not ui.move_control(page, c):
                problems.append(f"panel {i} .{c['cls']} ({c['kind']}): the front end did not take "
                                "a new value")
                continue
            changed, how = ui.wait_panel_change(page, where, before, lab=lab, busy_before=busy)
            if not changed:
                problems.append(f"panel {i} .{c['cls']} ({c['kind']}): {how}")
            moved.append(c["cls"])
    return problems, f"{n_panels} panel(s), moved {' '.join(moved)}"


def _kernel_problems(page) -> list[str]:
    log = ui.lab_kernel_log(page)
    out = [f"kernel error: {e}" for e in log["errors"]]
    out += [f"kernel stderr traceback: {s[-500:]}" for s in log["stderr"] if "Traceback" in s]
    return out


def _check_in_lab(browser, lab: dict, src: Path) -> dict:
    """Run one notebook in JupyterLab and exercise its panels; an outcome dict (problems, timing)."""
    nb = ui.to_ipynb(src, lab["root"])
    page, js_errors = _new_page(browser)
    t0 = time.monotonic()
    problems, info = [], ""
    try:
        ui.lab_open(page, lab["base"], nb.name, workspace=f"lsb-{nb.stem}")
        state = ui.lab_run_all(page, nb.stem)
        t_run = time.monotonic() - t0
        problems += [f"cell failed: {e}" for e in ui.lab_cell_errors(page)]
        if state["done"] != state["total"]:
            problems.append(f"only {state['done']} of {state['total']} code cells ran")
        problems += [f"widget display: {b}" for b in ui.widget_errors(page)]
        if not problems:
            expected = "widgets" in src.read_text()  # lsbcore.widgets or ipywidgets
            more, info = _exercise_panels(page, lab=True, expected=expected)
            problems += more + _kernel_problems(page)
            problems += [f"widget display: {b}" for b in ui.widget_errors(page)]
        info = (f"open+run-all {t_run:.1f} s, total {time.monotonic() - t0:.1f} s, {info}; "
                f"slowest: {ui.lab_slowest_cells(page)}")
    except Exception as e:  # a timeout or a Playwright error is a failure of this notebook only
        problems.append(f"{type(e).__name__}: {e}"[:3000])
    if problems:
        shot = ui.screenshot(page, nb.stem)
        problems.append(f"screenshot: {shot}; JavaScript errors: {js_errors[-5:]}")
    try:
        page.close()
    finally:
        ui.delete_sessions(lab["base"], path=nb.name)
    return {"problems": problems, "info": info}


def _check_in_voila(browser, src: Path, tmp: Path) -> dict:
    """Serve one notebook's dashboard (its widgets alone, as `make dashboard` does) with Voilà, move its
    controls, check its outputs change."""
    from lsbcore.build import dashboard_notebook

    tmp.mkdir(parents=True, exist_ok=True)
    nb = dashboard_notebook(src, tmp / f"{src.stem}.ipynb")
    port = ui.free_port()
    base = f"http://127.0.0.1:{port}"
    problems, info = [], ""
    with ui.server(ui.voila_command(port, nb), f"{base}/voila/static/lsb-probe", ui.server_env(tmp),
                   tmp / "voila.log"):
        page, js_errors = _new_page(browser)
        t0 = time.monotonic()
        try:
            page.goto(base, timeout=VOILA_TIMEOUT * 1000, wait_until="load")
            page.wait_for_selector(".jp-OutputArea-output [class*='lsb-']", timeout=VOILA_TIMEOUT * 1000)
            page.wait_for_timeout(1000)
            t_run = time.monotonic() - t0
            if "Traceback" in page.inner_text("body"):
                problems.append("a cell failed (traceback on the page)")
            problems += [f"widget display: {b}" for b in ui.widget_errors(page)]
            if not problems:
                more, info = _exercise_panels(page, lab=False)
                problems += more + [f"widget display: {b}" for b in ui.widget_errors(page)]
                if "Traceback" in page.inner_text("body"):
                    problems.append("a traceback appeared on the page after moving the controls")
            info = f"load {t_run:.1f} s, total {time.monotonic() - t0:.1f} s, {info}"
        except Exception as e:
            problems.append(f"{type(e).__name__}: {e}"[:3000])
        if problems:
            shot = ui.screenshot(page, f"voila_{nb.stem}")
            problems.append(f"screenshot: {shot}; JavaScript errors: {js_errors[-5:]}; Voilà log "
                            f"tail: {(tmp / 'voila.log').read_text(errors='replace')[-1500:]}")
        page.close()
    return {"problems": problems, "info": info}


# ---------------------------------------------------------------------------------- the runner
class _Runner:
    """``WORKERS`` threads, each with its own Playwright and Chromium (Playwright objects must stay
    in the thread that made them), taking (key, job) pairs from one queue."""

    def __init__(self, workers: int):
        self.jobs: queue.Queue = queue.Queue()
        self.futures: dict[str, Future] = {}
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"ui-worker-{i}")
                        for i in range(workers)]

    def submit(self, key: str, job, attempts: int = LAB_ATTEMPTS) -> None:
        self.futures[key] = Future()
        self.jobs.put((key, job, attempts))

    def start(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)  # one stop mark per worker, after every job
        for t in self.threads:
            t.start()

    def _work(self) -> None:
        from playwright.sync_api import sync_playwright

        item = ()
        try:
            with sync_playwright() as p:
                browser = ui.launch_browser(p)
                try:
                    while (item := self.jobs.get()) is not None:
                        key, job, attempts = item
                        try:
                            self.futures[key].set_result(self._run(job, browser, attempts))
                        except BaseException as e:
                            self.futures[key].set_exception(e)
                finally:
                    browser.close()
        except BaseException as e:  # the browser did not start: the jobs this worker takes fail
            if item is None:  # it had already taken its stop mark
                return
            if item and not self.futures[item[0]].done():
                self.futures[item[0]].set_exception(e)
            while (item := self.jobs.get()) is not None:
                self.futures[item[0]].set_exception(e)

    @staticmethod
    def _run(job, browser, attempts: int) -> dict:
        """Run a job; while it reports problems, run it again from scratch (a new page, kernel and,
        for Voilà, server), ``attempts`` runs at most. On this kind of sandboxed machine a kernel's
        reply over loopback is lost now and then and the page waits on an idle kernel until the
        timeout (seen with nbconvert, nbclient and Voilà alike; once twice in a row for Voilà); a real
        defect fails every run, and the last run's problems are the ones reported."""
        failed = []
        for _ in range(attempts):
            result = job(browser)
            if not result["problems"]:
                break
            failed.append(result["problems"][0][:200])
        if failed:
            result["info"] = f"{result['info']} [run {len(failed) + (not result['problems'])}; failed before: {failed}]"
        return result

    def join(self, timeout: float) -> None:
        for t in self.threads:
            t.join(timeout)


def _selected(session, test_name: str) -> list[Path]:
    """The notebooks of the collected (not deselected) items of one test function."""
    return [item.callspec.params["src"] for item in session.items
            if getattr(item, "originalname", None) == test_name]


@pytest.fixture(scope="session")
def outcomes(request, tmp_path_factory):
    """Start JupyterLab, queue the selected notebooks (and Voilà dashboards), yield key → Future."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    ui.write_lab_settings(tmp / "settings")
    port = ui.free_port()
    lab = {"base": f"http://127.0.0.1:{port}", "root": root}
    runner = _Runner(WORKERS)
    with ui.server(ui.lab_command(port, root, tmp), f"{lab['base']}/api", ui.server_env(tmp),
                   tmp / "lab.log"):
        jobs = [(f"lab:{s.stem}", lambda b, s=s: _check_in_lab(b, lab, s))
                for s in _selected(request.session, "test_widgets_in_jupyterlab")]
        for s in _selected(request.session, "test_dashboard_in_voila"):  # second in the queue, so it overlaps the notebooks
            jobs.insert(1, (f"voila:{s.stem}", lambda b, s=s: _check_in_voila(b, s, tmp / f"voila_{s.stem}")))
        for key, job in jobs:
            runner.submit(key, job, VOILA_ATTEMPTS if key.startswith("voila:") else LAB_ATTEMPTS)
        runner.start()
        t0 = time.monotonic()
        try:
            yield {"futures": runner.futures, "deadline": t0 + TIER_TIMEOUT}
        finally:
            runner.join(timeout=max(1.0, t0 + TIER_TIMEOUT - time.monotonic()))


def _assert_outcome(outcomes, key: str) -> None:
    left = max(1.0, outcomes["deadline"] - time.monotonic())
    result = outcomes["futures"][key].result(timeout=left)
    if result["problems"]:
        pytest.fail(f"{key}:\n  " + "\n  ".join(result["problems"]), pytrace=False)
    print(f"\n{key}: {result['info']}")


@pytest.mark.parametrize("src", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_widgets_in_jupyterlab(src, outcomes):
    _assert_outcome(outcomes, f"lab:{src.stem}")


@pytest.mark.parametrize("src", VOILA_NOTEBOOKS, ids=[p.stem for p in VOILA_NOTEBOOKS])
def test_dashboard_in_voila(src, outcomes):
    _assert_outcome(outcomes, f"voila:{src.stem}")
