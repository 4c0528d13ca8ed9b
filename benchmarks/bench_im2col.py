"""im2col against its contenders on the 'cnn' and 'signal2d' rows of the benchmark grid.

Two ways to run it (both unset the BLAS variables that slow it, see bench-grid.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks/bench_im2col.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_im2col.py [rounds]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_im2col.py calibrate

The pytest-benchmark run groups every problem with its contenders. The script prints the
issue's ratios: each contender timed in its own block of calls after an idle gap (thread pools
of torch, OpenBLAS and OpenMP keep spinning for a while after a call: PERF-NOTES.md), blocks
interleaved over several rounds, medians compared. ``CONVCORE_BENCH_FULL=1`` runs the whole
signal2d grid (n = 256, 1024, 4096; float32 and float64; 'same' and 'valid').
"""

import math
import os
import sys
import time

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
from numpy.lib.stride_tricks import sliding_window_view

import convcore

try:
    from conftest import assert_close_to, median_time, seeded
except ImportError:  # run as a script from elsewhere
    sys.path.insert(0, os.path.dirname(__file__))
    from conftest import assert_close_to, median_time, seeded

THREADS = os.cpu_count() or 1
FULL = os.environ.get("CONVCORE_BENCH_FULL") == "1"
# CONVCORE_BENCH_QUIET=1: the ratio report waits for idle CPUs before each round.
QUIET = os.environ.get("CONVCORE_BENCH_QUIET") == "1"

CNN = {  # name: N, C, H=W, K, k, stride, pad, groups (bench-grid.md)
    "textbook_64x64x3_2f5x5": (1, 3, 64, 2, 5, 1, 0, 1),
    "resnet3x3_C64_56": (8, 64, 56, 64, 3, 1, 1, 1),
    "resnet3x3_C128_28": (8, 128, 28, 128, 3, 1, 1, 1),
    "resnet3x3_C256_14": (8, 256, 14, 256, 3, 1, 1, 1),
    "pointwise1x1_C256_K64_56": (8, 256, 56, 64, 1, 1, 0, 1),
    "stem7x7s2_C3_K64_224": (8, 3, 224, 64, 7, 2, 3, 1),
    "depthwise3x3_C64_56": (8, 64, 56, 64, 3, 1, 1, 64),
}
# The targets: im2col time / torch time at least this (as torch / im2col >= target).
CNN_TARGETS = {"resnet3x3_C64_56": 0.4, "resnet3x3_C128_28": 0.5, "resnet3x3_C256_14": 0.55,
               "pointwise1x1_C256_K64_56": 0.75, "stem7x7s2_C3_K64_224": 0.3}
SIGNAL_SIZES = (256, 1024, 4096) if FULL else (1024,)
SIGNAL_KERNELS = (3, 5, 7, 11, 15, 21, 31, 63)
SIGNAL_DTYPES = ("float32", "float64") if FULL else ("float32",)
SIGNAL_MODES = ("same", "valid") if FULL else ("same",)


# ------------------------------------------------------------------ problems and contenders

def layer_problem(name):
    n, c, h, k, size, stride, pad, groups = CNN[name]
    x = seeded((n, c, h, h))
    w = seeded((k, c // groups, size, size), seed=1)
    return x, w, dict(stride=stride, padding=pad, groups=groups)


def torch_conv2d(x, w, kwargs):
    import torch

    torch.set_num_threads(THREADS)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)

    def run():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, **kwargs)
    return run


def unfolded_matmul(x, w, kwargs):
    """The same GEMMs as im2col on patch matrices already unfolded (the floor im2col
    approaches as its unfolding gets cheap)."""
    out = convcore.nn.output_shape(x.shape, w.shape[2:], layout="NCHW", filters=w.shape[0],
                                   stride=kwargs["stride"], padding=kwargs["padding"])
    cols = seeded((x.shape[0], w[0].size, out[2] * out[3]), seed=2)
    weights = w.reshape(w.shape[0], -1)
    return lambda: np.matmul(weights, cols)


def sliding_window_matmul(x, k, mode, rows=64):
    """NumPy's im2col: patches of a block of rows as a view, copied by reshape, times the
    kernel as a vector (the issue's 30 / 76 / 305 ms anchor)."""
    m = k.shape[0]
    if mode == "same":
        lo = m // 2
        xp = np.pad(x, ((lo, m - 1 - lo),) * 2)
    else:
        xp = x
    taps = k[::-1, ::-1].ravel()
    out_rows = xp.shape[0] - m + 1

    def run():
        out = np.empty((out_rows, xp.shape[1] - m + 1), x.dtype)
        for r in range(0, out_rows, rows):
            r1 = min(r + rows, out_rows)
            patches = sliding_window_view(xp[r:r1 + m - 1], (m, m))
            out[r:r1] = (patches.reshape(-1, m * m) @ taps).reshape(r1 - r, -1)
        return out
    return run


def signal_contenders(x, k, mode):
    import cv2

    anchor = (k.shape[1] - 1 - k.shape[1] // 2, k.shape[0] - 1 - k.shape[0] // 2)
    flipped = np.ascontiguousarray(k[::-1, ::-1])
    runs = {
        "im2col": lambda: convcore.convolve(x, k, mode, backend="im2col"),
        "scipy.signal.convolve": lambda: scipy.signal.convolve(x, k, mode),
        "scipy.signal.fftconvolve": lambda: scipy.signal.fftconvolve(x, k, mode),
        "sliding_window_view+matmul": sliding_window_matmul(x, k, mode),
    }
    if mode == "same":
        # (the grid's kernels are odd: ndimage and scipy.signal centre them alike)
        runs["scipy.ndimage.convolve"] = lambda: scipy.ndimage.convolve(x, k, mode="constant")
        runs["cv2.filter2D"] = lambda: cv2.filter2D(x, -1, flipped, anchor=anchor,
                                                    borderType=cv2.BORDER_CONSTANT)
    if x.size * k.size <= 1e9:
        runs["naive"] = lambda: convcore.convolve(x, k, mode, backend="naive")
    return runs


def signal_reference(x, k, mode):
    return scipy.signal.fftconvolve(x.astype(np.float64), k.astype(np.float64), mode)


# ------------------------------------------------------------------ pytest-benchmark

@pytest.mark.parametrize("contender", ["im2col", "torch", "unfolded_matmul"])
@pytest.mark.parametrize("name", list(CNN))
def test_cnn(benchmark, idle_gap, name, contender):
    x, w, kwargs = layer_problem(name)
    benchmark.group = f"cnn-{name}"
    if contender == "unfolded_matmul":
        if kwargs["groups"] != 1:
            pytest.skip("one GEMM per group: no single unfolded matrix to compare with")
        benchmark(unfolded_matmul(x, w, kwargs))
        return
    run = torch_conv2d(x, w, kwargs) if contender == "torch" else \
        (lambda: convcore.nn.conv2d(x, w, backend="im2col", **kwargs))
    result = benchmark(run)
    reference = torch_conv2d(x.astype(np.float64), w.astype(np.float64), kwargs)().numpy()
    assert_close_to(np.asarray(result), reference, np.float32)


@pytest.mark.parametrize("contender", ["im2col", "scipy.signal.convolve", "cv2.filter2D",
                                       "scipy.signal.fftconvolve", "scipy.ndimage.convolve",
                                       "sliding_window_view+matmul", "naive"])
@pytest.mark.parametrize("mode", SIGNAL_MODES)
@pytest.mark.parametrize("dtype", SIGNAL_DTYPES)
@pytest.mark.parametrize("k", SIGNAL_KERNELS)
@pytest.mark.parametrize("n", SIGNAL_SIZES)
def test_signal2d(benchmark, idle_gap, n, k, dtype, mode, contender):
    x, kernel = seeded((n, n), dtype), seeded((k, k), dtype, seed=1)
    runs = signal_contenders(x, kernel, mode)
    if contender not in runs:
        pytest.skip(f"{contender} does not run this cell (mode or size, see bench-grid.md)")
    projected = _projected_seconds(contender, n, k)
    if projected > 5:
        pytest.skip(f"skipped (projected {projected:.0f} s)")
    benchmark.group = f"signal2d-n{n}-k{k}-{dtype}-{mode}"
    result = benchmark.pedantic(runs[contender], rounds=5, warmup_rounds=1)
    assert_close_to(result, signal_reference(x, kernel, mode), dtype)


def _projected_seconds(contender, n, k):
    """bench-grid.md: cells projected over 5 s per call are reported, not run."""
    if contender == "sliding_window_view+matmul":
        return n * n * k * k * 4 / 1.3e9  # measured: ~0.3 s at 1024^2, k = 21
    if contender == "naive":
        return n * n * k * k * 1e-9
    return 0.0


# ------------------------------------------------------------------ the ratio report

def _block(run, calls):
    time.sleep(0.25)  # let the previous contender's threads go to sleep
    start = time.perf_counter()
    run()
    calls = max(2, min(calls, int(1.0 / max(time.perf_counter() - start, 1e-6))))
    return median_time(run, calls)


def _idle_fraction(seconds=0.5):
    """Share of all CPUs idle over `seconds` (Linux /proc/stat; 1.0 elsewhere)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)
    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except OSError:
        return 1.0
    return (idle1 - idle0) / max(total1 - total0, 1)


def _wait_for_quiet(limit=120.0, idle=0.8):
    """On a shared machine, start a round only while other processes leave the CPUs idle
    (every contender of the round then sees the same quiet machine). Gives up after
    `limit` seconds and says so."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if _idle_fraction() >= idle:
            return True
    print("  (machine busy: round measured anyway)", flush=True)
    return False


def _interleaved(runs, rounds, calls=5):
    """Median over rounds of each contender's median per block, blocks interleaved."""
    times = {name: [] for name in runs}
    for _ in range(rounds):
        if QUIET:
            _wait_for_quiet()
        for name, run in runs.items():
            times[name].append(_block(run, calls))
    return {name: float(np.median(values)) for name, values in times.items()}


def report(rounds=5):
    import torch

    torch.set_num_threads(THREADS)
    im2col = convcore.get_backend("im2col")
    print(f"threads {THREADS}, {rounds} interleaved rounds, medians")
    print("\ncnn (float32, N as in the grid)")
    for name in CNN:
        x, w, kwargs = layer_problem(name)
        runs = {"im2col": lambda: convcore.nn.conv2d(x, w, backend="im2col", **kwargs),
                "torch": torch_conv2d(x, w, kwargs)}
        if kwargs["groups"] == 1:
            runs["matmul"] = unfolded_matmul(x, w, kwargs)
        t = _interleaved(runs, rounds)
        p = convcore._layer_problem.build_layer_problem(x, w, **kwargs)[2]
        gflop = 2 * p.macs / 1e9
        line = (f"{name:26s} im2col {t['im2col'] * 1e3:7.2f} ms {gflop / t['im2col']:6.1f} GF/s"
                f"  torch {t['torch'] * 1e3:7.2f} ms {gflop / t['torch']:6.1f} GF/s"
                f"  torch/im2col {t['torch'] / t['im2col']:.2f}")
        if name in CNN_TARGETS:
            line += f" (target {CNN_TARGETS[name]})"
        if "matmul" in runs:
            line += f"  im2col/matmul {t['im2col'] / t['matmul']:.2f}"
        print(line + f"  cost/im2col {im2col.cost(p) / t['im2col']:.2f}", flush=True)
    for n in SIGNAL_SIZES:
        for dtype in SIGNAL_DTYPES:
            for mode in SIGNAL_MODES:
                print(f"\nsignal2d n={n} {dtype} {mode}")
                for k in SIGNAL_KERNELS:
                    x, kernel = seeded((n, n), dtype), seeded((k, k), dtype, seed=1)
                    runs = signal_contenders(x, kernel, mode)
                    for name in list(runs):
                        if _projected_seconds(name, n, k) > (1 if name == "naive" else 5):
                            del runs[name]
                    reference = signal_reference(x, kernel, mode)
                    for run in runs.values():
                        assert_close_to(run(), reference, dtype)
                    t = _interleaved(runs, rounds)
                    p = convcore._problem.build_problem(x, kernel, mode, "convolve")[2]
                    ours = t["im2col"]
                    cells = [f"k={k:2d} im2col {ours * 1e3:8.2f} ms "
                             f"{2 * p.macs / ours / 1e9:6.1f} GF/s",
                             f"cost/meas {im2col.cost(p) / ours:4.2f}"]
                    cells += [f"{name} {t[name] / ours:5.2f}x" for name in t if name != "im2col"]
                    print("  ".join(cells), flush=True)


def calibrate(n=1024):
    """Time the banded form on one thread for each chunk width and kernel size and print its
    rate (the Toeplitz flops per second): the source of BANDED_RATE in backends/im2col/_plan.py."""
    from convcore.backends.im2col import _plan as plan

    chunks = plan.CHUNKS
    x = seeded((n, n))
    try:
        with convcore.threads(1):
            for k in SIGNAL_KERNELS:
                kernel = seeded((k, k), seed=1)
                cells = []
                for chunk in chunks:
                    plan.CHUNKS = (chunk,)
                    convcore._dispatch.clear_plan_cache()
                    seconds = _block(lambda: convcore.convolve(x, kernel, "same",
                                                               backend="im2col"), 5)
                    width = math.ceil((n + k - 1) / chunk) * chunk
                    flops = 2 * n * width * (chunk + k - 1) * k
                    cells.append(f"B={chunk}: {seconds * 1e3:7.2f} ms {flops / seconds / 1e9:5.1f}"
                                 " GFLOP/s")
                print(f"k={k:2d}  " + "  ".join(cells), flush=True)
    finally:
        plan.CHUNKS = chunks
        convcore._dispatch.clear_plan_cache()


if __name__ == "__main__":
    if sys.argv[1:2] == ["calibrate"]:
        calibrate()
    else:
        report(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
