"""The ``fft`` backend: its domain (large kernels), overlap-add, plans, wisdom, threads and the
integer exactness bound, each checked against SciPy, NumPy or exact integer arithmetic."""

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyfftw
import pytest
import scipy.signal

import convcore
from convcore.runtime.invalidation import settings_changed
from convcore.backends.fft import _layout, _plans
from convcore.backends import fft as fft_backend
from reference import (
    assert_matches, build_problem, context, default_constants, make_array, reference,
)

BACKEND = convcore.get_backend("fft")


def _complexify(rng, a):
    return (a + 1j * rng.standard_normal(a.shape)).astype(np.result_type(a, np.complex64))


# --- the domain the backend must answer -------------------------------------------------------

LARGE_KERNELS = [((10000,), (500,)), ((200, 200), (31, 31)), ((24, 30, 20), (9, 7, 11)),
                 ((3000,), (2999,)), ((64, 48), (64, 48))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("shapes", LARGE_KERNELS, ids=str)
def test_large_kernels_are_served_and_match_scipy(shapes, mode, dtype, rng):
    x, k = make_array(rng, shapes[0], dtype), make_array(rng, shapes[1], dtype)
    for operation in ("convolve", "correlate"):
        problem = build_problem(x, k, mode, operation)[2]
        assert BACKEND.supports(problem, context()) is True
        got = getattr(convcore, operation)(x, k, mode, backend="fft")
        expected = getattr(scipy.signal, operation)(x.astype(np.complex128 if "complex" in dtype
                                                             else np.float64),
                                                    k.astype(np.complex128 if "complex" in dtype
                                                             else np.float64), mode)
        assert_matches(got, expected, x, k, np.dtype(dtype))


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm", "mirror", "nearest"])
@pytest.mark.parametrize("shapes", [((3000,), (101,)), ((90, 64), (15, 21)), ((63, 40), (9, 8))],
                         ids=str)
def test_boundaries_on_large_problems(shapes, boundary, rng):
    x, k = make_array(rng, shapes[0], "float64"), make_array(rng, shapes[1], "float64")
    for operation in ("convolve", "correlate"):
        for mode in ("full", "same"):
            got = getattr(convcore, operation)(x, k, mode, backend="fft", boundary=boundary,
                                               fillvalue=-1.5)
            ref = reference(operation, x, k, mode, boundary, -1.5)
            assert_matches(got, ref, x, k, x.dtype)


def test_wrap_same_is_a_circular_convolution(rng):
    x, k = make_array(rng, (64, 80), "float64"), make_array(rng, (9, 9), "float64")
    problem = build_problem(x, k, "same", "convolve", "wrap")[2]
    # The steady state's choice: a first call's also counts planning the lengths this
    # process has not planned yet, so it depended on the tests run before this one.
    steady = context().replace(first_call=False)
    assert fft_backend.layout_for(problem, steady).path == "circular"
    got = convcore.convolve2d(x, k, "same", boundary="wrap", backend="fft")
    np.testing.assert_allclose(got, scipy.signal.convolve2d(x, k, "same", boundary="wrap"),
                               rtol=1e-10, atol=1e-10)


# --- overlap-add ------------------------------------------------------------------------------

OA_CASES = [((100000,), (300,)), ((5001,), (17,)), ((500, 300), (9, 13)), ((257, 190), (31, 7)),
            ((40, 30, 50), (3, 5, 4))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("shapes", OA_CASES, ids=str)
def test_overlap_add_equals_full_transform_and_scipy(shapes, dtype, rng):
    x, k = make_array(rng, shapes[0], dtype), make_array(rng, shapes[1], dtype)
    m = max(shapes[1])
    for mode in ("full", "same", "valid"):
        expected = scipy.signal.fftconvolve(x.astype(np.complex128), k.astype(np.complex128), mode)
        if "float" in dtype:
            expected = expected.real
        full = convcore.fftconvolve(x, k, mode, backend_options={"overlap_add": False})
        for block in (None, 2 * m + 6, 4 * m + 100):
            options = {"overlap_add": True}
            if block is not None:
                options["block_length"] = block
            problem = build_problem(x, k, mode, "convolve", fft_dtypes=True)[2]
            assert fft_backend.layout_for(problem, context(options)).path == "oa"
            got = convcore.oaconvolve(x, k, mode, backend_options=options)
            assert_matches(got, expected, x, k, np.dtype(dtype))
            tolerance = 1e-4 if dtype in ("float32", "complex64") else 1e-11
            np.testing.assert_allclose(got, full, atol=tolerance * np.abs(full).max())


def test_oaconvolve_axes_broadcast_against_scipy(rng):
    x = make_array(rng, (6, 20000), "float64")
    k = make_array(rng, (1, 129), "float64")
    for mode in ("full", "same", "valid"):
        expected = scipy.signal.oaconvolve(x, k, mode, axes=1)
        assert_matches(convcore.oaconvolve(x, k, mode, axes=1), expected, x, k, x.dtype)
        assert_matches(convcore.fftconvolve(x, k, mode, axes=-1), expected, x, k, x.dtype)


def test_overlap_add_when_the_full_transform_exceeds_max_memory(rng):
    x, k = make_array(rng, (200, 200), "float64"), make_array(rng, (45, 45), "float64")
    problem = build_problem(x, k, "full", "convolve", fft_dtypes=True)[2]
    with convcore.threads(1):
        roomy = fft_backend.layout_for(problem, context(max_memory=1 << 40))
        assert roomy.path == "full"  # cheapest when memory is no object
        budget = problem.out_bytes + roomy.bytes // 2
        tight = fft_backend.layout_for(problem, context(max_memory=budget))
        assert tight.path == "oa" and tight.bytes + problem.out_bytes <= budget
        got = convcore.fftconvolve(x, k, max_memory=budget)  # the budget reaches the backend
        assert_matches(got, scipy.signal.fftconvolve(x, k), x, k, x.dtype)
        with pytest.raises(convcore.ConvMemoryError, match="needs"):
            convcore.fftconvolve(x, k, max_memory=problem.out_bytes + 1000)


def test_backend_options_are_checked(rng):
    x, k = make_array(rng, (1000,), "float64"), make_array(rng, (50,), "float64")
    with pytest.raises(ValueError, match="does not take 'blocks'"):
        convcore.fftconvolve(x, k, backend_options={"blocks": 4})
    with pytest.raises(ValueError, match="block_length=20 must be at least"):
        convcore.oaconvolve(x, k, backend_options={"block_length": 20})
    with pytest.raises(ValueError, match="overlap_add must be"):
        convcore.oaconvolve(x, k, backend_options={"overlap_add": "yes"})


# --- transform sizes, workspace, cost -----------------------------------------------------------

def test_transform_sizes_are_fast_and_only_as_long_as_the_window_needs(rng):
    # Measured plans: 1080 = 2^3 3^3 5 beats 1050 = 2 3 5^2 7 and 1040 = 2^4 5 13; estimated
    # plans favour powers of two: 1152 = 2^7 3^2 (timings in _plans).
    assert _layout.fast_length(1039, effort="measure") == 1080
    assert _layout.fast_length(1039) == 1152
    for n in (1, 7, 100, 1031, 4111, 100003):
        length = _layout.fast_length(n)
        assert length >= n
        rest = length
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        assert rest == 1 or length < 9
    x, k = make_array(rng, (1000, 1000), "float32"), make_array(rng, (31, 31), "float32")
    valid = build_problem(x, k, "valid", "convolve", fft_dtypes=True)[2]
    one_transform = context({"overlap_add": False})
    sizes = fft_backend.layout_for(valid, one_transform).sizes
    assert all(1000 <= s < 1030 for s in sizes.values())  # 'valid' needs n, not n + m - 1
    assert fft_backend.backend.workspace(valid, one_transform) >= math.prod(sizes.values()) * 4


def test_auto_picks_fft_for_large_kernels_and_direct_for_small(rng):
    # A full-rank kernel: a zero or constant one is rank <= 1, which 'separable' rightly takes.
    big = build_problem(np.zeros((512, 512)), make_array(rng, (127, 127), "float64"), "same",
                        "convolve")[2]
    small = build_problem(np.zeros((16, 16)), np.zeros((3, 3)), "same", "convolve")[2]
    ctx = context(threads=2, max_memory=1 << 32)
    plan = convcore.engine.dispatch.plan(big, "auto", "auto", ctx)
    assert plan.backend.name == "fft"
    assert convcore.engine.dispatch.plan(small, "auto", "auto", ctx).backend.kind == "direct"
    assert convcore.choose_conv_method(np.ones((512, 512)), make_array(rng, (127, 127), "float64"),
                                       "same") == "fft"


def test_nonfinite_spreads_under_fft_and_stays_local_under_auto(rng):
    x, k = make_array(rng, (4000,), "float64"), make_array(rng, (1500,), "float64")
    x[2000] = np.nan
    spread = convcore.convolve(x, k, "same", backend="fft")
    assert np.isnan(spread).sum() > 3000
    local = convcore.convolve(x, k, "same")
    direct = convcore.convolve(x, k, "same", backend="naive")
    np.testing.assert_array_equal(np.isnan(local), np.isnan(direct))
    assert np.isnan(local).sum() == 1500


# --- plans, threads, wisdom ---------------------------------------------------------------------

@pytest.mark.parametrize("overlap_add", [False, True])
def test_second_call_reuses_the_plan(overlap_add, rng):
    # One thread: with more, two chunks may run at once on two plan sets of one key.
    x, k = make_array(rng, (333, 251), "float64"), make_array(rng, (40, 45), "float64")
    options = {"overlap_add": overlap_add}
    with convcore.threads(1):
        _plans.CACHE.clear()
        first = convcore.fftconvolve(x, k, "same", backend_options=options)
        misses, hits = _plans.CACHE.misses, _plans.CACHE.hits
        assert misses >= 1
        second = convcore.fftconvolve(x, k, "same", backend_options=options)
        assert _plans.CACHE.misses == misses  # no new plan
        assert _plans.CACHE.hits > hits
    np.testing.assert_array_equal(first, second)
    assert_matches(second, scipy.signal.fftconvolve(x, k, "same"), x, k, x.dtype)


REPEATED_CALLS = [((100,), (7,)), ((1000,), (65,)), ((5000,), (300,)), ((64, 64), (5, 5)),
                  ((200, 130), (31, 9)), ((50, 60, 70), (5, 6, 7)), ((1, 30000), (1, 2000)),
                  ((8, 4096), (1, 257)), ((3000,), (3,))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["same", "full"])
def test_first_call_gives_the_bits_of_every_later_call(dtype, mode, rng, monkeypatch):
    # A first call's layout choice counts FFTW's planning of new lengths; it used to pick
    # another transform length than the later calls, and 10 of these 12 float32 problems
    # answered with other last bits on their first call (up to 7e-5 absolute).
    # Nothing planned yet, as in a fresh process: every length is new to the first call.
    monkeypatch.setattr(_plans, "planned_lengths", set())
    monkeypatch.setattr(_layout, "planned_lengths", _plans.planned_lengths)
    for x_shape, k_shape in REPEATED_CALLS:
        settings_changed()  # plans and the fast path forgotten: a first call again
        x, k = make_array(rng, x_shape, dtype), make_array(rng, k_shape, dtype)
        with convcore.threads(2):
            calls = [convcore.convolve(x, k, mode, backend="fft") for _ in range(3)]
        with convcore.threads(1):
            calls.append(convcore.convolve(x, k, mode, backend="fft"))
        for later in calls[1:]:
            np.testing.assert_array_equal(calls[0], later, err_msg=f"{x_shape} {k_shape}")
        assert_matches(calls[0], scipy.signal.convolve(x, k, mode), x, k, x.dtype)


def test_every_plan_of_one_problem_transforms_with_the_same_lengths(monkeypatch, rng):
    # auto's plans and backend="fft"'s hold problem objects of their own (and auto's, where
    # its choice reads the kernel, one per kernel); each used to choose its lengths when it
    # first asked, after whatever the process had planned by then: 1024^2 k31 float32 ran
    # 9.9 ms under auto in blocks of 144 rows, 8.0 ms named, in blocks of 128.
    from convcore.engine.context import current_context
    from convcore.engine.problem import build_problem

    planned = set()
    monkeypatch.setattr(_plans, "planned_lengths", planned)
    monkeypatch.setattr(_layout, "planned_lengths", planned)
    x, k = rng.standard_normal(123_457), rng.standard_normal(1001)

    def problem():
        return build_problem(x, k, "full", "convolve", fft_dtypes=True)[2]

    ctx = current_context()
    first = fft_backend.layout_for(problem(), ctx)
    # Other lengths planned since: a problem laid out afresh now would block otherwise ...
    planned.update(n for n in _layout.smooth_lengths(2048, 65536)
                   if n not in first.sizes.values())
    later = problem()
    fresh = _layout.plan_layout(later, ctx.threads, ctx.max_memory, ctx.plan,
                                ctx.backend_options, ctx.first_call)
    assert fresh.sizes != first.sizes
    # ... but a plan of the same problem, with or without its kernel's values, does not.
    assert fft_backend.layout_for(later, ctx).sizes == first.sizes
    assert fft_backend.layout_for(later.with_kernel(k), ctx).sizes == first.sizes


def test_plan_cache_is_bounded():
    cache = _plans.PlanCache(max_sets=3, max_bytes=1 << 30)

    class Set:
        nbytes = 10

    for key in range(5):
        cache.release(key, cache.acquire(key, Set))
    assert sum(len(v) for v in cache._idle.values()) == 3
    assert cache.misses == 5 and cache.hits == 0
    cache.release(4, cache.acquire(4, Set))
    assert cache.hits == 1


def test_concurrent_calls_on_different_and_equal_shapes(rng):
    cases = []
    for i in range(8):
        shape = (2000 + 97 * i,) if i % 2 else (60 + 7 * i, 50 + 3 * i)
        kernel = (150 + 11 * i,) if i % 2 else (9 + i, 11)
        dtype = "float32" if i % 4 == 0 else "float64"
        cases.append((make_array(rng, shape, dtype), make_array(rng, kernel, dtype)))
    cases += cases[:4]  # the same shapes from two threads at once
    expected = [scipy.signal.fftconvolve(x.astype(np.float64), k.astype(np.float64), "same")
                for x, k in cases]
    barrier = threading.Barrier(8)

    def work(i):
        x, k = cases[i]
        if i < 8:
            barrier.wait()
        results = [convcore.fftconvolve(x, k, "same") for _ in range(5)]
        results.append(convcore.oaconvolve(x, k, "same"))
        return results

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(work, range(len(cases))))
    for (x, k), ref, results in zip(cases, expected, outcomes):
        for got in results:
            assert_matches(got, ref, x, k, x.dtype)


def test_wisdom_round_trip(tmp_path, monkeypatch, rng):
    path = tmp_path / "wisdom.bin"
    monkeypatch.setattr(_plans, "wisdom_file_override", path)
    _plans.forget_wisdom()
    x, k = make_array(rng, (1200,), "float64"), make_array(rng, (700,), "float64")
    got = convcore.fftconvolve(x, k, plan="measure")
    assert_matches(got, scipy.signal.fftconvolve(x, k), x, k, x.dtype)
    assert path.exists()
    saved = pyfftw.export_wisdom()
    assert len(saved[0]) > 100  # double-precision plans were measured
    _plans.forget_wisdom()
    assert pyfftw.export_wisdom()[0] != saved[0]
    with _plans.PLAN_LOCK:
        assert _plans.load_wisdom() is True
    # Every measured plan is back (FFTW may list them in another order).
    restored = set(pyfftw.export_wisdom()[0].splitlines())
    assert set(saved[0].splitlines()) <= restored
    _plans.forget_wisdom()


def test_corrupt_wisdom_is_ignored_with_a_warning(tmp_path, monkeypatch, rng):
    path = tmp_path / "wisdom.bin"
    monkeypatch.setattr(_plans, "wisdom_file_override", path)
    for garbage in (b"not wisdom at all", _plans._MAGIC + b"\x05\x00\x00"):
        path.write_bytes(garbage)
        _plans.forget_wisdom()
        x, k = make_array(rng, (900,), "float64"), make_array(rng, (500,), "float64")
        with pytest.warns(RuntimeWarning, match="corrupt FFTW wisdom"):
            got = convcore.fftconvolve(x, k, plan="measure")
        assert_matches(got, scipy.signal.fftconvolve(x, k), x, k, x.dtype)
    _plans.forget_wisdom()


# --- integers: the exactness bound ---------------------------------------------------------------

def _edge_magnitude(nx, nk, k_max, options=None):
    """Largest max|x| the backend's bound accepts for these shapes.

    The backend rounds magnitudes up to 2**bits - 1 (plans are memoized by bit length), so
    the edge is the largest 2**b - 1 whose bound is below 0.25.
    """
    probe = build_problem(np.ones(nx, np.int64), np.ones(nk, np.int64), "full", "convolve")[2]
    lay = fft_backend.layout_for(probe, context(options))
    k_eff = (1 << int(k_max).bit_length()) - 1
    edge = 0
    for bits in range(1, 60):
        bound, largest = fft_backend.integer_error(probe, lay, (1 << bits) - 1, k_eff)
        if bound >= 0.25 or largest >= 2 ** 52:
            break
        edge = (1 << bits) - 1
    return edge


def _signed_extremes(rng, shape, magnitude):
    values = rng.integers(magnitude // 2, magnitude, size=shape, endpoint=True)
    values[0] = magnitude
    return values * rng.choice([-1, 1], size=shape)


def test_integer_bound_edge(rng):
    nx, nk, k_max = 3000, 200, 30000
    edge = _edge_magnitude(nx, nk, k_max)
    k = _signed_extremes(rng, nk, k_max).astype(np.int64)
    inside = _signed_extremes(rng, nx, edge).astype(np.int64)
    outside = inside.copy()
    outside[np.argmax(np.abs(outside))] = edge + 1  # one more bit: past the bound
    exact_inside = np.convolve(inside.astype(object), k.astype(object))
    exact_outside = np.convolve(outside.astype(object), k.astype(object))

    problem = build_problem(inside, k, "full", "convolve")[2]
    assert BACKEND.supports(problem, context()) is True
    got = convcore.convolve(inside, k, backend="fft")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.astype(object), exact_inside)

    problem = build_problem(outside, k, "full", "convolve")[2]
    verdict = BACKEND.supports(problem, context())
    assert isinstance(verdict, str) and "bound" in verdict
    with pytest.raises(ValueError, match="cannot run"):
        convcore.convolve(outside, k, backend="fft")
    got = convcore.convolve(outside, k, method="fft")  # a direct backend answers, exactly
    np.testing.assert_array_equal(got.astype(object), exact_outside)


def test_integer_bound_formula_literal():
    # E = 8 u log2(N) X K (2 sqrt(nx) nk + nx sqrt(nk)) + 2^-40 X K min(nx, nk), u = 2^-53
    u = 2.0 ** -53
    assert fft_backend.integer_error_bound(3, 5, 4, 9, 1024) == pytest.approx(
        8 * u * 10 * 15 * (2 * 2 * 9 + 4 * 3) + 2.0 ** -40 * 15 * 4, rel=1e-12)


def test_integer_bound_grows_with_the_transform_length():
    one_transform = {"overlap_add": False}
    k = np.full(64, 1000, np.int64)
    short = build_problem(np.full(2000, 1000, np.int64), k, "full", "convolve")[2]
    edge_short = _edge_magnitude(2000, 64, 1000, one_transform)
    edge_long = _edge_magnitude(200000, 64, 1000, one_transform)
    assert edge_long < edge_short / 5  # a bigger transform proves less
    # max|x| * max|k| * size far below 2**52, yet declined for the long signal:
    assert edge_long * 1000 * 64 < 2 ** 40
    long_inputs = build_problem(np.full(200000, edge_long + 1, np.int64), k, "full",
                                "convolve")[2]
    ctx = context(one_transform)
    assert BACKEND.supports(long_inputs, ctx) != True  # noqa: E712 (a reason string)
    assert BACKEND.supports(short, ctx) is True


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "uint32", "int64"])
def test_integer_results_are_exact_and_wrap_like_scipy(dtype, rng):
    info = np.iinfo(dtype)
    x = rng.integers(max(info.min, -3000), min(info.max, 3000), size=5000, endpoint=True)
    k = rng.integers(max(info.min, -3000), min(info.max, 3000), size=300, endpoint=True)
    x, k = x.astype(dtype), k.astype(dtype)
    for mode in ("full", "same", "valid"):
        got = convcore.convolve(x, k, mode, backend="fft")
        expected = scipy.signal.convolve(x, k, mode, method="direct")
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    with_fill = convcore.correlate(x, k, "same", backend="fft", fillvalue=7)
    np.testing.assert_array_equal(with_fill, convcore.correlate(x, k, "same", backend="naive",
                                                                fillvalue=7))


def test_integer_fill_value_enters_the_bound(rng):
    x = rng.integers(-100, 100, size=3000).astype(np.int64)
    k = rng.integers(-100, 100, size=400).astype(np.int64)
    small = build_problem(x, k, "same", "correlate", "fill", 3)[2]
    huge = build_problem(x, k, "same", "correlate", "fill", 2 ** 45)[2]
    assert BACKEND.supports(small, context()) is True
    assert isinstance(BACKEND.supports(huge, context()), str)
    for fill in (3, 2 ** 45):
        got = convcore.correlate(x, k, "same", method="fft", fillvalue=fill)
        padded = np.concatenate([np.full(200, fill, object), x.astype(object),
                                 np.full(199, fill, object)])
        exact = np.correlate(padded, k.astype(object), "valid")
        np.testing.assert_array_equal(got.astype(object), exact)


def test_fftconvolve_of_integers_is_float64_like_scipy(rng):
    x = rng.integers(-50, 50, size=(40, 30))
    k = rng.integers(-50, 50, size=(7, 5))
    got = convcore.fftconvolve(x, k, "same")
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, scipy.signal.fftconvolve(x, k, "same"), atol=1e-8)


def test_object_and_layer_problems_are_declined():
    problem = build_problem(np.ones(5, object), np.ones(2, object), "full", "convolve")[2]
    assert "object" in BACKEND.supports(problem, context())


# -- the cost model --------------------------------------------------------------------------

def _steady_layout(x_shape, k_shape, dtype, options=None):
    x, k = np.zeros(x_shape, dtype), np.ones(k_shape, dtype)
    p = build_problem(x, k, "same", "convolve")[2]
    return _layout.plan_layout(p, 1, 1 << 40, "estimate", options or {}, one_off=False)


def test_call_cost_counts_the_axes_and_overlap_adds_set_up():
    """A tiny call is its overheads: per call, per transformed axis past the first, and the
    overlap-add path's own set-up (tiny runners here: 1-D 34-43 us, 3-D 48-55 us; forced
    into blocks, 1-D 71-82 us)."""
    m = _layout.machine
    cases = {"1-D": ((16,), (3,), None, 0), "3-D": ((4, 4, 4), (3, 3, 3), None, 2),
             "blocks": ((64,), (5,), {"overlap_add": True, "block_length": 16}, 0)}
    with default_constants():
        for name, (x_shape, k_shape, options, axes) in cases.items():
            with_all = _steady_layout(x_shape, k_shape, "float64", options).seconds
            with m.trial({"SECONDS_PER_AXIS": 0.0, "SECONDS_PER_OA_CALL": 0.0}):
                without = _steady_layout(x_shape, k_shape, "float64", options).seconds
            oa = m.SECONDS_PER_OA_CALL if options else 0.0
            assert with_all - without == pytest.approx(axes * m.SECONDS_PER_AXIS + oa), name


def test_small_images_take_one_transform_not_blocks():
    """64^2 float32 with a 3 x 3 kernel: overlap-add's set-up is more than its blocks save
    (124 us against 89 us for the whole transform, measured; it was predicted 53 us)."""
    with default_constants():
        assert _steady_layout((64, 64), (3, 3), "float32").path == "full"
        assert _steady_layout((2048, 2048), (3, 3), "float32").path == "oa"
