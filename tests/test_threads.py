"""The one thread setting, and many Python threads calling at once."""

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import convcore
from convcore.engine import trials
from reference import reference


def test_threads_context_is_per_thread_and_nests():
    before = convcore.get_num_threads()
    seen = {}

    def other():
        seen["other"] = convcore.get_num_threads()

    with convcore.threads(1):
        assert convcore.get_num_threads() == 1
        with convcore.threads(3):
            assert convcore.get_num_threads() == 3
        assert convcore.get_num_threads() == 1
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["other"] == before
    assert convcore.get_num_threads() == before


def test_set_num_threads_is_process_wide():
    before = convcore.get_num_threads()
    try:
        convcore.set_num_threads(1)
        assert convcore.get_num_threads() == 1
    finally:
        convcore.set_num_threads(before)


def test_environment_variable_sets_default():
    code = "import convcore; print(convcore.get_num_threads())"
    env = dict(os.environ, CONVCORE_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "3"
    env["CONVCORE_NUM_THREADS"] = "many"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "CONVCORE_NUM_THREADS must be a positive integer" in bad.stderr


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128", "int16"])
def test_many_python_threads_at_once(backend_name, dtype, monkeypatch):
    # Bit-identical answers need the same plan and team every time: teams sized by the work
    # alone (not by what other processes do now), and plans past their first call.
    monkeypatch.setitem(convcore.runtime.contention._state, "adaptive", False)
    rng = np.random.default_rng(7)
    problems = []
    for i in range(16):
        shape = (20 + i, 17 + 2 * i)
        x = (rng.standard_normal(shape) * 10).astype(dtype)
        k = (rng.standard_normal((3 + i % 4, 2 + i % 3)) * 10).astype(dtype)
        problems.append((x, k, ("full", "same", "valid")[i % 3]))

    def call(problem):
        x, k, mode = problem
        try:
            return convcore.convolve(x, k, mode, backend=backend_name)
        except ValueError:  # this backend declines: auto answers (and is tested concurrently)
            return convcore.convolve(x, k, mode)

    for p in problems:
        # The first call of a signature is planned with its one-off costs, and under auto the
        # next six may be a trial of two backends (docs/design.md, "The fast path"): from the
        # eighth call on, one backend answers.
        for _ in range(1 + 2 * trials.TRIAL_CALLS):
            call(p)
    sequential = [call(p) for p in problems]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            concurrent = list(pool.map(call, problems))
            for got, expected in zip(concurrent, sequential):
                np.testing.assert_array_equal(got, expected)
    for (x, k, mode), got in zip(problems, sequential):
        ref = reference("convolve", x, k, mode)
        if np.dtype(dtype).kind == "i":
            np.testing.assert_array_equal(got, ref.astype(dtype))
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3 * np.abs(ref).max())


def test_native_loop_releases_the_gil():
    """While one thread runs a long naive convolution, another Python thread keeps running."""
    x = np.random.default_rng(0).standard_normal((700, 700))
    k = np.ones((15, 15))
    done = threading.Event()
    ticks = [0]

    def count():
        while not done.is_set():
            ticks[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        before = ticks[0]
        convcore.convolve(x, k, "same", backend="naive")
        during = ticks[0] - before
    finally:
        done.set()
        counter.join()
    # With the GIL held for the whole call the counter could only advance at the
    # interpreter's switch points before and after it: a handful of ticks at most.
    assert during > 1000


@pytest.fixture
def blas_pool_sizes():
    """A function reading every BLAS pool's thread count, with every pool set to 2 meanwhile."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not controller.lib_controllers:
        pytest.skip("no BLAS library loaded that threadpoolctl can see")
    with controller.limit(limits=2):
        yield lambda: [lib.num_threads for lib in controller.lib_controllers]


def test_serial_blas_limits_every_blas_pool_and_restores_it(blas_pool_sizes):
    from convcore.runtime.threads import serial_blas

    before = blas_pool_sizes()
    with serial_blas:
        with serial_blas:  # nested: still one thread, and the inner exit restores nothing
            pass
        assert blas_pool_sizes() == [1] * len(before)
    assert blas_pool_sizes() == before


def test_serial_blas_limits_from_another_python_thread(blas_pool_sizes):
    """threadpoolctl 3.8 lets only the thread that first set OpenBLAS (here the main
    thread, through the fixture) change it; a limit taken in a worker thread (a dask task)
    must hold all the same."""
    import threading

    from convcore.runtime.threads import BlasLimit

    seen = []

    def task():
        with BlasLimit(1):
            seen.append(blas_pool_sizes())

    worker = threading.Thread(target=task)
    worker.start()
    worker.join()
    assert seen and seen[0] == [1] * len(seen[0])
    assert blas_pool_sizes() == [2] * len(seen[0])


def test_serial_blas_restores_after_an_error(blas_pool_sizes):
    from convcore.runtime.threads import serial_blas

    before = blas_pool_sizes()
    with pytest.raises(RuntimeError):
        with serial_blas:
            raise RuntimeError("inside")
    assert blas_pool_sizes() == before


def test_serial_blas_finds_a_blas_library_loaded_after_its_first_use():
    # OpenCV brings its own OpenBLAS; imported after the limit's first use, its pool must be
    # held to one thread inside the limit too.
    pytest.importorskip("threadpoolctl")
    pytest.importorskip("cv2")
    script = (
        "import sys, threadpoolctl\n"
        "from convcore.runtime.threads import serial_blas\n"
        "assert 'cv2' not in sys.modules\n"
        "with serial_blas:\n"
        "    pass\n"
        "c = threadpoolctl.ThreadpoolController().select(user_api='blas')\n"
        "before = len(c.lib_controllers)\n"
        "import cv2\n"
        "c = threadpoolctl.ThreadpoolController().select(user_api='blas')\n"
        "with c.limit(limits=2):\n"
        "    with serial_blas:\n"
        "        print(before, [l.num_threads for l in c.lib_controllers])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    before, counts = done.stdout.split(" ", 1)
    counts = [int(n) for n in counts.strip(" []\n").split(",")]
    if len(counts) == int(before):
        pytest.skip("this cv2 build loads no BLAS library of its own")
    assert counts == [1] * len(counts), done.stdout
