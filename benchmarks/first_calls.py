"""First calls at new shapes: ``convcore.fftconvolve`` against ``scipy.signal.fftconvolve``.

The two workloads docs/fft.md quotes ("First calls at new shapes"), each shape called once, in a
fresh process per library and round
(nothing planned or cached before), then a second pass over the same shapes in that process
(the repeat calls)::

    signals  40 1-D signals of lengths 10k-200k (seeded), kernel 1001, 'full'
    images   20 square images of 300-900 px (seeded), kernel 31 x 31, 'same'

Each child reports the total seconds of its first pass and of its second pass; rounds are
interleaved (scipy, convcore, scipy, convcore, ...) and the table gives medians and the
spread. Run with the BLAS variables unset (docs/benchmarks.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE convcore bench first-calls [--rounds 5]
"""

import argparse
import statistics
import subprocess
import sys

from . import stamp

CHILD = """
import sys, time
import numpy as np
workload, library, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if library == "scipy":
    from scipy.signal import fftconvolve
else:
    from convcore import fftconvolve
rng = np.random.default_rng(2026)
if workload == "signals":
    shapes = rng.integers(10_000, 200_001, count or 40)
    inputs = [(rng.standard_normal(n), rng.standard_normal(1001)) for n in shapes]
    mode = "full"
else:
    shapes = rng.integers(300, 901, count or 20)
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


def run(workload, library, count=0):
    """``(first pass, repeat pass)`` seconds of one fresh process (`count` shapes; 0: the
    workload's own 40 or 20)."""
    result = subprocess.run([sys.executable, "-c", CHILD, workload, library, str(count)],
                            capture_output=True, text=True, check=True)
    return tuple(map(float, result.stdout.split()))


def main(argv=None, prog=None):
    """``convcore bench first-calls``: both libraries' first and repeat passes, interleaved."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", nargs="+", choices=["signals", "images"],
                        default=["signals", "images"])
    parser.add_argument("--shapes", type=int, default=0,
                        help="shapes per workload (default: 40 signals, 20 images)")
    args = parser.parse_args(argv)
    print(stamp.line(), flush=True)
    print("workload   library   first pass ms (median, min-max)   repeat pass ms")
    for workload in args.workloads:
        times = {"scipy": [], "convcore": []}
        for _ in range(args.rounds):
            for library in times:
                times[library].append(run(workload, library, args.shapes))
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
    return 0
