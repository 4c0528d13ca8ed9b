"""The ``openmp`` backend on the problems it exists for, against SciPy.

The differential suite already runs openmp on small problems of every kind; these tests add
the domain it must answer (2-D float32/float64 images), sizes large enough to use many row
blocks and column strips (in-place strips and edge tiles), thread counts, concurrent callers,
and Ctrl-C.
"""

import contextlib
import itertools
import signal
import threading
import traceback

import numpy as np
import pytest
import scipy.signal

import convcore
from convcore.backends import openmp
from reference import assert_matches, build_problem, context, make_array, reference

BOUNDARIES = ["fill", "wrap", "symm", "mirror", "nearest"]


def _problem(x, k, mode, operation="convolve", boundary="fill", fillvalue=0):
    return build_problem(x, k, mode, operation, boundary, fillvalue)[2]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("shape,kshape", [((64, 80), (3, 3)), ((100, 130), (7, 5)),
                                          ((33, 257), (15, 15)), ((5, 300), (2, 21))])
def test_domain_2d_real_is_served_and_matches_scipy(dtype, mode, shape, kshape):
    rng = np.random.default_rng(1)
    x, k = make_array(rng, shape, dtype), make_array(rng, kshape, dtype)
    for operation in ("convolve", "correlate"):
        assert openmp.backend.supports(_problem(x, k, mode, operation), context()) is True
        got = getattr(convcore, operation)(x, k, mode, backend="openmp")
        expected = getattr(scipy.signal, operation)(x.astype(np.float64), k.astype(np.float64),
                                                    mode, method="direct")
        assert_matches(got, expected, x, k, np.dtype(dtype))


@pytest.mark.parametrize("k", [3, 4, 7, 10, 15, 21])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_large_random_problems_every_boundary(k, mode):
    rng = np.random.default_rng(k)
    x = make_array(rng, (200, 300), "float64")
    w = make_array(rng, (k, k + 1), "float64")
    for boundary in (BOUNDARIES if mode != "valid" else ["fill"]):
        for operation in ("convolve", "correlate"):
            got = getattr(convcore, operation)(x, w, mode, backend="openmp", boundary=boundary,
                                               fillvalue=0.5)
            assert_matches(got, reference(operation, x, w, mode, boundary, 0.5), x, w,
                           np.dtype("float64"))


def test_config_names_how_edge_rows_run():
    # Phases on 16-register targets only (_kernels.h): AVX-512 and NEON keep the row loop.
    from convcore._cy.target import describe

    expected = "paired in phases" if describe()["registers"] < 32 else "one by one"
    assert openmp.OpenMPBackend().build_config()["edge rows"] == expected


def _builds_fixed_size_copies():
    # The fixed-size copies are built on 16-register FMA targets only (_kernels.h).
    from convcore._cy.target import describe

    target = describe()
    return target["registers"] < 32 and target["fma"]


def test_config_names_the_fixed_kernel_sizes():
    config = openmp.OpenMPBackend().build_config()["fixed kernels"]
    assert (config != "none") == _builds_fixed_size_copies()


@pytest.mark.parametrize("kernel_rows", [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_kernel_height_around_the_block_height(kernel_rows, dtype):
    # The phase loop (docs/openmp.md, "Phases") pairs a block's rows t and t + kr when the
    # kernel has at least R - 1 rows (R = 6 or 3 here), and falls back to single rows where
    # one of the pair lies outside the signal: kernel heights on both sides of R - 1, result
    # heights that leave a short last block, and rows outside filled with zero (skipped),
    # with a value (read), wrapped or mirrored.
    rng = np.random.default_rng(kernel_rows)
    widths = sorted({3 + kernel_rows % 4, 5, kernel_rows})
    for rows, cols in itertools.product((1, 4, 5, 7, 13, 20), widths):
        # (Square kernels of 5 and 7-15 rows run their own compiled copies of the loop:
        # _kernels.h, "Fixed sizes".)
        x = make_array(rng, (rows, 70), dtype)
        w = make_array(rng, (kernel_rows, cols), dtype)
        for mode in ("full", "same", "valid"):
            if mode == "valid" and rows < kernel_rows:
                continue
            for boundary, fill in (("fill", 0), ("fill", 1.5), ("wrap", 0), ("symm", 0)):
                if mode == "valid" and (boundary, fill) != ("fill", 0):
                    continue
                got = convcore.correlate(x, w, mode, backend="openmp", boundary=boundary,
                                         fillvalue=fill)
                expected = reference("correlate", x, w, mode, boundary, fill)
                assert_matches(got, expected, x, w, np.dtype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("mode", ["full", "same"])
def test_kernels_wider_than_two_strips_every_boundary(dtype, mode):
    # A row block then has more edge strips than the loop copies ahead (two): the others take
    # the copy-and-compute path, on both sides, for every boundary.
    rng = np.random.default_rng(11)
    x = make_array(rng, (40, 700), dtype)
    w = make_array(rng, (5, 200), dtype)
    for boundary in BOUNDARIES:
        got = convcore.convolve(x, w, mode, backend="openmp", boundary=boundary, fillvalue=2)
        assert_matches(got, reference("convolve", x, w, mode, boundary, 2), x, w, got.dtype)


@pytest.mark.parametrize("dtype", ["float32", "complex64", "complex128", "int16", "uint64"])
def test_large_problems_every_dtype(dtype):
    rng = np.random.default_rng(7)
    x, w = make_array(rng, (70, 150), dtype), make_array(rng, (9, 6), dtype)
    for boundary in ("fill", "wrap", "mirror"):
        for operation in ("convolve", "correlate"):
            got = getattr(convcore, operation)(x, w, "same", backend="openmp", boundary=boundary,
                                               fillvalue=3)
            assert_matches(got, reference(operation, x, w, "same", boundary, 3), x, w,
                           np.dtype(dtype))


def test_integer_wrapping_is_exact():
    """Products and sums past the type's range wrap exactly as SciPy's direct loop."""
    rng = np.random.default_rng(3)
    x = rng.integers(-2**62, 2**62, size=(40, 90), dtype=np.int64)
    w = rng.integers(-2**40, 2**40, size=(5, 6), dtype=np.int64)
    got = convcore.convolve(x, w, "full", backend="openmp")
    np.testing.assert_array_equal(got, scipy.signal.convolve(x, w, "full", method="direct"))


@pytest.mark.parametrize("shape,kshape", [((1000,), (31,)), ((5000,), (200,)), ((3,), (40,)),
                                          ((20, 30, 40), (3, 5, 7)), ((9, 8, 70), (4, 1, 9)),
                                          ((4, 5, 6, 70), (2, 3, 2, 5))])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_other_ranks(shape, kshape, boundary):
    rng = np.random.default_rng(11)
    x, w = make_array(rng, shape, "float64"), make_array(rng, kshape, "float64")
    for mode in ("full", "same"):
        got = convcore.convolve(x, w, mode, backend="openmp", boundary=boundary, fillvalue=-1)
        assert_matches(got, reference("convolve", x, w, mode, boundary, -1), x, w,
                       np.dtype("float64"))


def test_batched_axes():
    rng = np.random.default_rng(5)
    x, w = make_array(rng, (3, 50, 70), "float64"), make_array(rng, (3, 5, 9), "float64")
    got = convcore.fftconvolve(x, w, "same", axes=(1, 2), backend="openmp")
    np.testing.assert_allclose(got, scipy.signal.fftconvolve(x, w, "same", axes=(1, 2)),
                               rtol=1e-10, atol=1e-10)


def _image_problem():
    rng = np.random.default_rng(2)
    return make_array(rng, (300, 260), "float32"), make_array(rng, (11, 11), "float32")


def test_one_thread_equals_two_threads():
    x, w = _image_problem()
    with convcore.threads(1):
        one = convcore.convolve(x, w, "same", backend="openmp", boundary="symm")
    with convcore.threads(2):
        two = convcore.convolve(x, w, "same", backend="openmp", boundary="symm")
    # Each output is summed in one fixed order whatever thread computes it: bit-identical.
    np.testing.assert_array_equal(one, two)
    assert_matches(one, reference("convolve", x, w, "same", "symm"), x, w, np.dtype("float32"))


def test_concurrent_python_threads(monkeypatch):
    """8 Python threads at once: same answers as alone, and never more native threads in use
    than the machine has (or than one caller asked for)."""
    x, w = _image_problem()
    expected = convcore.convolve(x, w, "same", backend="openmp")
    assert_matches(expected, reference("convolve", x, w, "same"), x, w, np.dtype("float32"))

    reserve = openmp.native_threads
    lock = threading.Lock()
    in_use = {"now": 0, "peak": 0}

    @contextlib.contextmanager
    def counting(wanted, key=None):
        with reserve(wanted, key=key) as threads:
            with lock:
                in_use["now"] += threads
                in_use["peak"] = max(in_use["peak"], in_use["now"])
            try:
                yield threads
            finally:
                with lock:
                    in_use["now"] -= threads

    monkeypatch.setattr(openmp, "native_threads", counting)
    # Teams sized by the work alone, not by what other processes on this machine do now.
    monkeypatch.setitem(convcore.runtime.contention._state, "adaptive", False)
    results, errors = [None] * 8, []
    start = threading.Barrier(8)

    def work(i):
        try:
            start.wait()
            for _ in range(5):
                results[i] = convcore.convolve(x, w, "same", backend="openmp")
        except Exception as err:  # reported below
            errors.append(err)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    for got in results:
        np.testing.assert_array_equal(got, expected)
    budget = convcore.runtime.contention.cpu_budget()
    assert (1 if budget > 1 else 0) <= in_use["peak"] <= max(budget, convcore.get_num_threads())


def test_ctrl_c_interrupts_between_row_blocks():
    """A signal handler's exception surfaces from inside the compiled loop, not after it."""
    class Interrupted(Exception):
        pass

    armed = {"on": True}

    def handler(signum, frame):
        if armed["on"]:
            raise Interrupted

    rng = np.random.default_rng(0)
    x, w = make_array(rng, (1500, 1500), "float64"), make_array(rng, (75, 75), "float64")
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        convcore.convolve(x[:100, :100], w, "same", backend="openmp")  # warm up: imports and code paths
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Interrupted) as info:
            convcore.convolve(x, w, "same", backend="openmp")
    finally:
        armed["on"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    frames = "".join(traceback.format_tb(info.value.__traceback__))
    assert "_cy" in frames, frames


def test_declines_object_arrays_with_a_reason():
    x = np.arange(12).reshape(3, 4).astype(object)
    verdict = openmp.backend.supports(_problem(x, x[:2, :2], "full"), context())
    assert isinstance(verdict, str) and "object" in verdict


def test_workspace_and_cost_are_positive_and_grow():
    small = _problem(np.ones((64, 64), np.float32), np.ones((3, 3), np.float32), "same")
    large = _problem(np.ones((1024, 1024), np.float32), np.ones((15, 15), np.float32), "same")
    assert 0 < openmp.backend.workspace(small, context()) <= openmp.backend.workspace(large, context())
    assert 0 < openmp.backend.cost(small, context()) < openmp.backend.cost(large, context())


def test_cost_model_counts_the_fixed_size_copies_where_the_build_runs_them(monkeypatch):
    # A 7 x 7 kernel runs a fixed-size copy where the build has them, an 8 x 8 or a 7 x 5
    # one never: only the first changes with the model's factor for them.
    from convcore.backends.openmp import _model

    x = np.ones((512, 512), np.float32)
    for shape, fixed in (((7, 7), _builds_fixed_size_copies()), ((8, 8), False),
                         ((7, 5), False)):
        problem = _problem(x, np.ones(shape, np.float32), "same")
        assert _model.work_shape(problem).fixed == fixed
        costs = []
        for factor in (1.0, 0.5):
            monkeypatch.setattr(_model, "FIXED_KERNEL_SPEEDUP", factor)
            costs.append(_model.predict_seconds(problem, 1))
        assert (costs[1] < costs[0]) == fixed and costs[1] <= costs[0]


def test_auto_prefers_openmp_over_naive_on_real_images():
    x = np.ones((512, 512), np.float32)
    for k in (3, 7, 21):
        plan = convcore.engine.dispatch.plan(_problem(x, np.ones((k, k), np.float32), "same"),
                                       ctx=context(max_memory=1 << 33))
        costs = {name: cost for name, cost, why in plan.alternatives if why is None}
        assert costs["openmp"] < costs["naive"]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint64"])
@pytest.mark.parametrize("m", [128, 300, 1031])
def test_long_1d_kernels_folded_onto_rows(dtype, m):
    """1-D problems with long kernels run as 2-D rows (openmp._correlate_1d_polyphase)."""
    rng = np.random.default_rng(m)
    x, w = make_array(rng, (4099,), dtype), make_array(rng, (m,), dtype)
    assert openmp._polyphase_pays(np.dtype("uint64" if dtype[0] in "iu" else dtype), m, 4099 - m)
    for mode in ("full", "same", "valid"):
        for boundary in (["fill", "wrap", "symm", "mirror", "nearest"] if mode == "same"
                         else ["fill"]):
            for operation in ("convolve", "correlate"):
                got = getattr(convcore, operation)(x, w, mode, backend="openmp",
                                                   boundary=boundary, fillvalue=2)
                assert_matches(got, reference(operation, x, w, mode, boundary, 2), x, w,
                               np.dtype(dtype))


@pytest.mark.parametrize("shape,kshape", [((5000,), (300,)), ((300,), (40,)),
                                          ((60, 200), (9, 9))])
def test_nonfinite_values_stay_local(shape, kshape):
    """A direct method keeps NaN/inf where their taps reach (SciPy's direct answer)."""
    rng = np.random.default_rng(4)
    x, w = make_array(rng, shape, "float64"), make_array(rng, kshape, "float64")
    x.flat[x.size // 3] = np.nan
    x.flat[2 * x.size // 3] = np.inf
    for mode in ("full", "same"):
        got = convcore.convolve(x, w, mode, backend="openmp")
        expected = scipy.signal.convolve(x, w, mode, method="direct")
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-9, atol=1e-9)
