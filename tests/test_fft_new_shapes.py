"""First calls at new shapes (issue 22): the fft layout search is short, and it counts FFTW
planning for transform lengths not planned yet, so a one-off shape reuses a planned length."""

import numpy as np
import pytest
import scipy.signal

import convcore
from convcore.engine.problem import build_problem
from convcore.backends.fft import _layout, _plans


def _problem(x_shape, k_shape, mode="full", dtype=np.float64):
    return build_problem(np.empty(x_shape, dtype), np.empty(k_shape, dtype), mode, "convolve",
                         fft_dtypes=True)[2]


@pytest.fixture
def planned(monkeypatch):
    """A fresh set of planned lengths, seen by the planner and the cost model alike (and, by
    conftest's ``fresh_fft_geometries``, no geometry chosen yet)."""
    fresh = set()
    monkeypatch.setattr(_plans, "planned_lengths", fresh)
    monkeypatch.setattr(_layout, "planned_lengths", fresh)
    return fresh


def _cases():
    rng = np.random.default_rng(7)
    for n in rng.integers(3000, 300_000, 12):
        for m in (31, 1001, 5001):
            if 4 * m <= n:
                yield (int(n),), (m,), "full"
    for s in rng.integers(100, 1500, 5):
        for m in (7, 31):
            yield (int(s), int(s) + 13), (m, m), "same"


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("threads", [1, 2])
def test_banded_block_search_loses_little(planned, monkeypatch, dtype, threads):
    # The best block length of each 1/8 octave against every fast length: the layout chosen
    # from the short list is predicted within 6% of the exhaustive search's best.
    for x_shape, k_shape, mode in _cases():
        p = _problem(x_shape, k_shape, mode, dtype)
        monkeypatch.setattr(_layout, "BANDS_PER_OCTAVE", None)
        exhaustive = _layout.plan_layout(p, threads).seconds
        monkeypatch.setattr(_layout, "BANDS_PER_OCTAVE", 8)
        banded = _layout.plan_layout(p, threads).seconds
        assert exhaustive <= banded <= 1.06 * exhaustive, (x_shape, k_shape)


def test_shortlist_keeps_one_length_per_band():
    lengths = _layout._block_lengths(200_000, 1001, real=True)
    short = _layout._shortlist(lengths, 1001, 1, "estimate")
    assert set(short) <= set(lengths) and len(short) < len(lengths) / 3
    bands = [int(np.log2(n) * _layout.BANDS_PER_OCTAVE) for n in short]
    assert len(bands) == len(set(bands))


def test_new_lengths_cost_planning_and_planned_ones_do_not(planned):
    p = _problem((123_457,), (1001,))
    lay = _layout.plan_layout(p, 1)
    assert _layout._planning_seconds(lay) > 0
    planned.update(lay.sizes.values())
    assert _layout._planning_seconds(lay) == 0
    measured = _layout.plan_layout(p, 1, effort="measure")
    assert _layout._planning_seconds(measured) == 0  # measure asks for planning: no penalty


def test_one_off_shapes_reuse_a_planned_block_length(planned, rng):
    # After one call has planned its blocks, other signal lengths block the same way (no new
    # FFTW planning), and their results still match SciPy's.
    k = rng.standard_normal(1001)
    first = rng.standard_normal(150_001)
    np.testing.assert_allclose(convcore.fftconvolve(first, k),
                               scipy.signal.fftconvolve(first, k), atol=1e-9)
    assert planned, "planning records the lengths it planned"
    known = set(planned)
    for n in (97_003, 123_457, 181_111):
        lay = _layout.plan_layout(_problem((n,), (1001,)), 1)
        assert lay.path == "oa" and set(lay.sizes.values()) <= known, (n, lay)
        x = rng.standard_normal(n)
        np.testing.assert_allclose(convcore.fftconvolve(x, k), scipy.signal.fftconvolve(x, k),
                                   atol=1e-9)
