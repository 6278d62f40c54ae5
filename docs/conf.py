"""Sphinx configuration of the snn-tutorial site (MyST-NB + sphinx-book-theme).

The notebooks live in ``docs/notebooks`` (the repository's ``notebooks/`` is a symlink to it: no
copies) and are executed at build time: ``cache`` by default (an unchanged notebook is not re-run),
``force`` in the test suite (``-D nb_execution_mode=force``). This file only sets options; it writes
no files.
"""

import os

project = "snn-tutorial"
author = "the snn-tutorial authors"
copyright = "2026, the snn-tutorial authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # serves MathJax from _static: the site works offline
]

# The .ipynb is the page (with its download button); its MyST twin is the same notebook as text.
exclude_patterns = ["_build", "notebooks/*.md", "**/.ipynb_checkpoints", "jupyter_execute"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# Execution: a failing cell fails the build.
nb_execution_mode = "cache"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_show_tb = True
# Notebooks rendered from their stored outputs, not executed (comma-separated patterns). The test suite
# sets it for the notebooks that nbval re-executes and compares in the same run; empty otherwise.
nb_execution_excludepatterns = [p for p in os.environ.get("DOCS_RENDER_STORED", "").split(",") if p]
nb_merge_streams = True

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_numpy_docstring = True

html_theme = "sphinx_book_theme"
html_title = "Training spiking neural networks"
html_static_path = ["_static"]
html_theme_options = {
    "use_download_button": True,
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
