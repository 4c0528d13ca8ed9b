"""The docs run: docs/nn.md's examples, the other pages' code blocks, the backends' docstring
examples, and every page of the course (docs/course/), which checks its own answers."""

import doctest
import importlib
import os
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COURSE = sorted((DOCS / "course").glob("[0-9][0-9]-*.py"))
# Pages whose ```python blocks are runnable code. design.md's first block lists the Backend
# contract (signatures without bodies), so a block holding that marker is not run.
CODE_PAGES = {"separable.md": 1, "fft.md": 1, "im2col.md": 1, "winograd.md": 1, "design.md": 1,
              "README.md": 2}
LISTING = "# convcore.Backend, with defaults"


def test_nn_page_examples():
    result = doctest.testfile(str(DOCS / "nn.md"), module_relative=False)
    assert result.attempted >= 8 and result.failed == 0


def _run(arguments, cwd, **env):
    """Run a Python subprocess in `cwd` (so `import convcore` finds the installed build, not
    the source tree); return its completed process."""
    return subprocess.run([sys.executable, *arguments], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "MPLBACKEND": "Agg", **env})


@pytest.mark.parametrize("page", sorted(CODE_PAGES))
def test_page_code_blocks_run(page, tmp_path):
    text = (ROOT / page if page == "README.md" else DOCS / page).read_text()
    blocks = [b for b in re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
              if LISTING not in b]
    assert len(blocks) == CODE_PAGES[page]
    script = tmp_path / "blocks.py"
    script.write_text("\n".join(blocks))
    done = _run([str(script)], tmp_path)
    assert done.returncode == 0, done.stderr


def test_backend_docstring_examples():
    import convcore.backends

    attempted = 0
    for info in pkgutil.walk_packages(convcore.backends.__path__, "convcore.backends."):
        module = importlib.import_module(info.name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, info.name
        attempted += result.attempted
    assert attempted >= 5


def test_course_index_lists_every_page():
    index = (DOCS / "course" / "index.md").read_text()
    linked = re.findall(r"\]\(([0-9][0-9]-[\w-]+\.py)\)", index)
    assert linked == [page.name for page in COURSE]
    assert len(COURSE) == 11


@pytest.mark.slow
@pytest.mark.parametrize("page", COURSE, ids=lambda page: page.stem)
def test_course_page_runs(page, tmp_path):
    """The page runs at CI size without an error (its asserts are its answers) and saves at
    least one figure."""
    done = _run([str(page)], tmp_path, CONVCORE_COURSE_SIZE="ci",
                CONVCORE_COURSE_FIGURES=str(tmp_path / "figures"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert list((tmp_path / "figures").glob(f"{page.stem[:2]}-*.png"))
