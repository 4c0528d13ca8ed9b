"""NaN and inf in a kernel: every direct backend gives SciPy's direct answer.

SciPy forms every product of a tap with the zero-extended signal in N-D (inf * 0 fill =
NaN), and only products of real samples for two 1-D inputs (``numpy.convolve``); which
input is extended depends on the mode and on which is larger. The answers are compared
class by class (NaN, +inf, -inf positions) and in value where finite.
"""

import warnings

import numpy as np
import pytest
import scipy.signal

import convcore
from convcore._cy.finite import all_finite

DIRECT = ("naive", "openmp", "im2col", "auto")


def assert_same_ieee(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-9, atol=1e-9)


def spoiled(rng, shape, count):
    values = rng.standard_normal(shape)
    for _ in range(count):
        values.flat[rng.integers(values.size)] = rng.choice([np.inf, -np.inf, np.nan, 0.0])
    return values


def test_textbook_answers():
    # numpy.convolve forms only products of real samples: the last output is 2 * 1.
    np.testing.assert_array_equal(convcore.convolve([1.0, 2.0], [np.inf, 1.0]),
                                  [np.inf, np.inf, 2.0])
    # SciPy's 2-D direct sum meets the zero fill with the infinite tap: inf * 0 = NaN.
    np.testing.assert_array_equal(convcore.convolve(np.ones((1, 2)), [[np.inf, 1.0]]),
                                  [[np.inf, np.inf, np.nan]])
    # +inf and -inf products in one output cancel to NaN, in every backend.
    for backend in DIRECT:
        got = convcore.convolve([1.0, -1.0], [np.inf], backend=backend)
        np.testing.assert_array_equal(got, [np.inf, -np.inf])
        got = convcore.convolve([1.0, 1.0], [np.inf, -np.inf], "valid", backend=backend)
        assert np.isnan(got).all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("backend", DIRECT)
def test_nd_functions_match_scipy(seed, backend):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        nd = int(rng.integers(1, 4))
        x = spoiled(rng, tuple(rng.integers(1, 7, nd)), int(rng.integers(0, 2)))
        k = spoiled(rng, tuple(rng.integers(1, 6, nd)), int(rng.integers(1, 3)))
        if rng.random() < 0.3:
            x, k = k, x  # the smaller input holds the NaN or inf
        for operation in ("convolve", "correlate"):
            for mode in ("full", "same", "valid"):
                try:
                    expected = getattr(scipy.signal, operation)(x, k, mode, method="direct")
                except ValueError:
                    continue  # 'valid' without containment: both refuse (tested elsewhere)
                got = getattr(convcore, operation)(x, k, mode, backend=backend)
                assert_same_ieee(got, expected)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("backend", DIRECT)
def test_2d_functions_with_boundaries_match_scipy(seed, backend):
    rng = np.random.default_rng(100 + seed)
    for _ in range(15):
        x = spoiled(rng, tuple(rng.integers(1, 7, 2)), int(rng.integers(0, 2)))
        k = spoiled(rng, tuple(rng.integers(1, 5, 2)), int(rng.integers(1, 3)))
        for function in ("convolve2d", "correlate2d"):
            for mode in ("full", "same", "valid"):
                for boundary, fill in (("fill", 0), ("fill", 2.0), ("fill", np.nan),
                                       ("wrap", 0), ("symm", 0)):
                    try:
                        expected = getattr(scipy.signal, function)(
                            x, k, mode, boundary=boundary, fillvalue=fill)
                    except ValueError:
                        continue
                    got = getattr(convcore, function)(x, k, mode, boundary=boundary,
                                                      fillvalue=fill, backend=backend)
                    assert_same_ieee(got, expected)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.int64, np.float64),
                                    (np.float32, np.float64)])
def test_dtypes_follow_scipy(dtypes):
    rng = np.random.default_rng(7)
    for nd in (1, 2):
        x = (3 * rng.standard_normal((6,) * nd)).astype(dtypes[0])
        k = rng.standard_normal((3,) * nd).astype(dtypes[1])
        k.flat[0] = np.inf
        for mode in ("full", "same", "valid"):
            expected = scipy.signal.convolve(x, k, mode, method="direct")
            got = convcore.convolve(x, k, mode)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
            np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))


def test_inputs_unchanged_and_fft_keeps_its_own_answer():
    x, k = np.arange(12.0).reshape(3, 4), np.array([[np.nan, 1.0], [2.0, np.inf]])
    x_before, k_before = x.copy(), k.copy()
    convcore.convolve(x, k)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(k, k_before)
    # An FFT spreads NaN over the whole result, as SciPy's method='fft' (with its warning).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(convcore.convolve(x, k, method="fft")).all()
        assert np.isnan(convcore.fftconvolve(x, k)).all()


def test_all_finite():
    assert all_finite(np.ones(5, np.float32)) and all_finite(np.ones((2, 3)))
    for dtype in (np.float32, np.float64, np.float16, np.complex128):
        values = np.ones(7, dtype)
        values[5] = np.inf
        assert not all_finite(values)
        values[5] = np.nan
        assert not all_finite(values)
        assert not all_finite(values[::-1])        # strided: the NumPy fallback
    assert all_finite(np.arange(4)) and all_finite(np.array([], np.float64))
