"""The result cache: a dropped large result lends its memory to the next one, never its values."""

import gc
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.signal

import convcore
from convcore._cy import result_pool

BIG = (1024, 1100)   # 4.5 MB of float32: above the cache's 4 MiB block minimum


@pytest.fixture
def cache():
    """An empty cache of known size for the test, the process setting restored after."""
    previous = convcore.set_result_cache(0)
    convcore.set_result_cache(64 << 20)
    yield
    convcore.set_result_cache(previous)


def _inputs(seed, shape=BIG, k=5, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal((k, k)).astype(dtype)


@pytest.mark.parametrize("backend", ["naive", "openmp", "separable", "fft", "im2col"])
def test_reused_memory_never_shows_old_values(cache, backend):
    # The freed result is poisoned; the next result of the same size takes its memory and must
    # overwrite every element (a backend that relied on fresh zeroed pages would fail here).
    x, w = _inputs(1)
    if backend == "separable":
        w = np.outer(w[0], w[:, 0]).astype(np.float32)
    first = convcore.convolve(x, w, "same", backend=backend)
    address = first.ctypes.data
    first[...] = np.nan
    del first
    gc.collect()
    second = convcore.convolve(x, w, "same", backend=backend)
    assert second.ctypes.data == address, "the freed result's memory was not reused"
    expected = scipy.signal.convolve(x.astype(np.float64), w.astype(np.float64), "same")
    np.testing.assert_allclose(second, expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max())


def test_reuse_is_counted_and_only_for_the_same_size(cache):
    x, w = _inputs(2)
    before = convcore.result_cache_info()["reused"]
    a = convcore.convolve(x, w, "same", backend="openmp")
    del a
    b = convcore.convolve(x[:, :-8], w, "same", backend="openmp")   # another size: fresh
    assert convcore.result_cache_info()["reused"] == before
    c = convcore.convolve(x, w, "same", backend="openmp")
    assert convcore.result_cache_info()["reused"] == before + 1
    assert b.shape != c.shape


def test_limit_zero_turns_it_off_and_frees_what_it_holds(cache):
    x, w = _inputs(3)
    convcore.convolve(x, w, "same", backend="openmp")
    assert convcore.result_cache_info()["idle_bytes"] >= x.nbytes
    convcore.set_result_cache(0)
    assert convcore.result_cache_info()["idle_bytes"] == 0
    convcore.convolve(x, w, "same", backend="openmp")
    assert convcore.result_cache_info()["idle_blocks"] == 0


def test_idle_bytes_stay_within_the_limit(cache):
    convcore.set_result_cache(10 << 20)      # room for two 4.5 MB results, not three
    w = np.ones((1, 1), np.float32)
    results = [convcore.convolve(np.ones((1024, 1100 + i), np.float32), w) for i in range(3)]
    del results
    info = convcore.result_cache_info()
    assert info["idle_blocks"] == 2 and info["idle_bytes"] <= 10 << 20


def test_small_results_are_not_cached(cache):
    before = convcore.result_cache_info()
    for _ in range(3):
        convcore.convolve(np.ones((100, 100)), np.ones((3, 3)), "same")
    assert convcore.result_cache_info()["idle_bytes"] == before["idle_bytes"]


def test_cached_arrays_behave_like_numpy_arrays(cache):
    a = result_pool.empty((1024, 1024), np.float64)
    a[...] = 1.0
    a.resize((2048, 1024), refcheck=False)  # realloc through the cache's handler
    assert a[:1024].sum() == 1024 * 1024
    a.resize((10,), refcheck=False)
    assert a.shape == (10,) and (a == 1.0).all()
    del a
    z = result_pool.empty((0,), np.float32)
    assert z.size == 0


def test_many_threads_share_the_cache(cache):
    def work(seed):
        x, w = _inputs(seed, (700 + seed % 2, 1600), 3)
        expected = scipy.signal.convolve(x.astype(np.float64), w.astype(np.float64), "same")
        for _ in range(4):
            got = convcore.convolve(x, w, "same", backend="openmp")
            np.testing.assert_allclose(got, expected, rtol=1e-4,
                                       atol=1e-4 * np.abs(expected).max())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))   # re-raises the first failure here
    assert convcore.result_cache_info()["idle_bytes"] <= 64 << 20


def _page_distance(a, b):
    return (a.ctypes.data - b.ctypes.data) % 4096


@pytest.mark.parametrize("offset", [0, 16, 112, 1000, 2048, 4032, 4080])
def test_large_results_start_half_a_page_from_their_input(cache, offset):
    # Wherever the input starts in its page, a result of PLACE_MIN bytes and more starts
    # 2 KiB away (within the 64-byte alignment step), and stays 64-byte aligned.
    buf = np.empty(1024 * 1024 + 2048, np.float32)
    start = (-buf.ctypes.data % 4096 + offset) // 4
    x = buf[start:start + 1024 * 1024].reshape(1024, 1024)
    x[...] = np.random.default_rng(offset).standard_normal(x.shape)
    w = np.ones((3, 3), np.float32)
    for backend in ("openmp", "naive"):
        out = convcore.convolve(x, w, "same", backend=backend)
        assert abs(_page_distance(out, x) - 2048) < 64
        assert out.ctypes.data % 64 == 0 and out.flags.owndata and out.flags.c_contiguous
        expected = scipy.signal.convolve(x.astype(np.float64), w.astype(np.float64), "same")
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_a_reused_block_is_placed_again_for_the_new_input(cache):
    x, w = _inputs(5)
    other = np.empty(x.size + 512, np.float32)[256:256 + x.size].reshape(x.shape)
    other[...] = x
    first = convcore.convolve(x, w, "same", backend="openmp")
    assert abs(_page_distance(first, x) - 2048) < 64
    del first
    before = convcore.result_cache_info()["reused"]
    second = convcore.convolve(other, w, "same", backend="openmp")
    assert convcore.result_cache_info()["reused"] == before + 1
    assert abs(_page_distance(second, other) - 2048) < 64


def test_layer_results_are_placed_too(cache):
    x = np.random.default_rng(6).standard_normal((2, 8, 128, 128)).astype(np.float32)
    w = np.random.default_rng(7).standard_normal((8, 1, 3, 3)).astype(np.float32)
    out = convcore.nn.conv2d(x, w, padding=1, groups=8)
    assert out.nbytes >= result_pool.PLACE_MIN
    assert abs(_page_distance(out, x) - 2048) < 64


def test_placed_arrays_resize_and_free_like_numpy_arrays(cache):
    near = np.empty(1000, np.float32)
    a = result_pool.empty((512, 512), np.float32, near)
    a[...] = np.arange(a.size, dtype=np.float32).reshape(a.shape)
    a.resize((1024, 512), refcheck=False)   # grows into a new block: contents copied
    assert (a[:512].ravel() == np.arange(512 * 512)).all()
    a.resize((3,), refcheck=False)
    assert a.tolist() == [0.0, 1.0, 2.0]
    b = result_pool.empty((256, 1024), np.float64)   # no input: 2 KiB + 16 into its page
    assert abs(b.ctypes.data % 4096 - 2064) < 64
    del a, b


@pytest.mark.parametrize("value, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_limits_are_refused(value, error):
    with pytest.raises(error, match="max_bytes"):
        convcore.set_result_cache(value)


def test_environment_sets_the_limit():
    code = "import convcore; print(convcore.result_cache_info()['cap'])"
    env = {"CONVCORE_RESULT_CACHE": "16M", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert int(out) == 16 << 20
