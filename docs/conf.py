"""Sphinx settings for the HTML build of docs/ (the course pages executed, with their figures).

Build (README, "Documentation"): ``pip install ".[docs]" && python -m sphinx -b html docs
build/docs-html``. Nothing here reaches the network: no intersphinx, the bundled alabaster
theme, and MyST-NB runs every course page in a local Jupyter kernel.
"""

project = "convcore"
author = "convcore developers"
root_doc = "index"

extensions = ["myst_nb"]
# The course pages are percent-format Python (docs/course/index.md says why); jupytext
# reads them as notebooks.
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
exclude_patterns = ["conf.py", "course/_course.py", "**/__pycache__"]

# Every page runs at each build (its timings are this machine's, now); a page that raises
# fails the build. The pages run in their own folder, where they find _course.py.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 1800
nb_execution_show_tb = True

# Pages are linked from docs/index.md and docs/course/index.md rather than a toctree, so
# they read the same on a code host; README.md and source files are outside docs/.
suppress_warnings = ["toc.not_included", "myst.xref_missing"]

html_theme = "alabaster"
html_title = "convcore: the course and the teaching pages"
