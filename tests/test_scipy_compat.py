"""Where convcore once differed from SciPy 1.17 (issue 22), each compared with SciPy itself:
long double, bool, the NaN warning of method='fft', inputs with no axis to convolve,
element-wise accuracy of convolve2d and method='direct', and SciPy's error words."""

import warnings

import numpy as np
import pytest
import scipy.signal

import convcore
from convcore.engine.long_double import DTYPES as LONG_DOUBLES

needs_long_double = pytest.mark.skipif(not LONG_DOUBLES, reason="long double is float64 here")
LD_TOL = dict(rtol=1e3 * float(np.finfo(np.longdouble).eps), atol=0)


@needs_long_double
@pytest.mark.parametrize("dtype", [np.longdouble, np.clongdouble])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("name", ["convolve", "correlate", "fftconvolve", "oaconvolve"])
def test_long_double_equals_scipy_in_long_double(rng, dtype, mode, name):
    x = rng.random((9, 8)).astype(dtype)
    k = rng.random((4, 3)).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x, k = x + 0.3j * x[::-1], k - 0.2j
    got = getattr(convcore, name)(x, k, mode)
    want = getattr(scipy.signal, name)(x, k, mode)
    assert got.dtype == want.dtype == dtype
    np.testing.assert_allclose(got, want, **LD_TOL)


@needs_long_double
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_long_double_2d_boundaries_equal_scipy(rng, boundary):
    x = rng.random((7, 6)).astype(np.longdouble)
    k = rng.random((3, 4)).astype(np.longdouble)
    for name in ("convolve2d", "correlate2d"):
        got = getattr(convcore, name)(x, k, "same", boundary=boundary, fillvalue=2)
        want = getattr(scipy.signal, name)(x, k, "same", boundary=boundary, fillvalue=2)
        assert got.dtype == np.longdouble
        np.testing.assert_allclose(got, want, **LD_TOL)


@needs_long_double
def test_long_double_keeps_digits_float64_loses():
    # 1 + 2**-60 is not a float64; the textbook answer [1, 1 + 2**-60, 2**-60] needs them.
    tiny = np.longdouble(2) ** -60
    got = convcore.convolve(np.array([1, tiny], np.longdouble), np.ones(2, np.longdouble))
    assert got.tolist() == [1, 1 + tiny, tiny]
    assert convcore.fftconvolve(np.array([1, tiny], np.longdouble), np.ones(2, np.longdouble),
                                axes=0)[1] == 1 + tiny


@needs_long_double
def test_long_double_method_choice_and_named_backends():
    x = np.ones(10, np.clongdouble)
    assert convcore.choose_conv_method(x, x) == scipy.signal.choose_conv_method(x, x) == "direct"
    method, times = convcore.choose_conv_method(x, x, measure=True)
    assert method == "direct" and times["direct"] >= 0
    assert convcore.convolve(x, x, method="fft").dtype == np.clongdouble
    with pytest.raises(ValueError, match="backend 'openmp' cannot run this problem: "
                                         "complex256 .long double."):
        convcore.convolve(x, x, backend="openmp")


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_bool_gives_bool_as_scipy(mode, method, name):
    rs = np.random.RandomState(42)
    x, k = rs.choice([0, 1], 100).astype(bool), rs.choice([0, 1], 30).astype(bool)
    got = getattr(convcore, name)(x, k, mode, method=method)
    want = getattr(scipy.signal, name)(x, k, mode, method="direct")
    assert got.dtype == want.dtype == np.bool_
    np.testing.assert_array_equal(got, want)
    assert convcore.choose_conv_method(x, k) == scipy.signal.choose_conv_method(x, k) == "direct"


def test_bool_nd_is_exact():
    # SciPy's N-D direct loop refuses bool; its FFT can turn rounding noise into True.
    x = np.random.default_rng(3).random((20, 30)) > 0.7
    k = np.ones((5, 4), bool)
    got = convcore.convolve(x, k, "same")
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, scipy.signal.convolve2d(x.astype(int), k.astype(int),
                                                               "same") != 0)


def test_fft_on_nan_or_inf_warns_in_scipy_words():
    x = np.random.default_rng(0).standard_normal(1000)
    for value in (np.nan, np.inf):
        x[100] = value
        with pytest.warns(RuntimeWarning, match="^Use of fft convolution on input with NAN "
                                                "or inf results in NAN or inf output"):
            convcore.convolve(x, np.ones(200), "same", method="fft")
        with pytest.warns(RuntimeWarning, match="Use of fft convolution"):
            convcore.correlate(np.ones(200), x, method="fft")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            auto = convcore.convolve(x, np.ones(200), "same")  # NaN/inf stay local, no warning
            convcore.fftconvolve(x, np.ones(200))  # SciPy's fftconvolve does not warn either
        assert np.isfinite(auto).sum() > 500


@pytest.mark.parametrize("name", ["fftconvolve", "oaconvolve"])
@pytest.mark.parametrize("a,b,axes", [
    ([4967], [3920], None), (np.ones((2, 3)), np.ones((2, 1)), 1),
    (np.arange(6).reshape(2, 3), np.arange(2).reshape(2, 1), [1]),
    (np.ones((4, 1)), np.full((1, 5), 2.5), None)])
def test_no_axis_to_convolve_gives_scipy_product(name, a, b, axes):
    got = getattr(convcore, name)(a, b, axes=axes)
    want = getattr(scipy.signal, name)(a, b, axes=axes)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_convolve2d_is_accurate_element_by_element():
    # A rank-1 kernel whose taps span 1e-21 .. 1e-36 (firwin_2d's corners): SciPy's direct
    # sums return each tap to a few ulps; a low-rank pass would be off by ~1e-17 absolute.
    taps = scipy.signal.firwin_2d((31, 31), ("hamming", "hamming"), fc=0.4)
    impulse = np.zeros((63, 63))
    impulse[31, 31] = 1
    want = scipy.signal.convolve2d(impulse, taps, "same")
    for got in (convcore.convolve2d(impulse, taps, "same"),
                convcore.convolve(impulse, taps, "same", method="direct"),
                convcore.correlate2d(impulse, taps[::-1, ::-1], "same")):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert "separable" in convcore.explain(impulse, taps, "same", method="direct")
    named = convcore.convolve2d(impulse, taps, "same", backend="separable")
    np.testing.assert_allclose(named, want, rtol=0, atol=1e-15)  # asked for: still close


def test_int_and_float_with_inf_do_not_overflow():
    # (SciPy 1.17 itself raises OverflowError here, in choose_conv_method.)
    got = convcore.convolve([np.inf, 1.0], [1, 2])
    np.testing.assert_array_equal(got, [np.inf, np.inf, 2.0])
    assert convcore.convolve([1, 2], [np.inf, 1.0], backend="naive")[0] == np.inf


@pytest.mark.parametrize("call,words", [
    (lambda f: f.fftconvolve([1], [2], mode="chips"), "acceptable mode flags are 'valid', 'same', or 'full'"),
    (lambda f: f.oaconvolve([1], [[2]]), "in1 and in2 should have the same dimensionality"),
    (lambda f: f.oaconvolve(np.ones((2, 3)), np.ones((3, 2)), "valid"),
     "For 'valid' mode, one must be at least as large as the other in every dimension"),
    (lambda f: f.fftconvolve(np.zeros([5, 6, 2, 1]), np.zeros([5, 6, 3, 1]), axes=[0, 1]),
     r"incompatible shapes for in1 and in2: \(5, 6, 2, 1\) and \(5, 6, 3, 1\)"),
    (lambda f: f.fftconvolve([1], [2], axes=[]), "when provided, axes cannot be empty"),
    (lambda f: f.fftconvolve([1], [2], axes=[1.0]), "axes must be a scalar or iterable of integers"),
    (lambda f: f.fftconvolve([1], [2], axes=[1]), "axes exceeds dimensionality of input"),
    (lambda f: f.fftconvolve([1, 2], [2, 3], axes=[0, 0]), "all axes must be unique"),
    (lambda f: f.convolve2d([[1]], [[1, 2]], fillvalue=[1, 2]),
     "`fillvalue` must be scalar or an array with one element"),
    (lambda f: f.convolve2d([[1]], [[1, 2]], fillvalue=[]), "`fillvalue` cannot be an empty array"),
])
def test_errors_start_with_scipy_words(call, words):
    with pytest.raises(ValueError, match=words):
        call(scipy.signal)
    with pytest.raises(ValueError, match="^" + words):
        call(convcore)


@pytest.fixture
def small_bands(monkeypatch):
    from convcore.signal import bands as _bands

    monkeypatch.setattr(_bands, "MIN_BYTES", 1)
    monkeypatch.setattr(_bands, "BAND_BYTES", 2000)  # a few rows per band: many bands
    return _bands


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
@pytest.mark.parametrize("k_shape", [(3, 3), (4, 2), (1, 5)])
def test_strided_signals_in_bands_equal_scipy(small_bands, rng, mode, boundary, name, k_shape):
    base = rng.integers(-1000, 1000, (61, 94))
    x = base[:, ::2]  # strided: the banded path
    k = rng.integers(-9, 9, k_shape)
    got = getattr(convcore, name)(x, k, mode, boundary=boundary)
    want = getattr(scipy.signal, name)(x, k, mode, boundary=boundary)
    assert got.dtype == want.dtype and small_bands.applies(x, k, mode, boundary, 0, "direct")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_strided_nd_signals_in_bands_equal_scipy(small_bands, rng, mode, name):
    x = (rng.standard_normal((30, 12, 14)) + 1j * rng.standard_normal((30, 12, 14)))[:, ::2].T
    k = rng.standard_normal((3, 2, 4)) - 0.5j
    got = getattr(convcore, name)(x, k, mode, method="direct")
    want = getattr(scipy.signal, name)(x, k, mode, method="direct")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert not small_bands.applies(x, k, mode, "fill", 2.0, "direct")  # a fill value: no bands
    np.testing.assert_allclose(convcore.convolve2d(x[:, :, 0], k[:, :, 0], mode, fillvalue=2.0),
                               scipy.signal.convolve2d(x[:, :, 0], k[:, :, 0], mode, fillvalue=2.0),
                               rtol=1e-12, atol=1e-12)
