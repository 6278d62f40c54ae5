"""Sphinx configuration of the snn-tutorial site (MyST-NB + sphinx-book-theme).

The notebooks live in ``docs/notebooks`` (the repository's ``notebooks/`` is a symlink to it: no
copies) and are executed at build time: ``cache`` by default (an unchanged notebook is not re-run),
``force`` in the test suite (``-D nb_execution_mode=force``). This file only sets options; it writes
no files.
"""

import os

from sphinx.util import inspect
from sphinx.util.typing import stringify_annotation

project = "snn-tutorial"
author = "the snn-tutorial authors"
copyright = "2026, the snn-tutorial authors"

extensions = [
    "myst_nb",
    "sphinx_copybutton",  # a copy button on every code cell
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
html_css_files = ["custom.css"]  # layout: code fits at 1280 px (see the file)
html_theme_options = {
    "use_download_button": True,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    # pydata-sphinx-theme 0.20 fills an unset navbar_persistent with a search field, which renders its
    # own top bar: a second search box, and hidden sidebar toggles placed before the book theme's, so
    # both themes' scripts (document.querySelector) bind the hidden ones and the visible toggles do
    # nothing (pydata-sphinx-theme#2451, sphinx-book-theme#991). Empty, the top bar is not rendered.
    "navbar_persistent": [],
}
html_last_updated_fmt = None

# Copy buttons copy the code only: not the prompts of the few console examples, nor Jupyter's output.
copybutton_exclude = ".linenos, .gp, .go"


def constructor_signature(app, what, name, obj, options, signature, return_annotation):
    """Show a class's real constructor signature where its metaclass hides it.

    brainstate's modules (``helpers.SNN``) are built by a metaclass whose ``__call__(*args, **kwargs)
    -> Any`` is what ``inspect.signature`` reports for the class, so autodoc would show
    ``SNN(*args, **kwargs)`` and "Return type: Any". Take the signature of the class's own ``__init__``
    instead, and record its annotations for the parameter descriptions (``autodoc_typehints``).
    """
    if what != "class" or signature != "(*args, **kwargs)" or type(obj).__call__ is type.__call__:
        return None
    init = inspect.signature(obj.__init__, bound_method=True)
    annotations = app.env.current_document.autodoc_annotations
    annotations[name] = {
        param.name: stringify_annotation(param.annotation, "smart")
        for param in init.parameters.values()
        if param.annotation is not param.empty
    }
    return inspect.stringify_signature(init, show_annotation=False), None


def setup(app):
    app.connect("autodoc-process-signature", constructor_signature)
