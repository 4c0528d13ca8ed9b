"""Literal answers a textbook (or SciPy's docs) gives, and the edge cases of the API."""

import numpy as np
import pytest
import scipy.signal

import convcore


@pytest.fixture(params=["auto", "naive"])
def backend(request):
    return request.param


def test_one_dimensional_literal(backend):
    np.testing.assert_allclose(convcore.convolve([1, 2, 3], [0, 1, 0.5], backend=backend),
                               [0, 1, 2.5, 4, 1.5])
    np.testing.assert_allclose(convcore.convolve([1, 2, 3], [0, 1, 0.5], "same", backend=backend),
                               [1, 2.5, 4])
    np.testing.assert_allclose(convcore.convolve([1, 2, 3], [0, 1, 0.5], "valid", backend=backend),
                               [2.5])
    np.testing.assert_allclose(convcore.correlate([1, 2, 3], [0, 1, 0.5], backend=backend),
                               [0.5, 2, 3.5, 3, 0])


def test_integer_wrapping_as_design_says(backend):
    got = convcore.convolve(np.array([100, 100], np.int8), np.array([2, 2], np.int8), backend=backend)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, [-56, -112, -56])
    big = np.array([2**62, 3], np.int64)
    np.testing.assert_array_equal(convcore.convolve(big, np.array([4], np.int64), backend=backend),
                                  [0, 12])  # 2**64 wraps to 0, as int64 arithmetic does
    u = convcore.convolve(np.array([250], np.uint8), np.array([2, 1], np.uint8), backend=backend)
    np.testing.assert_array_equal(u, [244, 250])


def test_box_blur_2d(backend):
    image = np.zeros((5, 5))
    image[2, 2] = 9.0
    got = convcore.convolve(image, np.ones((3, 3)) / 9, "same", backend=backend)
    expected = np.zeros((5, 5))
    expected[1:4, 1:4] = 1.0
    np.testing.assert_allclose(got, expected, atol=1e-15)


def test_complex_correlation_conjugates(backend):
    got = convcore.correlate(np.array([1j, 2]), np.array([1j]), backend=backend)
    np.testing.assert_allclose(got, [1, -2j])


def test_convolve2d_boundaries_literal(backend):
    eye = np.eye(2)
    np.testing.assert_allclose(
        convcore.convolve2d(eye, [[1, 2]], "same", boundary="wrap", backend=backend),
        [[1, 2], [2, 1]])
    np.testing.assert_allclose(
        convcore.convolve2d([[1, 2, 3]], [[1, 1, 1]], "same", boundary="symm", backend=backend),
        [[4, 6, 8]])
    np.testing.assert_allclose(
        convcore.convolve2d([[1, 2, 3]], [[1, 1, 1]], "same", boundary="fill", fillvalue=10,
                            backend=backend), [[13, 6, 15]])
    np.testing.assert_allclose(
        convcore.convolve([1, 2, 3], [1, 1, 1], "same", boundary="nearest", backend=backend),
        [4, 6, 8])
    np.testing.assert_allclose(
        convcore.convolve([1, 2, 3], [1, 1, 1], "same", boundary="mirror", backend=backend),
        [5, 6, 7])


def test_zero_dimensional_inputs():
    assert convcore.convolve(np.float32(2), np.int8(3)) == 6
    assert convcore.convolve(np.float32(2), np.int8(3)).dtype == np.float32
    assert convcore.correlate(np.complex64(2 + 1j), np.complex64(3 + 1j)) == 7 + 1j
    assert convcore.fftconvolve(2.0, 3.0, backend="naive") == 6.0


@pytest.mark.parametrize("mode,shape", [("full", (2, 4)), ("same", (0, 3))])
def test_empty_inputs_give_zeros_of_the_right_shape(backend, mode, shape):
    # convolve2d answers where SciPy's does; convolve refuses 'full' (tests/test_errors.py).
    got = convcore.convolve2d(np.ones((0, 3)), np.ones((3, 2)), mode, backend=backend)
    assert got.shape == shape and got.dtype == np.float64
    assert not got.any()
    if mode == "same":
        assert convcore.convolve(np.ones((0, 3)), np.ones((3, 2)), mode, backend=backend).shape == shape


def test_empty_kernel_and_valid_containment(backend):
    got = convcore.convolve2d(np.ones((1, 4)), np.ones((1, 0)), "same", backend=backend)
    assert got.tolist() == [[0] * 4]
    # SciPy's containment rule: (0, 3) is contained in (2, 3), so 'valid' gives (3, 1) zeros.
    got = convcore.convolve(np.ones((0, 3)), np.ones((2, 3)), "valid", backend=backend)
    assert got.shape == scipy.signal.convolve(np.ones((0, 3)), np.ones((2, 3)), "valid").shape
    assert convcore.fftconvolve(np.ones(0), np.ones(2), backend=backend).shape == (0,)


def test_float16_is_computed_in_float32(backend):
    x = np.full(2000, 0.1, np.float16)
    got = convcore.convolve(x, np.ones(2000, np.float16), "valid", backend=backend)
    assert got.dtype == np.float16
    # A float16 accumulator would stall far below the true sum (199.9, rounded to float16).
    np.testing.assert_allclose(got, [np.float16(float(np.float16(0.1)) * 2000)], rtol=1e-3)


def test_lists_and_read_only_arrays(backend):
    x = np.arange(10.0)
    x.flags.writeable = False
    k = np.array([1.0, -1.0])
    k.flags.writeable = False
    np.testing.assert_allclose(convcore.convolve(x, k, backend=backend),
                               scipy.signal.convolve(x, k))
    assert convcore.convolve([1, 2, 3], [1, 1], backend=backend).tolist() == [1, 3, 5, 3]


def test_non_contiguous_inputs(backend):
    base = np.random.default_rng(1).standard_normal((12, 16))
    x, k = base[::2, ::3], base[:3, 1:8:2].T
    np.testing.assert_allclose(convcore.convolve(x, k, "same", backend=backend),
                               scipy.signal.convolve(x, k, "same"), atol=1e-12)


def test_result_never_aliases_input(backend):
    x = np.arange(5.0)
    got = convcore.convolve(x, [1.0], backend=backend)
    assert not np.shares_memory(got, x)
    got[:] = -1
    assert x.tolist() == [0, 1, 2, 3, 4]


def test_choose_conv_method_and_explain():
    assert convcore.choose_conv_method([1, 2, 3], [1, 1]) == "direct"
    method, times = convcore.choose_conv_method(np.ones(50), np.ones(5), measure=True)
    assert method in times and all(t > 0 for t in times.values())
    text = convcore.explain(np.ones((30, 30)), np.ones((3, 3)), measure=True)
    assert "chosen:" in text and "naive" in text and "measured:" in text
