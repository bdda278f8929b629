# Sphinx configuration of the course site. Built by `make book` (python -m lsbcore.book), which copies
# this folder to build/book/src, adds the executed notebooks and runs sphinx-build there.
# Nothing is executed by Sphinx itself: the notebooks arrive with their outputs.

project = "lsbcore: Schrödinger-bridge diffusion models"
author = "the lsbcore authors"
copyright = "the lsbcore authors, MIT licence"

extensions = [
    "myst_nb",                 # .md pages and .ipynb notebooks (MyST markdown)
    "sphinx-mathjax-offline",  # MathJax 3 from a Python package, copied into _static/mathjax/
]

# Math: the local MathJax copy, never a CDN, so that the pages typeset without a network.
mathjax_path = "mathjax/tex-chtml.js"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# The notebooks are executed before Sphinx sees them (lsbcore/book.py).
nb_execution_mode = "off"
nb_output_stderr = "show"          # warnings a cell prints stay visible, as in Jupyter
nb_merge_streams = True
nb_ipywidgets_js = {}              # widgets arrive as their static state: no widget JavaScript (CDN)

exclude_patterns = ["_build", "_readme.md", "_theory.md", "_exercises.md", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]  # a notebook may go from "#" to "###"

html_theme = "sphinx_book_theme"
html_title = "lsbcore course"
html_static_path = ["_static"]
html_css_files = ["lsb.css"]
html_last_updated_fmt = None
# light by default (an empty mode makes the theme log a console error on a first visit)
html_context = {"default_mode": "light"}
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": True,
    "navigation_with_keys": False,
    # no icon fonts or analytics from the network
    "icon_links": [],
}


def _repository():
    """The repository URL and branch, written once in lsbcore/course.py (REPOSITORY, BRANCH)."""
    try:
        from lsbcore import course
    except ImportError:
        return None, None
    return getattr(course, "REPOSITORY", None), getattr(course, "BRANCH", "main")


_repo, _branch = _repository()
if _repo:   # "Open in Colab" / Binder buttons on every notebook page (the .ipynb committed in notebooks/)
    html_theme_options.update({
        "repository_url": _repo,
        "repository_branch": _branch,
        "path_to_docs": "",
        "launch_buttons": {"colab_url": "https://colab.research.google.com",
                           "binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"},
        "use_repository_button": True,
    })
