"""The separable backend's domain: kernels it must answer (Gaussian, box, Sobel, random
rank-1/rank-2, a 3-D outer product) against scipy, scipy.ndimage and cv2; its declines; the
rank/tol approximations and their error bound; sepconvolve against scipy."""

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
from hypothesis import event, given
from hypothesis import strategies as st

import convcore
from convcore.backends import separable
from reference import (
    assert_matches, build_problem, context, cores, default_constants, make_array, reference,
)

BOUNDARIES = ["fill", "wrap", "symm", "mirror", "nearest"]
NDIMAGE_MODE = {"fill": "constant", "wrap": "wrap", "symm": "reflect", "mirror": "mirror",
                "nearest": "nearest"}


def gaussian(n, sigma=None):
    sigma = sigma or 0.3 * ((n - 1) * 0.5 - 1) + 0.8
    g = np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / sigma) ** 2)
    return g / g.sum()


def problem_of(x, k, mode="same", operation="convolve", boundary="fill"):
    return build_problem(x, k, mode, operation, boundary)[2]


def assert_supported(x, k, mode="same", operation="convolve", boundary="fill"):
    verdict = separable.backend.supports(problem_of(x, k, mode, operation, boundary), context())
    assert verdict is True, verdict


# -- the domain it must answer ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [3, 7, 15])
def test_gaussian_matches_ndimage_convolve1d_twice(dtype, n, rng):
    x = make_array(rng, (70, 133), dtype)
    g = gaussian(n)
    k = np.outer(g, g).astype(dtype)
    assert_supported(x, k)
    got = convcore.convolve(x, k, "same", backend="separable")
    expected = scipy.ndimage.convolve1d(scipy.ndimage.convolve1d(x.astype(np.float64), g, 0,
                                                                 mode="constant"),
                                        g, 1, mode="constant")
    assert_matches(got, expected, x, k, np.dtype(dtype))


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape", [(5, 5), (3, 8), (4, 2)])
def test_box_every_boundary_matches_ndimage(boundary, shape, rng):
    x = make_array(rng, (19, 37), "float64")
    k = np.ones(shape)
    assert_supported(x, k, boundary=boundary)
    got = convcore.convolve(x, k, "same", backend="separable", boundary=boundary,
                            fillvalue=0.5)
    # ndimage centres even kernels one sample differently; compare there via the np.pad
    # reference and for odd kernels also against ndimage itself.
    ref = reference("convolve", x, k, "same", boundary, 0.5)
    assert_matches(got, ref, x, k, np.dtype("float64"))
    if all(n % 2 for n in shape):
        nd = scipy.ndimage.convolve(x, k, mode=NDIMAGE_MODE[boundary], cval=0.5)
        np.testing.assert_allclose(got, nd, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "uint64"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_sobel_integers_exact(dtype, mode, boundary, rng):
    x = make_array(rng, (17, 23), dtype)
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]).astype(dtype)
    assert_supported(x, sobel, mode, boundary=boundary)
    for ours, theirs in ((convcore.convolve2d, scipy.signal.convolve2d),
                         (convcore.correlate2d, scipy.signal.correlate2d)):
        got = ours(x, sobel, mode, boundary=boundary, fillvalue=3, backend="separable")
        expected = theirs(x, sobel, mode, boundary=boundary, fillvalue=3)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_integer_wrapping_like_scipy():
    x = np.full((6, 7), 100, np.int8)
    k = np.outer([1, 2, 1], [2, 2]).astype(np.int8)
    got = convcore.convolve(x, k, "full", backend="separable")
    np.testing.assert_array_equal(got, scipy.signal.convolve(x, k, "full", method="direct"))
    assert got.dtype == np.int8


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("operation", ["convolve", "correlate"])
def test_random_low_rank_kernels(dtype, rank, mode, operation, rng):
    x = make_array(rng, (41, 150), dtype)
    k = sum(np.outer(make_array(rng, 9, dtype), make_array(rng, 11, dtype))
            for _ in range(rank)).astype(dtype)
    assert_supported(x, k, mode, operation)
    got = getattr(convcore, operation)(x, k, mode, backend="separable")
    assert_matches(got, reference(operation, x, k, mode), x, k, np.dtype(dtype))


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_rank2_every_boundary(boundary, mode, rng):
    x = make_array(rng, (23, 30), "float64")
    k = np.outer(make_array(rng, 5, "float64"), make_array(rng, 6, "float64")) + \
        np.outer(make_array(rng, 5, "float64"), make_array(rng, 6, "float64"))
    for operation in ("convolve", "correlate"):
        got = getattr(convcore, operation)(x, k, mode, backend="separable",
                                           boundary=boundary, fillvalue=-1.5)
        assert_matches(got, reference(operation, x, k, mode, boundary, -1.5), x, k,
                       np.dtype("float64"))


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_3d_outer_product(boundary, mode, rng):
    x = make_array(rng, (9, 11, 70), "float64")
    a, b, c = np.array([1.0, 2, 1]), np.array([0.5, -1, 2, 1]), np.array([3.0, 1, 2])
    k = np.multiply.outer(np.multiply.outer(a, b), c)
    assert_supported(x, k, mode, boundary=boundary)
    for operation in ("convolve", "correlate"):
        got = getattr(convcore, operation)(x, k, mode, backend="separable",
                                           boundary=boundary, fillvalue=0.25)
        assert_matches(got, reference(operation, x, k, mode, boundary, 0.25), x, k,
                       np.dtype("float64"))
    if mode == "same":
        nd = scipy.ndimage.convolve(x, k, mode=NDIMAGE_MODE[boundary], cval=0.25,
                                    origin=(0, -1, 0))
        got = convcore.convolve(x, k, "same", backend="separable", boundary=boundary,
                                fillvalue=0.25)
        np.testing.assert_allclose(got, nd, rtol=1e-12, atol=1e-12)


def test_4d_outer_product_with_a_length_one_axis(rng):
    x = make_array(rng, (4, 3, 6, 9), "float32")
    k = np.einsum("a,b,c,d->abcd", [2.0], [1.0, 2, 3], [1.0, -1], [1.0, 0.5, 2]).astype("float32")
    assert_supported(x, k, "full")
    got = convcore.convolve(x, k, "full", backend="separable")
    assert_matches(got, reference("convolve", x, k, "full"), x, k, np.dtype("float32"))


@pytest.mark.parametrize("border,boundary", [(0, "fill"), (2, "symm"), (4, "mirror"),
                                             (1, "nearest")])
@pytest.mark.parametrize("n", [3, 7, 31])
def test_matches_cv2_sepfilter2d(border, boundary, n, rng):
    cv2 = pytest.importorskip("cv2")
    x = make_array(rng, (64, 96), "float32")
    ky, kx = gaussian(n).astype(np.float32), np.linspace(-1, 1, n).astype(np.float32)
    # sepFilter2D correlates (no flip) with the kernel centred: our correlate, mode 'same'.
    expected = cv2.sepFilter2D(x, -1, kx, ky, borderType=border)
    got = convcore.correlate(x, np.outer(ky, kx), "same", backend="separable",
                             boundary=boundary)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * np.abs(expected).max())


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_and_many_strips_agree_with_scipy(threads, rng):
    x = make_array(rng, (301, 517), "float32")
    k = np.outer(gaussian(9), gaussian(13)).astype(np.float32)
    with convcore.threads(threads):
        got = convcore.convolve(x, k, "same", backend="separable", boundary="wrap")
    assert_matches(got, reference("convolve", x, k, "same", "wrap"), x, k, np.dtype("float32"))


def test_repeated_calls_differ_only_in_fill_value(rng):
    x = make_array(rng, (20, 30), "float64")
    k = np.outer(gaussian(5), gaussian(7))
    for fill in (0.5, 0.75, -2.0, 0.0, 0.5):
        got = convcore.convolve(x, k, "same", backend="separable", fillvalue=fill)
        assert_matches(got, reference("convolve", x, k, "same", "fill", fill), x, k,
                       np.dtype("float64"))


def test_calls_from_many_python_threads(rng):
    from concurrent.futures import ThreadPoolExecutor

    x = make_array(rng, (256, 300), "float64")
    kernels = [np.outer(gaussian(n), np.linspace(-1, 1, n)) for n in (3, 5, 7, 9, 11, 13)]
    expected = [reference("convolve", x, k, "same", "symm") for k in kernels]
    with convcore.threads(2), ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda k: convcore.convolve(x, k, "same", backend="separable",
                                                             boundary="symm"), kernels * 3))
    for got, ref, k in zip(results, expected * 3, kernels * 3):
        assert_matches(got, ref, x, k, np.dtype("float64"))


def test_auto_picks_separable_for_a_separable_kernel_only(rng):
    x = make_array(rng, (200, 200), "float64")
    g = gaussian(15)
    with default_constants():
        assert "chosen: separable" in convcore.explain(x, np.outer(g, g), "same")
        assert "chosen: separable" not in convcore.explain(
            x, make_array(rng, (15, 15), "float64"), "same")


# -- what it declines ------------------------------------------------------------------------

def test_declines_full_rank_kernel_with_its_rank(rng):
    x, k = make_array(rng, (20, 20), "float64"), make_array(rng, (5, 5), "float64")
    verdict = separable.backend.supports(problem_of(x, k), context())
    assert isinstance(verdict, str) and "rank 5" in verdict
    with pytest.raises(ValueError, match="cannot run.*rank 5"):
        convcore.convolve(x, k, "same", backend="separable")


def test_plans_are_keyed_by_kernel_values(rng):
    """Same shapes, different values: a memoized plan must not be reused."""
    x = make_array(rng, (20, 20), "float64")
    convcore.convolve(x, np.ones((5, 5)), "same", backend="separable")
    with pytest.raises(ValueError, match="rank"):
        convcore.convolve(x, make_array(rng, (5, 5), "float64"), "same", backend="separable")


@pytest.mark.parametrize("x_shape,k_shape", [((30,), (7,)), ((6, 30), (1, 7)), ((9, 4), (5, 1))])
def test_declines_1d_problems(x_shape, k_shape, rng):
    x, k = make_array(rng, x_shape, "float64"), make_array(rng, k_shape, "float64")
    verdict = separable.backend.supports(problem_of(x, k), context())
    assert isinstance(verdict, str) and "1-D" in verdict


def test_declines_non_separable_integer_kernel_and_auto_answers(rng):
    x = make_array(rng, (12, 12), "int32")
    k = np.array([[1, 2], [3, 5]], np.int32)  # rank 2 over the integers
    verdict = separable.backend.supports(problem_of(x, k), context())
    assert isinstance(verdict, str) and "integer" in verdict
    np.testing.assert_array_equal(convcore.convolve(x, k, "same"),
                                  scipy.signal.convolve(x, k, "same", method="direct"))


def test_declines_nonfinite_kernel_and_broadcast_axes(rng):
    x = make_array(rng, (12, 12), "float64")
    k = np.ones((3, 3))
    k[1, 1] = np.nan
    assert "NaN" in separable.backend.supports(problem_of(x, k), context())
    p = build_problem(make_array(rng, (4, 9, 8), "float64"),
                                        np.ones((1, 3, 3)), "same", "convolve", axes=(1, 2),
                                        fft_dtypes=True)[2]
    assert "broadcast" in separable.backend.supports(p, context())


# -- approximations and their error bound ----------------------------------------------------

def test_decompose_bound_is_the_dropped_singular_values(rng):
    k = make_array(rng, (7, 9), "float64")
    s = np.linalg.svd(k, compute_uv=False)
    for rank in (1, 2, 5):
        d = separable.decompose(k, rank=rank)
        assert d.rank == rank
        np.testing.assert_allclose(d.frobenius_error, np.sqrt((s[rank:] ** 2).sum()), rtol=1e-12)
        np.testing.assert_allclose(np.abs(k - d.approximation()).sum(), d.l1_error, rtol=1e-12)
    d = separable.decompose(k, tol=s[2] / s[0] * 1.0001)  # keeps the values above s[2]
    assert d.rank == 2


@pytest.mark.parametrize("rank", [1, 2])
def test_rank_option_error_within_bound(rank, rng):
    x = make_array(rng, (40, 50), "float64")
    k = make_array(rng, (9, 9), "float64")
    exact = scipy.signal.convolve(x, k, "same")
    got = convcore.convolve(x, k, "same", backend="separable", backend_options={"rank": rank})
    bound = separable.decompose(k, rank=rank).max_output_error(np.abs(x).max())
    error = np.abs(got - exact).max()
    assert 0 < error <= bound * (1 + 1e-9)
    # ... and it is the rank-r kernel that was applied
    approx = separable.decompose(k, rank=rank).approximation()
    np.testing.assert_allclose(got, scipy.signal.convolve(x, approx, "same"), atol=1e-10)


def test_tol_option_on_a_nearly_separable_kernel(rng):
    x = make_array(rng, (30, 30), "float64")
    g = gaussian(11)
    k = np.outer(g, g) + 1e-6 * make_array(rng, (11, 11), "float64")
    assert isinstance(separable.backend.supports(problem_of(x, k), context()), str)  # exact: full rank
    got = convcore.convolve(x, k, "same", backend="separable", backend_options={"tol": 1e-3})
    d = separable.decompose(k, tol=1e-3)
    assert d.rank == 1
    error = np.abs(got - scipy.signal.convolve(x, k, "same")).max()
    assert error <= d.max_output_error(np.abs(x).max()) * (1 + 1e-9)


def test_bad_options_raise_naming_the_key(rng):
    x, k = make_array(rng, (9, 9), "float64"), np.ones((3, 3))
    with pytest.raises(ValueError, match="'rnak'"):
        convcore.convolve(x, k, backend="separable", backend_options={"rnak": 1})
    with pytest.raises(ValueError, match="'rank' must be an int"):
        convcore.convolve(x, k, backend="separable", backend_options={"rank": 0})
    with pytest.raises(ValueError, match="'tol' must be a float"):
        convcore.convolve(x, k, backend="separable", backend_options={"tol": -1.0})


def test_integer_decompose_is_exact():
    d = separable.decompose(np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]))
    assert d.exact and d.rank == 1
    u, v = (f.view(np.int64) for f in d.terms[0])
    np.testing.assert_array_equal(np.outer(u, v), [[1, 0, -1], [2, 0, -2], [1, 0, -1]])


# -- sepconvolve -----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["separable", "naive", "auto"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128", "int16"])
def test_sepconvolve_against_scipy(backend, mode, dtype, rng):
    x = make_array(rng, (30, 41), dtype)
    ky, kx = make_array(rng, 5, dtype), make_array(rng, 8, dtype)
    outer = np.multiply.outer(ky, kx)
    expected = scipy.signal.convolve(x, outer, mode, method="direct")
    got = convcore.sepconvolve(x, [ky, kx], mode, backend=backend)
    assert got.dtype == expected.dtype
    assert_matches(got, expected, x, outer, expected.dtype)


def test_sepconvolve_is_convolve1d_twice(rng):
    x = make_array(rng, (50, 60), "float64")
    a, b = make_array(rng, 7, "float64"), make_array(rng, 5, "float64")
    expected = scipy.ndimage.convolve1d(scipy.ndimage.convolve1d(x, a, 0, mode="mirror"),
                                        b, 1, mode="mirror")
    got = convcore.sepconvolve(x, [a, b], "same", boundary="mirror")
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_sepconvolve_large_factors_and_3d(rng):
    # 150 x 150 taps are over the engine's 128 x 128 kernel-value limit: the factors serve.
    x = make_array(rng, (160, 170), "float64")
    a, b = gaussian(150, 30.0), gaussian(150, 20.0)
    got = convcore.sepconvolve(x, [a, b], "same", boundary="symm")
    np.testing.assert_allclose(got, reference("convolve", x, np.outer(a, b), "same", "symm"),
                               rtol=1e-10, atol=1e-12)
    x3 = make_array(rng, (6, 7, 8), "float32")
    factors = [make_array(rng, 3, "float32"), make_array(rng, 2, "float32"),
               make_array(rng, 4, "float32")]
    outer = np.einsum("a,b,c->abc", *factors)
    assert_matches(convcore.sepconvolve(x3, factors, "full"),
                   reference("convolve", x3, outer, "full"), x3, outer, np.dtype("float32"))


def test_sepconvolve_checks_its_kernels(rng):
    x = make_array(rng, (5, 5), "float64")
    with pytest.raises(ValueError, match="one 1-D kernel per axis"):
        convcore.sepconvolve(x, [np.ones(3)])
    with pytest.raises(ValueError, match=r"kernels\[1\] must be 1-D"):
        convcore.sepconvolve(x, [np.ones(3), np.ones((2, 2))])


@given(
    data=st.data(),
    mode=st.sampled_from(["full", "same", "valid"]),
    operation=st.sampled_from(["convolve", "correlate"]),
    dtype=st.sampled_from(["int16", "float32", "float64", "complex128"]),
    boundary=st.sampled_from(BOUNDARIES),
    ndim=st.integers(2, 3),
)
def test_hypothesis_outer_products_of_any_shape(data, mode, operation, dtype, boundary, ndim):
    """Random outer-product kernels (larger or smaller than the signal, length-1 axes),
    every mode, boundary and dtype, against the np.pad + scipy reference."""
    x_shape = tuple(data.draw(st.lists(st.integers(1, 12), min_size=ndim, max_size=ndim)))
    if mode == "valid":
        k_shape = tuple(data.draw(st.integers(1, n)) for n in x_shape)
    else:
        k_shape = tuple(data.draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = make_array(rng, x_shape, dtype)
    factors = [make_array(rng, n, dtype) for n in k_shape]
    k = factors[0]
    for f in factors[1:]:
        k = np.multiply.outer(k, f)
    k = k.astype(dtype)
    problem = problem_of(x, k, mode, operation, boundary)
    verdict = separable.backend.supports(problem, context())
    event("answered" if verdict is True else "declined")
    if verdict is not True:
        return  # e.g. fewer than two long axes, or not worth it; the differential suite checks
    got = getattr(convcore, operation)(x, k, mode, backend="separable", boundary=boundary,
                                       fillvalue=2)
    assert_matches(got, reference(operation, x, k, mode, boundary, 2), x, k, np.dtype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", [3, 7, 9, 15])
def test_inf_and_nan_reach_only_where_a_tap_does(dtype, k):
    # The vertical pass's strip used to multiply rows outside a tap's reach by the padding
    # zeros of its taps: 0 * inf put NaN up to a strip's height away (a Gaussian blur
    # through auto gave 27 NaN where SciPy gives inf).
    x = np.zeros((60, 70), dtype)
    x[30, 33], x[7, 50], x[52, 4] = np.inf, -np.inf, np.nan
    g = np.exp(-np.linspace(-2, 2, k) ** 2)
    kernel = np.outer(g, g[::-1] + 0.5).astype(dtype)
    want = scipy.signal.convolve(x.astype(np.float64), kernel.astype(np.float64), "same",
                                 method="direct")
    for backend in ("separable", "auto"):
        got = convcore.convolve(x, kernel, "same", backend=backend)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=backend)
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want), err_msg=backend)
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want), err_msg=backend)


# -- its cost model ----------------------------------------------------------------------------

def test_cost_counts_the_team_the_runner_starts(rng, monkeypatch):
    """A small image runs on one thread (a second would not save the 40 us it costs): its
    cost under two threads is its cost under one, as openmp's is. Predicting it on two sent
    231^2 rank-2 images to separable, which then ran 1.5x slower than openmp."""
    k = make_array(rng, (5, 1), "float32") * make_array(rng, (1, 5), "float32")
    with default_constants():
        small, large = (problem_of(make_array(rng, (n, n), "float32"), k) for n in (64, 1024))
        costs = {}
        for threads in (1, 2):
            with cores(threads, monkeypatch):
                costs[threads] = [separable.backend.cost(p, context()) for p in (small, large)]
    assert costs[2][0] == costs[1][0]
    assert costs[2][1] < 0.75 * costs[1][1]


def test_each_term_streams_the_result_again(rng):
    """Rank 2 against rank 1: the second term's multiply-adds, two more passes over the
    result (its horizontal pass accumulates into it) and its strips' set-up."""
    x = make_array(rng, (300, 256), "float64")  # whole register blocks on every target
    u, v = make_array(rng, (2, 7), "float64"), make_array(rng, (2, 9), "float64")
    one, two = (problem_of(x, sum(np.outer(u[t], v[t]) for t in range(rank)))
                for rank in (1, 2))
    m = separable.machine
    with default_constants(), convcore.threads(1):
        extra = separable.backend.cost(two, context()) - separable.backend.cost(one, context())
        strips = -(-300 // separable._cy.strip_rows())
        macs = strips * separable._cy.strip_rows() * (7 * 256 + 9 * 256)  # 'same': all columns
        expected = (macs * separable._seconds_per_mac(np.dtype("float64"))
                    + 2 * x.nbytes * m.SECONDS_PER_BYTE + strips * m.SECONDS_PER_STRIP_TERM)
    assert extra == pytest.approx(expected, rel=1e-9)
