"""Helpers for the browser test tier (pytest marker ``ui``): servers and a notebook driven in Chromium.

The tier opens each notebook in a real JupyterLab (or Voilà) page in headless Chromium, runs all
cells, moves controls of every widget panel and checks that the panel's output changed. Controls
are found generically by their CSS class prefix ``lsb-`` (see lsbcore/widgets/_panel.py); nothing here
knows a particular notebook. Every wait has a timeout and every server is killed in a ``finally``.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "ui"
CHROMIUM = os.environ.get("LSB_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps retrying closed network connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
RUN_ALL_TIMEOUT = float(os.environ.get("LSB_UI_RUN_TIMEOUT", "200"))   # seconds, one notebook
CHANGE_TIMEOUT = float(os.environ.get("LSB_UI_CHANGE_TIMEOUT", "60"))  # seconds, one control move


def unavailable() -> str | None:
    """Why the ui tier cannot run here, or None when Chromium and Playwright are both present."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"UI tier skipped: {CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
        import voila  # noqa: F401
    except ImportError as e:
        return f"UI tier skipped: {e.name} not installed (pip install -e '.[ui]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def to_ipynb(src: Path, dest_dir: Path) -> Path:
    """Convert a jupytext percent ``.py`` notebook to ``dest_dir/<stem>.ipynb`` (kernel python3)."""
    import jupytext  # in-process: a `jupytext` subprocess costs seconds on a busy machine

    dest = dest_dir / (src.stem + ".ipynb")
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(nb, dest, fmt="ipynb")
    return dest


def server_env(tmp: Path) -> dict:
    """The server's (hence the kernel's) environment: fast mode, Jupyter state kept under ``tmp``."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # Agg would remove inline figures, the very thing we look at
    env.update(LSB_FAST="1", PYTHONUNBUFFERED="1",
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
    return env


def write_lab_settings(settings: Path) -> None:
    """User settings for a quiet, deterministic JupyterLab: every cell kept in the DOM, no news."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
            {"windowingMode": "none", "recordTiming": True},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }
    for rel, value in files.items():
        p = settings / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value))


def lab_command(port: int, root: Path, tmp: Path) -> list[str]:
    return [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=", "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            f"--LabApp.user_settings_dir={tmp / 'settings'}",
            "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
            "--ServerApp.shutdown_no_activity_timeout=900",
            "--MappingKernelManager.cull_idle_timeout=0"]


def voila_command(port: int, notebook: Path) -> list[str]:
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", "--Voila.ip=127.0.0.1",
            f"--port={port}", "--Voila.port_retries=0", "--show_tracebacks=True",
            "--strip_sources=True"]


@contextlib.contextmanager
def server(cmd: list[str], probe: str, env: dict, log: Path, timeout: float = 90):
    """Start ``cmd`` in its own process group, wait until ``probe`` answers; always kill it after."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(probe, timeout=5):
                        break
                except urllib.error.HTTPError as e:  # an HTTP answer (even 404) means it is up
                    if e.code < 500:
                        break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server did not answer {probe} in {timeout:.0f} s:\n"
                                       f"{log.read_text()[-3000:]}")
                time.sleep(0.3)
            yield proc
        finally:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def delete_sessions(base: str, path: str | None = None) -> None:
    """Shut down the kernel sessions of notebook ``path`` (all with None): frees CPU and memory."""
    try:
        with urllib.request.urlopen(f"{base}/api/sessions", timeout=10) as r:
            sessions = json.load(r)
        for s in sessions:
            if path is not None and s.get("path") != path:
                continue
            req = urllib.request.Request(f"{base}/api/sessions/{s['id']}", method="DELETE")
            urllib.request.urlopen(req, timeout=20).close()
    except (urllib.error.URLError, OSError):
        pass


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                      timeout=60_000)


def screenshot(page, name: str) -> Path | None:
    """Save the page to build/ui/<name>.png, scrolled to the first error output if there is one."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    try:
        err = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
                           ".jupyter-widgets-error-widget")
        if err.count():
            err.first.scroll_into_view_if_needed(timeout=5_000)
    except Exception:
        pass
    try:
        page.screenshot(path=str(path), full_page=True, timeout=30_000)
        return path
    except Exception:  # a screenshot must never hide the real failure
        return None


# ----------------------------------------------------------------------------------- page JS
# Panels: the outermost output areas that hold at least one `lsb-*` element. Controls: the innermost
# elements carrying an `lsb-*` class that contain (or are) something a user can operate.
_FIND_PANELS = r"""
() => {
  const isLsb = el => [...el.classList].some(c => c.startsWith('lsb-'));
  const lsbIn = el => [...el.querySelectorAll('[class*="lsb-"]')].filter(isLsb);
  const outs = [...document.querySelectorAll('.jp-OutputArea-output')].filter(o => lsbIn(o).length);
  const top = outs.filter(o => !outs.some(p => p !== o && p.contains(o)));
  const kindOf = el => {
    const q = s => el.matches(s) || el.querySelector(s);
    if (q('.noUi-target') || el.matches('.widget-slider')) return 'slider';
    if (q('select')) return 'dropdown';
    if (q('.widget-toggle-buttons')) return 'toggle';
    if (q('input[type=radio]')) return 'radio';
    if (q('input[type=checkbox]')) return 'checkbox';
    if (q('input[type=number], input[type=text], textarea')) return 'text';
    if (q('button')) return 'button';
    return null;
  };
  const disabled = el => !!(el.querySelector('[disabled]') || el.matches('[disabled]') ||
                            el.matches('.mod-disabled'));
  return top.map((o, i) => {
    o.setAttribute('data-lsb-panel', String(i));
    // lsb-* elements a user cannot operate (an info HTML, a figure box) stay part of the output
    const ctrls = lsbIn(o).filter(el => !lsbIn(el).length && kindOf(el)).map((el, j) => {
      const id = `${i}-${j}`;
      el.setAttribute('data-lsb-control', id);
      return {id, cls: [...el.classList].filter(c => c.startsWith('lsb-')).join(' '),
              kind: kindOf(el), disabled: disabled(el)};
    });
    return {panel: i, controls: ctrls};
  });
}
"""

# What a user sees change in a panel: its text and images, leaving out the controls themselves.
_FINGERPRINT = r"""
(sel) => {
  const o = document.querySelector(sel);
  if (!o) return null;
  const h = s => { let x = 5381; for (let i = 0; i < s.length; i++) x = ((x * 33) ^ s.charCodeAt(i)) >>> 0; return x.toString(16); };
  const keep = e => !e.closest('[data-lsb-control]');
  const c = o.cloneNode(true);
  c.querySelectorAll('[data-lsb-control]').forEach(e => e.remove());
  const imgs = [...o.querySelectorAll('img')].filter(keep).map(i => h(i.src));
  const svgs = [...o.querySelectorAll('svg')].filter(keep).filter(s => !s.closest('svg svg')).map(s => h(s.outerHTML));
  const text = c.textContent.replace(/\s+/g, ' ').trim();
  return {text: h(text), n_text: text.length, imgs, svgs};
}
"""

# Value the front end shows for a control (slider readout / aria, select value, checked state).
_CONTROL_VALUE = r"""
(el) => {
  const r = el.querySelector('.widget-readout');
  const hs = [...el.querySelectorAll('.noUi-handle')].map(x => x.getAttribute('aria-valuetext') || x.getAttribute('aria-valuenow'));
  const sel = el.querySelector('select');
  const inputs = [...el.querySelectorAll('input')].map(x => x.type === 'checkbox' || x.type === 'radio' ? String(x.checked) : x.value);
  const active = [...el.querySelectorAll('button.mod-active')].map(b => b.textContent);
  return JSON.stringify({r: r ? r.textContent : null, hs, sel: sel ? sel.value : null, inputs, active});
}
"""

# A widget the front end cannot show: "Error displaying widget: model not found" (kernel/front-end
# version skew) or an error widget ("Click to show javascript error.") for an unknown model class.
_WIDGET_ERRORS = r"""
() => {
  const t = document.body.innerText;
  const bad = ['Error displaying widget', 'model not found', 'Failed to create view',
               'Failed to load model class'].filter(b => t.includes(b));
  document.querySelectorAll('.jupyter-widgets-error-widget').forEach(e => {
    e.click();  // reveals the JavaScript error message
    bad.push('error widget: ' + e.innerText.replace(/\s+/g, ' ').slice(0, 300));
  });
  return bad;
}
"""


def find_panels(page) -> list[dict]:
    return page.evaluate(_FIND_PANELS)


def panel_selector(page, panel: int) -> str:
    """The panel itself, or, when it holds nothing but controls (its output is displayed elsewhere),
    the whole page's outputs."""
    sel = f"[data-lsb-panel='{panel}']"
    fp = page.evaluate(_FINGERPRINT, sel)
    if fp and (fp["n_text"] or fp["imgs"] or fp["svgs"]):
        return sel
    return ".jp-Notebook" if page.locator(".jp-Notebook").count() else "body"


def fingerprint(page, selector: str):
    return page.evaluate(_FINGERPRINT, selector)


def widget_errors(page) -> list[str]:
    return page.evaluate(_WIDGET_ERRORS)


def control_value(page, cid: str) -> str:
    return page.locator(f"[data-lsb-control='{cid}']").evaluate(_CONTROL_VALUE)


def move_control(page, ctrl: dict) -> bool:
    """Operate one control as a user would; True when the front end shows a new value."""
    loc = page.locator(f"[data-lsb-control='{ctrl['id']}']")
    loc.scroll_into_view_if_needed(timeout=10_000)
    before = control_value(page, ctrl["id"])
    kind = ctrl["kind"]
    if kind == "slider":
        track = loc.locator(".noUi-target").first
        box = track.bounding_box(timeout=10_000)
        handle = loc.locator(".noUi-handle").first.bounding_box(timeout=10_000)
        # tap the track 15 % of its length away from the handle (a small move: a cheap callback)
        if box["height"] > 2 * box["width"]:  # vertical slider
            f = (handle["y"] + handle["height"] / 2 - box["y"]) / box["height"]
            f = f + 0.15 if f < 0.8 else f - 0.15
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + f * box["height"])
        else:
            f = (handle["x"] + handle["width"] / 2 - box["x"]) / box["width"]
            f = f + 0.15 if f < 0.8 else f - 0.15
            page.mouse.click(box["x"] + f * box["width"], box["y"] + box["height"] / 2)
        if control_value(page, ctrl["id"]) == before:  # fall back to the keyboard
            loc.locator(".noUi-handle").first.focus()
            page.keyboard.press("PageUp")
            if control_value(page, ctrl["id"]) == before:
                page.keyboard.press("PageDown")
                page.keyboard.press("PageDown")
    elif kind == "dropdown":
        sel = loc.locator("select").first
        n = sel.evaluate("s => s.options.length")
        cur = sel.evaluate("s => s.selectedIndex")
        if n < 2:
            return False
        sel.select_option(index=(cur + 1) % n)
    elif kind == "toggle":
        loc.locator("button:not(.mod-active)").first.click(timeout=10_000)
    elif kind == "radio":
        loc.locator("input[type=radio]:not(:checked)").first.check(timeout=10_000)
    elif kind == "checkbox":
        loc.locator("input[type=checkbox]").first.click(timeout=10_000)
    else:
        return False
    return control_value(page, ctrl["id"]) != before


# ----------------------------------------------------------------------------- JupyterLab JS
_LISTEN = r"""
() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (window.__lsb) return true;
  window.__lsb = {errors: [], stderr: [], busy: 0};
  w.sessionContext.iopubMessage.connect((_, msg) => {
    const t = msg.header.msg_type, c = msg.content;
    if (t === 'error') window.__lsb.errors.push(`${c.ename}: ${c.evalue}`);
    else if (t === 'stream' && c.name === 'stderr') window.__lsb.stderr.push(c.text);
    else if (t === 'status' && c.execution_state === 'busy') window.__lsb.busy++;
  });
  return true;
}
"""

_KERNEL_READY = r"""
() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.sessionContext || !w.content || !w.content.widgets) return false;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}
"""

_RUN_STATE = r"""
() => {
  const w = window.jupyterapp.shell.currentWidget;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const running = cells.some(c => c.model.executionState === 'running' ||
                                  (c.promptNode && c.promptNode.textContent.includes('*')));
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  const nonEmpty = cells.filter(c => c.model.sharedModel.getSource().trim().length);
  return {running, kernel: k ? k.status : 'none', total: nonEmpty.length,
          done: nonEmpty.filter(c => c.model.executionCount !== null).length,
          errors: window.__lsb.errors.length, busy: window.__lsb.busy};
}
"""

_CELL_ERRORS = r"""
() => {
  const w = window.jupyterapp.shell.currentWidget;
  const out = [];
  w.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    c.model.outputs.toJSON().forEach(o => {
      if (o.output_type === 'error') out.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
    });
  });
  return out;
}
"""


def lab_open(page, base: str, name: str, workspace: str = "lsb", timeout: float = 90) -> None:
    """Open ``name`` in JupyterLab and wait for a connected, idle kernel (accepting a kernel dialog).

    Each page gets its own workspace so that pages open at the same time do not share a layout.
    """
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{name}", timeout=timeout * 1000,
              wait_until="domcontentloaded")
    deadline = time.monotonic() + timeout
    while not page.evaluate(_KERNEL_READY):
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click(timeout=5_000)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: no idle kernel after {timeout:.0f} s")
        page.wait_for_timeout(300)
    page.evaluate(_LISTEN)


def lab_run_all(page, name: str, timeout: float = RUN_ALL_TIMEOUT) -> dict:
    """Run all cells through the Run menu; wait until every cell ran (or one failed) and the kernel idles."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click(timeout=10_000)
    page.locator("li[data-command='runmenu:run-all']").click(timeout=10_000)
    deadline = time.monotonic() + timeout
    state = {}
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        state = page.evaluate(_RUN_STATE)
        if state["kernel"] in ("dead", "none"):
            raise RuntimeError(f"{name}: the kernel died during run-all (state {state})")
        if (not state["running"] and state["kernel"] == "idle"
                and (state["done"] == state["total"] or state["errors"])):
            page.wait_for_timeout(500)  # let the widget views attach
            state = page.evaluate(_RUN_STATE)
            if not state["running"] and state["kernel"] == "idle":
                return state
    raise TimeoutError(f"{name}: run-all not finished after {timeout:.0f} s (last state {state})")


def lab_cell_errors(page) -> list[str]:
    return page.evaluate(_CELL_ERRORS)


_SLOWEST = r"""
(k) => {
  const w = window.jupyterapp.shell.currentWidget;
  const times = [];
  w.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    const m = c.model.getMetadata('execution') || {};
    const a = Date.parse(m['iopub.execute_input']), b = Date.parse(m['shell.execute_reply']);
    if (a && b) times.push([i, (b - a) / 1000]);
  });
  times.sort((x, y) => y[1] - x[1]);
  return times.slice(0, k).map(([i, t]) => `cell ${i} ${t.toFixed(1)} s`).join(', ');
}
"""


def lab_slowest_cells(page, k: int = 3) -> str:
    """The ``k`` slowest cells of the last run (JupyterLab's recorded timing), for the summary."""
    return page.evaluate(_SLOWEST, k)


def lab_kernel_log(page) -> dict:
    return page.evaluate("() => window.__lsb")


def wait_panel_change(page, selector: str, before, *, lab: bool, busy_before: int = 0,
                      timeout: float = CHANGE_TIMEOUT) -> tuple[bool, str]:
    """Wait until the panel's fingerprint differs from ``before`` and has settled.

    In JupyterLab the kernel's busy/idle messages tell when the callback is done, so a control whose
    change leaves the output as it was is reported quickly ("unchanged"); in Voilà we wait the
    timeout. Returns (changed, how).
    """
    start = time.monotonic()
    deadline = start + timeout
    last, unchanged_since = None, None
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)
        fp = fingerprint(page, selector)
        now = time.monotonic()
        idle = reached = True
        if lab:
            status, busy = page.evaluate("() => [window.jupyterapp.shell.currentWidget"
                                         ".sessionContext.session.kernel.status, window.__lsb.busy]")
            idle, reached = status == "idle", busy > busy_before
            if not reached and now - start > 5:
                return False, "the change never reached the kernel (no busy message in 5 s)"
        if fp != before:
            unchanged_since = None
            if idle and fp == last:
                return True, "changed"
            last = fp if idle else None
        else:
            last = None
            if lab and reached and idle:
                # the callback ran and returned; allow late output a moment before giving up
                unchanged_since = unchanged_since or now
                if now - unchanged_since > 2.0:
                    return False, "the kernel handled the change but the panel output did not change"
            else:
                unchanged_since = None
    return False, f"no settled change within {timeout:.0f} s"
