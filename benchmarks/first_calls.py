"""First calls at new shapes: ``convcore.fftconvolve`` against ``scipy.signal.fftconvolve``.

Issue 22's two workloads, each shape called once, in a fresh process per library and round
(nothing planned or cached before), then a second pass over the same shapes in that process
(the repeat calls)::

    signals  40 1-D signals of lengths 10k-200k (seeded), kernel 1001, 'full'
    images   20 square images of 300-900 px (seeded), kernel 31 x 31, 'same'

Each child reports the total seconds of its first pass and of its second pass; rounds are
interleaved (scipy, convcore, scipy, convcore, ...) and the table gives medians and the
spread. Run from the repository root, BLAS variables unset (docs/design.md, "Benchmark grid")::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/first_calls.py [--rounds 5]
"""

import argparse
import statistics
import subprocess
import sys

CHILD = """
import sys, time
import numpy as np
workload, library = sys.argv[1], sys.argv[2]
if library == "scipy":
    from scipy.signal import fftconvolve
else:
    from convcore import fftconvolve
rng = np.random.default_rng(2026)
if workload == "signals":
    shapes = rng.integers(10_000, 200_001, 40)
    inputs = [(rng.standard_normal(n), rng.standard_normal(1001)) for n in shapes]
    mode = "full"
else:
    shapes = rng.integers(300, 901, 20)
    inputs = [(rng.standard_normal((n, n)), rng.standard_normal((31, 31))) for n in shapes]
    mode = "same"
fftconvolve(np.ones(64), np.ones(8))  # imports and one-time set-up out of the way
passes = []
for _ in range(2):
    start = time.perf_counter()
    for x, k in inputs:
        fftconvolve(x, k, mode)
    passes.append(time.perf_counter() - start)
print(*passes)
"""


def run(workload, library):
    result = subprocess.run([sys.executable, "-c", CHILD, workload, library],
                            capture_output=True, text=True, check=True)
    return tuple(map(float, result.stdout.split()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", nargs="+", default=["signals", "images"])
    args = parser.parse_args()
    print("workload   library   first pass ms (median, min-max)   repeat pass ms")
    for workload in args.workloads:
        times = {"scipy": [], "convcore": []}
        for _ in range(args.rounds):
            for library in times:
                times[library].append(run(workload, library))
        for library, values in times.items():
            first = [v[0] * 1e3 for v in values]
            again = [v[1] * 1e3 for v in values]
            print(f"{workload:10s} {library:9s} {statistics.median(first):8.1f} "
                  f"({min(first):.1f}-{max(first):.1f})   {statistics.median(again):8.1f} "
                  f"({min(again):.1f}-{max(again):.1f})")
        first_ratio = [s[0] / c[0] for s, c in zip(times["scipy"], times["convcore"])]
        again_ratio = [s[1] / c[1] for s, c in zip(times["scipy"], times["convcore"])]
        print(f"{workload:10s} speed-up over SciPy: first pass {statistics.median(first_ratio):.2f}x "
              f"({min(first_ratio):.2f}-{max(first_ratio):.2f}), repeat pass "
              f"{statistics.median(again_ratio):.2f}x ({min(again_ratio):.2f}-{max(again_ratio):.2f})")


if __name__ == "__main__":
    main()
