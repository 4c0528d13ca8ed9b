"""docs/nn.md's examples run, and give the numbers the page states."""

import doctest
import pathlib

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def test_nn_page_examples():
    result = doctest.testfile(str(DOCS / "nn.md"), module_relative=False)
    assert result.attempted >= 8 and result.failed == 0
