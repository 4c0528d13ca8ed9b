"""Every backend against SciPy on random problems: shapes 1-D to 4-D (with length-1 and
empty axes), every mode, dtype and boundary.

A backend may decline a problem (``supports()`` returns a reason); the test then checks the
reason is a real sentence and that ``auto`` answers the same problem correctly.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convcore
from reference import assert_matches, build_problem, context, make_array, reference

MODES = ["full", "same", "valid"]
DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]
SHAPE_PAIRS = [
    ((9,), (3,)), ((10,), (4,)), ((1,), (1,)), ((5,), (7,)), ((16,), (16,)),
    ((6, 7), (3, 3)), ((8, 5), (2, 4)), ((1, 9), (1, 3)), ((5, 5), (5, 5)), ((3, 4), (5, 6)),
    ((4, 5, 6), (2, 3, 2)), ((3, 1, 5), (2, 1, 2)),
    ((3, 4, 2, 5), (2, 2, 1, 3)),
]
BOUNDARIES = ["fill", "wrap", "symm", "mirror", "nearest"]


def _expected_dtype(x, k):
    common = np.result_type(x, k)
    return common


def run_case(backend, operation, x, k, mode, boundary="fill", fillvalue=0):
    x_before, k_before = x.copy(), k.copy()
    function = getattr(convcore, operation)
    problem = build_problem(x, k, mode, operation, boundary, fillvalue)[2]
    verdict = convcore.get_backend(backend).supports(problem, context())
    if verdict is True:
        got = function(x, k, mode, backend=backend, boundary=boundary, fillvalue=fillvalue)
    else:
        assert isinstance(verdict, str) and len(verdict) > 10, f"{backend} declined without a reason"
        with pytest.raises(ValueError, match="cannot run"):
            function(x, k, mode, backend=backend, boundary=boundary, fillvalue=fillvalue)
        got = function(x, k, mode, boundary=boundary, fillvalue=fillvalue)
    ref = reference(operation, x, k, mode, boundary, fillvalue)
    assert_matches(got, ref, x, k, _expected_dtype(x, k))
    np.testing.assert_array_equal(x, x_before)  # inputs are never modified
    np.testing.assert_array_equal(k, k_before)
    assert not np.shares_memory(got, x) and not np.shares_memory(got, k)


@pytest.mark.parametrize("operation", ["convolve", "correlate"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
def test_float64_shapes(backend_name, operation, mode, shapes, rng):
    x_shape, k_shape = shapes
    x, k = make_array(rng, x_shape, "float64"), make_array(rng, k_shape, "float64")
    if mode == "valid" and not (all(a >= b for a, b in zip(x_shape, k_shape))
                                or all(b >= a for a, b in zip(x_shape, k_shape))):
        with pytest.raises(ValueError, match="in1 and in2"):
            getattr(convcore, operation)(x, k, mode, backend=backend_name)
        return
    run_case(backend_name, operation, x, k, mode)


@pytest.mark.parametrize("operation", ["convolve", "correlate"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_dtypes(backend_name, operation, dtype, mode, rng):
    for x_shape, k_shape in [((13,), (4,)), ((7, 9), (3, 2)), ((4, 3, 5), (2, 2, 3))]:
        x, k = make_array(rng, x_shape, dtype), make_array(rng, k_shape, dtype)
        run_case(backend_name, operation, x, k, mode)


@pytest.mark.parametrize("pair", [("int8", "float32"), ("float32", "float64"),
                                  ("float32", "complex64"), ("int64", "float32"),
                                  ("uint8", "int8"), ("float64", "complex64")])
def test_mixed_dtypes(backend_name, pair, rng):
    x, k = make_array(rng, (8, 6), pair[0]), make_array(rng, (3, 3), pair[1])
    for operation in ("convolve", "correlate"):
        run_case(backend_name, operation, x, k, "same")


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize("shapes", [((9,), (4,)), ((6, 7), (3, 4)), ((4, 3), (5, 7)),
                                    ((4, 5, 3), (3, 2, 3))], ids=str)
def test_boundaries(backend_name, boundary, mode, shapes, rng):
    x, k = make_array(rng, shapes[0], "float64"), make_array(rng, shapes[1], "float64")
    for operation in ("convolve", "correlate"):
        run_case(backend_name, operation, x, k, mode, boundary, fillvalue=0.75)


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["int16", "float32", "complex128"])
def test_convolve2d_against_scipy(backend_name, boundary, mode, dtype, rng):
    import scipy.signal

    x, k = make_array(rng, (7, 8), dtype), make_array(rng, (3, 4), dtype)
    for ours, theirs in ((convcore.convolve2d, scipy.signal.convolve2d),
                         (convcore.correlate2d, scipy.signal.correlate2d)):
        expected = theirs(x, k, mode, boundary=boundary, fillvalue=2)
        problem = build_problem(x, k, mode, "correlate", boundary, 2,
                                                  late_centre=ours is convcore.correlate2d)[2]
        name = backend_name if convcore.get_backend(backend_name).supports(problem, context()) is True else "auto"
        got = ours(x, k, mode, boundary=boundary, fillvalue=2, backend=name)
        assert_matches(got, expected, x, k, expected.dtype)


def test_swapped_inputs(backend_name, rng):
    """in2 larger than in1 in 'valid' mode: the roles swap and the result is reversed and
    conjugated (SciPy's rule)."""
    x, k = make_array(rng, (3, 2), "complex128"), make_array(rng, (5, 4), "complex128")
    for mode in ("valid", "full"):  # 'full' swaps too when in2 is the larger input
        run_case(backend_name, "correlate", x, k, mode)
        run_case(backend_name, "convolve", x, k, mode)
        run_case(backend_name, "correlate", x.real.astype(np.int32), k.real.astype(np.int32), mode)


def test_object_arrays(backend_name, rng):
    x, k = make_array(rng, (6, 5), object), make_array(rng, (2, 3), object)
    for operation in ("convolve", "correlate"):
        run_case(backend_name, operation, x, k, "full")
        run_case(backend_name, operation, x, k, "same", "wrap")


@given(
    data=st.data(),
    ndim=st.integers(1, 3),
    mode=st.sampled_from(MODES),
    operation=st.sampled_from(["convolve", "correlate"]),
    dtype=st.sampled_from(["int32", "float32", "float64", "complex128"]),
    boundary=st.sampled_from(BOUNDARIES),
)
def test_hypothesis_random_problems(backend_name, data, ndim, mode, operation, dtype, boundary):
    x_shape = tuple(data.draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    if mode == "valid":
        k_shape = tuple(data.draw(st.integers(1, n)) for n in x_shape)
    else:
        k_shape = tuple(data.draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x, k = make_array(rng, x_shape, dtype), make_array(rng, k_shape, dtype)
    run_case(backend_name, operation, x, k, mode, boundary, fillvalue=1)


AXES_CASES = [  # (axes, kernel shape) for a (4, 9) signal: convolved and broadcast axes
    (None, (3, 3)), ((0, 1), (2, 4)), (0, (3, 1)), (0, (2, 9)), (1, (1, 3)), ((1,), (4, 3)),
    (-1, (1, 5)), (1, (3, 12)),
]


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("axes,k_shape", AXES_CASES, ids=str)
def test_fftconvolve_axes(backend_name, mode, axes, k_shape, rng):
    import scipy.signal

    x, k = make_array(rng, (4, 9), "float64"), make_array(rng, k_shape, "float64")
    for ours, theirs in ((convcore.fftconvolve, scipy.signal.fftconvolve),
                         (convcore.oaconvolve, scipy.signal.oaconvolve)):
        try:
            expected = theirs(x, k, mode, axes=axes)
        except ValueError:
            with pytest.raises(ValueError, match="in1 and in2"):
                ours(x, k, mode, axes=axes, backend=backend_name)
            continue
        problem = build_problem(x, k, mode, "convolve", axes=axes,
                                                  fft_dtypes=True)[2]
        name = backend_name if convcore.get_backend(backend_name).supports(problem, context()) is True else "auto"
        got = ours(x, k, mode, axes=axes, backend=name)
        assert_matches(got, expected, x, k, expected.dtype)


def test_fftconvolve_incompatible_broadcast_axes_raise(backend_name, rng):
    x, k = make_array(rng, (4, 9), "float64"), make_array(rng, (1, 3), "float64")
    with pytest.raises(ValueError, match="in1 and in2.*axis 1"):
        convcore.fftconvolve(x, k, axes=0, backend=backend_name)
