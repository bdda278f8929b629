"""The course site (``make book``): its widgets' static state, and every page in headless Chromium.

The browser test (marker ``ui``) reads the site that ``python -m lsbcore.book`` built (in
``build/book/html``, or ``$LSB_BOOK_HTML``), serves it on 127.0.0.1 and opens every page with the
network cut off: any request that is not to that server is aborted and reported. On every page it
checks: no console error, every internal link and anchor resolves, every image loaded, every formula
typeset by MathJax (and no raw ``$$`` or ``\\(`` left in the text); on a notebook page also at least
one figure and no error output. Screenshots of failing pages go to ``build/ui/``. ``make book`` runs
it after the build; it skips when the site is not built or Chromium/Playwright are missing.
"""
from __future__ import annotations

import functools
import http.server
import os
import threading
import urllib.parse
from pathlib import Path

import nbformat
import pytest

from lsbcore.book import exercise_table, for_the_site, static_widgets

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("LSB_BOOK_HTML", ROOT / "build" / "book" / "html"))
SHOTS = ROOT / "build" / "ui"
CHROMIUM = os.environ.get("LSB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.py"))
VIEW, STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"


# ----------------------------------------------------------------------------- static widgets
def _model(name, **state):
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
            "state": {"_model_name": name, **state}}


def _widget_notebook():
    png = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
           "metadata": {}}
    models = {
        "box": _model("VBoxModel", children=["IPY_MODEL_s", "IPY_MODEL_d", "IPY_MODEL_i", "IPY_MODEL_o"]),
        "s": _model("FloatSliderModel", description="σ", value=0.6),
        "d": _model("DropdownModel", description="coupling", index=1, _options_labels=["independent", "sinkhorn"]),
        "i": _model("HTMLModel", value="<b>W2 = 0.12</b>", _dom_classes=["lsb-info"]),
        "o": _model("OutputModel", outputs=[png]),
        "bar": _model("HBoxModel", children=["IPY_MODEL_p"]),
        "p": _model("FloatProgressModel", value=10.0),
    }
    cell = nbformat.v4.new_code_cell("W.explorer()")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="before\n"),
                    nbformat.v4.new_output("display_data", data={VIEW: {"model_id": "box"}, "text/plain": "VBox()"}),
                    nbformat.v4.new_output("display_data", data={VIEW: {"model_id": "bar"}, "text/plain": "HBox()"})]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["widgets"] = {STATE: {"version_major": 2, "version_minor": 0, "state": models}}
    return nb, png


def test_static_widgets_show_controls_info_and_figure():
    nb, png = _widget_notebook()
    assert static_widgets(nb) == 2
    outs = nb.cells[0].outputs
    assert [o.output_type for o in outs] == ["stream", "display_data", "display_data"]
    html = outs[1].data["text/html"]
    assert "σ = 0.6" in html and "coupling = sinkhorn" in html and "<b>W2 = 0.12</b>" in html
    assert outs[2].data == png["data"]            # the figure the explorer drew, unchanged
    assert "widgets" not in nb.metadata           # no widget state left for a CDN script to render
    assert not any(VIEW in o.get("data", {}) for o in outs)   # the progress bar is dropped
    nbformat.validate(nb)


def test_static_widgets_leaves_a_notebook_without_widgets_unchanged():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    before = nbformat.writes(nb)
    assert static_widgets(nb) == 0
    assert nbformat.writes(nb) == before


def test_for_the_site_turns_badges_into_links_and_drops_the_setup_cell():
    badge = ("[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.example/nb.ipynb) "
             "[![Binder](https://mybinder.org/badge_logo.svg)](https://binder.example/?labpath=nb)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · Title\n\n" + badge),
                                         nbformat.v4.new_code_cell("_setup()", metadata={"tags": ["setup"]}),
                                         nbformat.v4.new_code_cell("x = 1")])
    for_the_site(nb)
    assert nb.cells[0].source == ("# 01 · Title\n\n[Open in Colab](https://colab.example/nb.ipynb) "
                                  "[Binder](https://binder.example/?labpath=nb)")
    assert nb.cells[1].metadata["tags"] == ["setup", "remove-cell"]
    assert "tags" not in nb.cells[2].metadata


def test_exercise_table_lists_every_exercise_once_with_its_notebook():
    exercises = pytest.importorskip("lsbcore.exercises").exercises()
    rows = exercise_table(NOTEBOOKS).strip().split("\n")[2:]
    assert [r.split(" | ")[0].strip("| `") for r in rows] == list(exercises)
    for row, ex_id in zip(rows, exercises):
        stem = next(s for s in NOTEBOOKS if s.startswith(ex_id.split(".")[0]))
        assert f"(notebooks/{stem}.ipynb)" in row
        assert row.count(" | ") == 3      # a "|" inside a question is escaped


# ----------------------------------------------------------------------------- the site in Chromium
def _why_not() -> str | None:
    if not (SITE / "index.html").is_file():
        return f"course site not built ({SITE / 'index.html'} missing): run `make book`"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install -e '.[ui]')"
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url():
    why = _why_not()
    if why:
        pytest.skip(why)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# Everything a page check needs, read in the page once MathJax is done.
_PAGE_STATE = r"""
async () => {
  const hasMath = document.querySelector('.math') !== null;
  let mj = null;
  if (hasMath) {
    const t0 = Date.now();
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && Date.now() - t0 < 15000)
      await new Promise(r => setTimeout(r, 100));
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise;
      const items = Array.from(MathJax.startup.document.math);
      mj = {items: items.length,
            tex: items.map(m => m.math),
            // typeset and in the page (a formula in a collapsed table of contents has no width)
            attached: items.filter(m => m.typesetRoot && document.contains(m.typesetRoot)
                                        && m.typesetRoot.querySelector('mjx-math')).length,
            shown: items.filter(m => m.typesetRoot && m.typesetRoot.getBoundingClientRect().width > 0).length,
            errors: document.querySelectorAll('mjx-merror').length,
            untypeset: [...document.querySelectorAll('span.math, div.math')]
                         .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80))};
    }
  }
  const clone = document.querySelector('main') ? document.querySelector('main').cloneNode(true) : document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  const text = clone.textContent;
  const imgs = [...document.querySelectorAll('main img, article img')];
  return {
    hasMath, mj,
    raw: ['$$', '\\(', '\\[', '\\begin{'].filter(s => text.includes(s)),
    imgs: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120)),
    errorOutputs: document.querySelectorAll('.output.traceback, .output.error, div.cell_output .traceback').length,
    tracebacks: (document.querySelector('main') || document.body).innerText.includes('Traceback (most recent call last)'),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  };
}
"""


@pytest.mark.ui
def test_every_page_loads_offline_with_figures_links_and_typeset_math(site_url):
    from playwright.sync_api import sync_playwright

    pages = sorted(str(p.relative_to(SITE)) for p in SITE.rglob("*.html")
                   if not p.relative_to(SITE).parts[0].startswith("_"))
    assert "index.html" in pages
    for stem in NOTEBOOKS:
        assert f"notebooks/{stem}.html" in pages, f"no page for notebook {stem}"
    problems, states, blocked = {}, {}, []

    def guard(route):
        url = route.request.url
        host = urllib.parse.urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            ctx.route("**/*", guard)
            for rel in pages:
                page = ctx.new_page()
                console = []
                page.on("console", lambda m, c=console: c.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, c=console: c.append(f"page error: {e}"))
                bad = []
                try:
                    resp = page.goto(site_url + rel, wait_until="load", timeout=30_000)
                    if resp is None or resp.status != 200:
                        bad.append(f"HTTP {resp.status if resp else 'no response'}")
                    st = page.evaluate(_PAGE_STATE)
                    states[rel] = st
                    bad += [f"console: {c}" for c in console]
                    if st["raw"]:
                        bad.append(f"raw math delimiters in the text: {st['raw']}")
                    if st["hasMath"]:
                        mj = st["mj"]
                        if mj is None:
                            bad.append("MathJax did not load")
                        elif (mj["items"] == 0 or mj["attached"] < mj["items"] or mj["shown"] == 0
                              or mj["errors"] or mj["untypeset"]):
                            bad.append(f"math not typeset: {mj['attached']}/{mj['items']} shown, "
                                       f"{mj['errors']} errors, untypeset {mj['untypeset'][:3]}")
                    if st["broken"]:
                        bad.append(f"images not loaded: {st['broken'][:3]}")
                    if rel.startswith("notebooks/"):
                        if st["imgs"] == 0:
                            bad.append("a notebook page without any figure")
                        if st["errorOutputs"] or st["tracebacks"]:
                            bad.append("an error output on a notebook page")
                except Exception as e:  # noqa: BLE001 — reported with a screenshot below
                    bad.append(f"{type(e).__name__}: {e}")
                if bad:
                    problems[rel] = bad
                    page.screenshot(path=str(SHOTS / ("book-" + rel.replace("/", "-") + ".png")), full_page=True)
                page.close()
        finally:
            browser.close()

    # internal links: the target file exists and, for an anchor, the target page has that id
    for rel, st in states.items():
        for href in st["links"]:
            if not href.startswith(site_url):
                continue
            parts = urllib.parse.urlsplit(href)
            target = urllib.parse.unquote(parts.path[len(urllib.parse.urlsplit(site_url).path):]) or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (SITE / target).is_file():
                problems.setdefault(rel, []).append(f"broken link {href}")
            elif parts.fragment and target in states and parts.fragment not in states[target]["ids"]:
                problems.setdefault(rel, []).append(f"broken anchor {href}")

    assert not blocked, f"the site asked the network for {sorted(set(blocked))[:5]}"
    assert not problems, "\n".join(f"{p}: {b}" for p, bs in problems.items() for b in bs)
    # the known formulas: the landing page's entropic OT and notebook 05's encoder q_phi(z | x)
    assert any("\\varepsilon\\, \\mathrm{KL}" in t for t in states["index.html"]["mj"]["tex"])
    nb05 = next(f"notebooks/{s}.html" for s in NOTEBOOKS if s.startswith("05"))
    assert any("q_\\phi(z\\mid x)" in t for t in states[nb05]["mj"]["tex"])
    for stem in NOTEBOOKS:   # every notebook page has typeset math and figures
        st = states[f"notebooks/{stem}.html"]
        assert st["imgs"] > 0
    print(f"\n   book: {len(pages)} pages offline, "
          f"{sum(s['mj']['items'] for s in states.values() if s['mj'])} formulas typeset, "
          f"{sum(s['imgs'] for s in states.values())} figures")
