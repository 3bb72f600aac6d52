"""Sphinx configuration of the neurodelay documentation (``make docs`` builds it into build/docs/html).

The gallery (docs/examples/plot_*.py) runs every example and shows its figure.
``NEURODELAY_GALLERY_QUICK=1`` makes the examples run at a reduced scale (CI);
``NEURODELAY_GALLERY_PATTERN`` (a regular expression on file names) runs only
the matching examples and shows the others' code without output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
if (ROOT / "neurodelay" / "__init__.py").is_file():   # a checkout: document its code
    sys.path.insert(0, str(ROOT))

import neurodelay  # noqa: E402

project = "neurodelay"
author = "the neurodelay developers"
copyright = "the neurodelay developers"  # noqa: A001 - Sphinx's name
version = release = neurodelay.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "examples", "**.ipynb_checkpoints"]
default_role = "py:obj"       # `name` in a docstring links to the object when it can
nitpicky = False

# ---- API reference: one page per public module, members documented where they are defined
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True,
                           "ignore-module-all": True}  # document names where they are defined
autodoc_typehints = "none"              # the numpydoc sections carry types and units
autodoc_member_order = "bysource"
numpydoc_show_class_members = False     # members are documented by autodoc on the module page
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set = set()

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "xarray": ("https://docs.xarray.dev/en/stable/", None),
    "brian2": ("https://brian2.readthedocs.io/en/stable/", None),
}
# the build never goes online: an unreachable inventory would only warn, so read none unless asked
if not os.environ.get("NEURODELAY_DOCS_INTERSPHINX"):
    intersphinx_mapping = {}

# ---- gallery
_pattern = os.environ.get("NEURODELAY_GALLERY_PATTERN", r"/plot_")
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": _pattern,
    "ignore_pattern": r"(__init__|_common)\.py",
    "within_subsection_order": "FileNameSortKey",    # plot_1_..., plot_2_...: the reading order
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 1,
    "reset_modules": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
}

# ---- HTML
html_theme = "alabaster"
html_title = f"neurodelay {release}"
html_theme_options = {
    "description": "Spiking networks with axonal, dendritic and synaptic delays",
    "fixed_sidebar": False,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_static_path: list = []
html_show_sourcelink = False
