"""Peak memory of one call, convcore against SciPy, each in a fresh process.

The child builds the input, records its peak RSS, makes the one call, and reports how far the
call raised the peak (``ru_maxrss``), in MB. The default case is docs/design.md's: ``convolve2d``
on a strided int64 image (every other column of a larger one) with a 3 x 3 kernel, scaled down
from 4 GB to 256 MB of input so it fits beside other work.

Run::

    convcore bench peak-memory [--rows 4000] [--cols 4000] [--repeats 3]
"""

import argparse
import statistics
import subprocess
import sys

from . import stamp

CHILD = """
import resource, sys
import numpy as np
rows, cols, library = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if library == "scipy":
    from scipy.signal import convolve2d
else:
    from convcore import convolve2d
base = np.empty((rows, 2 * cols), np.int64)
for r in range(rows):                 # row by row: no temporary as large as the input
    base[r] = np.arange(2 * cols) * (r + 1) % 1000
x = base[:, ::2]                      # strided: every other column
k = np.arange(9, dtype=np.int64).reshape(3, 3)
convolve2d(x[:8, :8], k, mode="same")  # imports and first-call set-up out of the way
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = convolve2d(x, k, mode="same")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert out.dtype == np.int64 and out.shape == x.shape
print((after - before) / 1024, before / 1024)
"""


def peak(library, rows, cols):
    result = subprocess.run([sys.executable, "-c", CHILD, str(rows), str(cols), library],
                            capture_output=True, text=True, check=True)
    rise, base = map(float, result.stdout.split())
    return rise, base


def main(argv=None, prog=None):
    """``convcore bench peak-memory``: the call's peak RSS rise, convcore against SciPy."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--cols", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(stamp.line(), flush=True)
    size = args.rows * args.cols * 8 / 2**20
    print(f"convolve2d, strided int64 {args.rows} x {args.cols} ({size:.0f} MB viewed, "
          f"{2 * size:.0f} MB base), k 3 x 3, 'same'; peak RSS rise of the call, MB")
    rises = {"scipy": [], "convcore": []}
    for _ in range(args.repeats):
        for library in rises:  # interleaved
            rises[library].append(peak(library, args.rows, args.cols)[0])
    for library, values in rises.items():
        print(f"  {library:8s} median {statistics.median(values):7.1f}  runs "
              + " ".join(f"{v:.1f}" for v in values))
    ratio = statistics.median(rises["convcore"]) / max(statistics.median(rises["scipy"]), 1e-9)
    print(f"  convcore / scipy: {ratio:.2f}")
    return 0
