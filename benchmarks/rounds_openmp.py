"""Interleaved rounds: ``openmp`` against ``cv2.filter2D`` and the sgemm peak, in one run.

The issue's targets are ratios measured in one run on a shared, noisy 2-core machine, so every
contender gets its own block of calls after an idle gap (other libraries' thread pools go to
sleep: PERF-NOTES.md), the blocks are interleaved round after round, and a cell reports the
median over rounds of the median time of a block. Every timed result is checked once against a
float64 FFT reference.

Run (from the repository root, BLAS variables unset as bench-grid.md asks)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/rounds_openmp.py [--quick]
"""

import argparse
import time

import numpy as np
from conftest import median_time, warm_up


def _block(fn, reps):
    warm_up(fn)
    return median_time(fn, reps)


def _rounds(contenders, rounds, reps, gap=0.15):
    """{name: per-round block medians}, blocks interleaved A B C, A B C..."""
    results = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            time.sleep(gap)
            results[name].append(_block(fn, reps))
    return {name: np.array(v) for name, v in results.items()}


def _check(result, x, w, dtype):
    import scipy.signal

    ref = scipy.signal.fftconvolve(x.astype(np.float64), w.astype(np.float64), "same")
    scale = np.abs(ref).max()
    tol = 2e-4 if np.dtype(dtype) == np.float32 else 1e-9
    err = np.abs(result.astype(np.float64) - ref).max() / scale
    assert err <= tol, f"relative error {err:.3g}"


def sgemm_gflops(rounds=5):
    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    a @ a
    t = _rounds({"sgemm": lambda: a @ a}, rounds, 3)["sgemm"]
    return 2 * 4096 ** 3 / np.median(t) / 1e9, 2 * 4096 ** 3 / t.min() / 1e9


def signal2d(n, k, dtype, threads, rounds, reps):
    import cv2

    import convcore

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n)).astype(dtype)
    w = rng.standard_normal((k, k)).astype(dtype)
    flipped = np.ascontiguousarray(w[::-1, ::-1])
    cv2.setNumThreads(threads)
    convcore.set_num_threads(threads)

    def ours():
        return convcore.convolve(x, w, "same", backend="openmp")

    def theirs():
        return cv2.filter2D(x, -1, flipped, borderType=cv2.BORDER_CONSTANT)

    _check(ours(), x, w, dtype)
    _check(theirs(), x, w, dtype)
    return _rounds({"cv2": theirs, "openmp": ours}, rounds, reps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2, help="threads for both contenders")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)

    import convcore

    convcore.show_config()
    peak, best_peak = sgemm_gflops(rounds)
    import os

    print(f"\nload average {os.getloadavg()[0]:.2f}; threads {args.threads}; {rounds} rounds")
    print(f"sgemm 4096^2 float32: {peak:.0f} GFLOP/s median, {best_peak:.0f} best round "
          "(the peaks for the fractions below)\n")
    print("ratio = median over rounds of (cv2 block / openmp block of the same round); times are")
    print("medians over rounds of the block medians. 'best' columns: the fastest round of each")
    print("(what the code does when the shared cores happen to be free).\n")
    print("| dtype | n | k | cv2.filter2D ms | openmp ms | ratio | GFLOP/s | of sgemm peak "
          "| best cv2 ms | best openmp ms | best ratio | best GFLOP/s | of best peak |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    cells = [("float32", 1024, k) for k in (3, 5, 7, 11, 15, 21, 31)]
    cells += [("float32", 4096, k) for k in (3, 5, 7, 11, 15, 21, 31)]
    cells += [("float64", 1024, k) for k in (3, 5, 7, 11, 15, 21)]
    for dtype, n, k in cells:
        reps = 9 if n == 1024 else 3
        t = signal2d(n, k, dtype, args.threads, rounds, reps)
        ratio = np.median(t["cv2"] / t["openmp"])
        ours, theirs = np.median(t["openmp"]), np.median(t["cv2"])
        gflops = 2 * n * n * k * k / ours / 1e9
        best_ours, best_theirs = t["openmp"].min(), t["cv2"].min()
        print(f"| {dtype} | {n} | {k} | {theirs * 1e3:.2f} | {ours * 1e3:.2f} | "
              f"{ratio:.2f}x | {gflops:.0f} | {gflops / peak:.0%} | {best_theirs * 1e3:.2f} | "
              f"{best_ours * 1e3:.2f} | {best_theirs / best_ours:.2f}x | "
              f"{2 * n * n * k * k / best_ours / 1e9:.0f} | "
              f"{2 * n * n * k * k / best_ours / 1e9 / best_peak:.0%} |", flush=True)

    print("\nthreads: 4096^2 k=7 float32 'same'")
    times = {}
    for threads in (1, 2, 1, 2):
        t = signal2d(4096, 7, "float32", threads, max(3, rounds // 2), 3)
        times.setdefault(threads, []).extend(t["openmp"])
    one, two = np.median(times[1]), np.median(times[2])
    print(f"1 thread {one * 1e3:.2f} ms, 2 threads {two * 1e3:.2f} ms: {one / two:.2f}x "
          f"(best rounds: {min(times[1]) * 1e3:.2f} / {min(times[2]) * 1e3:.2f} ms = "
          f"{min(times[1]) / min(times[2]):.2f}x)")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
