"""convcore.dask on the local schedulers: the same answer as in memory and as SciPy.

The grid (mode x boundary x kernel x chunking x dtype) runs on Dask's threaded scheduler;
tests/test_dask_cluster.py runs part of it on a LocalCluster of worker processes. Integers
must be equal, floats within rounding of the in-memory call and of SciPy on an np.pad
extended array (tests/dask_reference.py).
"""

import itertools

import numpy as np
import pytest
import scipy.signal

import dask.array as da
from dask_reference import scipy_reference

import convcore
import convcore.dask as cd

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm", "mirror", "nearest")
# odd, even, and larger than every chunk of CHUNKINGS' first entry (reach 8 x 6 over chunks
# of 2-7): the halo then spans several chunks
KERNELS = {"odd3x3": (3, 3), "even4x2": (4, 2), "large9x7": (9, 7)}
CHUNKINGS = {"uneven": ((7, 2, 9, 5), (3, 6, 4, 6)), "single": ((23,), (19,))}
DTYPES = ("float64", "float32", "int16", "complex128")
SHAPE = (23, 19)


def _data(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * (40 if np.dtype(dtype).kind in "iu" else 1)
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


def assert_same(result, expected, dtype):
    assert result.dtype == expected.dtype and result.shape == expected.shape
    if np.dtype(dtype).kind in "biu":
        np.testing.assert_array_equal(result, expected)
    else:
        tol = 2e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(result, expected, rtol=tol, atol=tol * scale)


GRID = list(itertools.product(MODES, BOUNDARIES, KERNELS, CHUNKINGS, DTYPES))


@pytest.mark.parametrize("mode,boundary,kernel,chunking,dtype", GRID)
def test_grid_matches_memory_and_scipy(mode, boundary, kernel, chunking, dtype):
    """convolve (and correlate, every other row) against in-memory convcore and SciPy."""
    x, k = _data(SHAPE, dtype, 0), _data(KERNELS[kernel], dtype, 1)
    operation = "correlate" if GRID.index((mode, boundary, kernel, chunking, dtype)) % 2 \
        else "convolve"
    fill = 2 if boundary == "fill" and dtype != "complex128" else 0
    lazy = getattr(cd, operation)(da.from_array(x, chunks=CHUNKINGS[chunking]), k, mode,
                                  boundary=boundary, fillvalue=fill)
    result = lazy.compute(scheduler="threads")
    memory = getattr(convcore, operation)(x, k, mode, boundary=boundary, fillvalue=fill)
    assert_same(result, memory, dtype)
    reference = scipy_reference(x, k, mode, boundary, fill, operation)
    if dtype == "int16":
        reference = reference.astype(np.int16)  # SciPy sums in int16 too: both wrap alike
    assert_same(result, reference.astype(memory.dtype), dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm"))
@pytest.mark.parametrize("function", ("convolve2d", "correlate2d"))
def test_2d_functions_match_scipy_signal(function, boundary, mode):
    x, k = _data((17, 12), "float64", 2), _data((4, 5), "float64", 3)
    lazy = getattr(cd, function)(da.from_array(x, chunks=(5, 4)), k, mode, boundary)
    expected = getattr(scipy.signal, function)(x, k, mode, boundary)
    assert_same(lazy.compute(), expected, "float64")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("function", ("fftconvolve", "oaconvolve"))
@pytest.mark.parametrize("axes", (None, 1, (0, 2)))
def test_fft_functions_with_axes_match_scipy(function, axes, mode):
    """Convolved and broadcast axes (a kernel of length 1 on a broadcast axis, or as long
    as the input there), integers in, float64 out."""
    x = _data((9, 13, 6), "int32", 4)
    k = _data((1, 5, 6) if axes == 1 else (9, 4, 3), "int32", 5)
    if axes == (0, 2):
        k = k[:, :1]  # axis 1 broadcasts (length 1 in the kernel)
    lazy = getattr(cd, function)(da.from_array(x, chunks=(4, 5, 2)), k, mode, axes=axes)
    expected = getattr(scipy.signal, function)(x, k, mode, axes=axes)
    assert_same(lazy.compute(), expected, "float64")


@pytest.mark.parametrize("rank", (1, 3, 4))
@pytest.mark.parametrize("mode", MODES)
def test_any_rank_with_integers_exact(rank, mode):
    shape = {1: (41,), 3: (9, 8, 7), 4: (5, 6, 4, 5)}[rank]
    x, k = _data(shape, "int64", 6), _data((3,) * (rank - 1) + (4,), "int64", 7)
    chunks = tuple(max(1, n // 3) for n in shape)
    for boundary in ("wrap", "mirror"):
        result = cd.convolve(da.from_array(x, chunks=chunks), k, mode, boundary=boundary)
        assert_same(result.compute(), convcore.convolve(x, k, mode, boundary=boundary), "int64")


def test_integers_wrap_as_fixed_width():
    x = np.full(10, 100, np.int8)
    result = cd.convolve(da.from_array(x, chunks=3), np.array([2, 2], np.int8)).compute()
    assert result.dtype == np.int8
    np.testing.assert_array_equal(result, convcore.convolve(x, np.array([2, 2], np.int8)))


def test_wrap_goes_round_a_chunked_array_several_times():
    """dask-image#242: wrap on chunked arrays. A kernel longer than the array reads it
    round and round; chunks of 1-3 samples."""
    x = _data((7, 5), "float64", 8)
    k = _data((17, 12), "float64", 9)
    lazy = cd.convolve(da.from_array(x, chunks=((1, 3, 3), (2, 1, 2))), k, "same",
                       boundary="wrap")
    assert_same(lazy.compute(), scipy_reference(x, k, "same", "wrap"), "float64")


def test_sepconvolve_matches_memory():
    x = _data((30, 21), "float32", 10)
    factors = [_data(7, "float32", 11), _data(5, "float32", 12)]
    for mode, boundary in (("same", "symm"), ("full", "fill"), ("valid", "fill")):
        lazy = cd.sepconvolve(da.from_array(x, chunks=(8, 6)), factors, mode, boundary=boundary)
        assert_same(lazy.compute(), convcore.sepconvolve(x, factors, mode, boundary=boundary),
                    "float32")


def test_nonfinite_kernel_in_1d_follows_numpy_convolve():
    """SciPy's 1-D direct convolution forms no products with the zero fill (an inf tap
    leaves the edges finite); N-D forms them. Both as in memory."""
    k = np.array([1.0, np.inf, 2.0])
    x1, x2 = np.arange(1.0, 11.0), np.arange(1.0, 13.0).reshape(3, 4)
    for mode in MODES:
        got = cd.convolve(da.from_array(x1, chunks=3), k, mode).compute()
        np.testing.assert_array_equal(got, convcore.convolve(x1, k, mode))
        got = cd.correlate(da.from_array(x2, chunks=2), k[None], mode).compute()
        np.testing.assert_array_equal(got, convcore.correlate(x2, k[None], mode))


def test_kernel_containing_the_input_runs_in_one_task():
    x, k = _data((4, 3), "float64", 13), _data((9, 8), "float64", 14)
    for mode in ("valid", "full"):
        lazy = cd.correlate(da.from_array(x, chunks=2), k, mode)
        assert_same(lazy.compute(), convcore.correlate(x, k, mode), "float64")


def test_default_output_chunks():
    x = da.zeros((20, 10), chunks=((6, 6, 8), (5, 5)))
    k = np.ones((5, 4))
    assert cd.convolve(x, k, "same").chunks == x.chunks
    # 'full': the first chunk grows by (m - 1) // 2, the last by m // 2
    assert cd.convolve(x, k, "full").chunks == ((8, 6, 10), (6, 7))
    # 'valid': they shrink by m // 2 and (m - 1) // 2
    assert cd.convolve(x, k, "valid").chunks == ((4, 6, 6), (3, 4))
    assert cd.convolve(x, k, "same", chunks=(7, 10)).chunks == ((7, 7, 6), (10,))


def test_the_kernel_is_in_the_graph_once():
    x = da.zeros((40, 40), chunks=10)
    k = np.arange(49.0).reshape(7, 7)
    graph = dict(cd.convolve(x, k, "same").__dask_graph__())
    holding = [key for key, node in graph.items()
               if isinstance(getattr(node, "value", None), np.ndarray)
               and np.array_equal(node.value, k)]
    assert len(holding) == 1
    blocks = [key for key in graph if isinstance(key, tuple) and "convcore-convolve" in key[0]
              and not key[0].endswith(("-cut", "-halo"))]
    assert len(blocks) == 16 and all(holding[0] in graph[b].dependencies for b in blocks)


def test_no_task_reads_more_than_its_neighbourhood():
    """Nothing gathers the whole array: a block task depends on the kernel and on at most
    the 3 x 3 input blocks around it (here the kernel's reach is below a chunk)."""
    x = da.ones((60, 60), chunks=15)
    graph = dict(cd.convolve(x, np.ones((5, 5)), "same", boundary="wrap").__dask_graph__())
    for key, node in graph.items():
        if isinstance(key, tuple) and key[0].startswith("convcore-convolve"):
            assert len(node.dependencies) <= 10


def test_inputs_are_not_modified():
    x, k = _data((12, 9), "float64", 15), _data((3, 3), "float64", 16)
    x0, k0 = x.copy(), k.copy()
    cd.convolve(da.from_array(x, chunks=4), k, "same", boundary="symm").compute()
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(k, k0)


@pytest.mark.parametrize("call,error,words", [
    (lambda x, k: cd.convolve(x, k, "sme"), ValueError, "mode must be"),
    (lambda x, k: cd.convolve(x, k, boundary="reflekt"), ValueError, "boundary must be"),
    (lambda x, k: cd.convolve(x, k[0]), ValueError, "same dimensionality"),
    (lambda x, k: cd.convolve(x, np.ones((40, 2)), "valid"), ValueError, "'valid' mode"),
    (lambda x, k: cd.convolve(x, k, method="fast"), ValueError, "method must be"),
    (lambda x, k: cd.convolve(x, k, backend="nope"), ValueError, "nope"),
    (lambda x, k: cd.convolve(x, k, backend="separable", backend_options={"rnak": 1}),
     ValueError, "rnak"),
    (lambda x, k: cd.convolve(x, da.from_array(k)), TypeError, "in2 must be an in-memory"),
    (lambda x, k: cd.convolve(x, k, threads=0), ValueError, "threads must be"),
    (lambda x, k: cd.convolve(x, k, threads=1.5), TypeError, "threads must be"),
    (lambda x, k: cd.convolve(x, k, chunks=(3, 3, 3)), ValueError, "chunks must fit"),
    (lambda x, k: cd.convolve2d(x.astype(bool), k.astype(bool)), ValueError, "convolve2d not available"),
    (lambda x, k: cd.fftconvolve(x, k, axes=5), ValueError, "axes exceeds"),
    (lambda x, k: cd.sepconvolve(x, [k[0]]), ValueError, "one 1-D kernel per axis"),
    (lambda x, k: cd.convolve(x, k, fillvalue=[1, 2]), ValueError, "fillvalue"),
    (lambda x, k: cd.convolve(x.astype("U1"), k), TypeError, "in1 must be numeric"),
])
def test_bad_arguments_raise_when_the_graph_is_built(call, error, words):
    x, k = da.ones((10, 8), chunks=4), np.ones((3, 3))
    with pytest.raises(error, match=words):
        call(x, k)


def test_degenerate_inputs_as_in_memory():
    k = np.ones((2, 2))
    empty = np.zeros((0, 4))
    with pytest.raises(ValueError, match="cannot be empty"):
        cd.convolve(da.from_array(empty), k, "full")
    np.testing.assert_array_equal(cd.convolve(da.from_array(empty), k, "same").compute(),
                                  convcore.convolve(empty, k, "same"))
    np.testing.assert_array_equal(cd.fftconvolve(da.ones(3), np.ones(0)).compute(),
                                  convcore.fftconvolve(np.ones(3), np.ones(0)))
    x = np.ones((6, 5))
    np.testing.assert_array_equal(cd.convolve(da.from_array(x, chunks=2), np.ones((0, 2)),
                                              "valid").compute(),
                                  convcore.convolve(x, np.ones((0, 2)), "valid"))
    # no axis to convolve: SciPy's broadcast product
    a, b = _data((4, 1), "float64", 17), _data((1, 3), "float64", 18)
    np.testing.assert_array_equal(cd.fftconvolve(da.from_array(a), b, axes=0).compute(),
                                  convcore.fftconvolve(a, b, axes=0))


def test_threaded_scheduler_gives_each_task_its_share():
    """Pool of p threads on c CPUs: c // p threads per task (at least one); the caller's
    threads= wins. Recorded inside the tasks."""
    from convcore.runtime import contention as _contention

    def share(block):
        return np.array([cd.task_share()])

    cpus = _contention.cpu_budget()
    for workers in (1, 2, 4):
        seen = da.ones(8, chunks=2).map_blocks(share, chunks=(1,), meta=np.array((), int)).compute(
            scheduler="threads", num_workers=workers)
        assert set(seen.tolist()) == {max(1, cpus // workers)}


def test_docs_page_examples():
    import doctest
    import pathlib

    page = pathlib.Path(__file__).resolve().parents[1] / "docs" / "dask.md"
    result = doctest.testfile(str(page), module_relative=False)
    assert result.attempted >= 10 and result.failed == 0
