"""What every course page shares: its size, where its figures go, the machine stamp, timing.

The pages import this module (it sits beside them, so ``python docs/course/NN-name.py``, a
notebook kernel started in this folder and the HTML build all find it). It holds only what
two or more pages need, so each page shows its own convolution code in full.
"""

import os
import pathlib
import platform
import sys

import numpy as np

SIZES = ("full", "ci")
SIZE = os.environ.get("CONVCORE_COURSE_SIZE", "full")
if SIZE not in SIZES:
    raise ValueError(f"CONVCORE_COURSE_SIZE must be 'full' or 'ci', got {SIZE!r}")

# build/ is ignored by git; the test sends figures to a temporary folder instead.
FIGURES = pathlib.Path(os.environ.get("CONVCORE_COURSE_FIGURES")
                       or pathlib.Path(__file__).resolve().parents[2] / "build" / "course"
                       / "figures")


def sized(full, ci):
    """`full` for a reader's run (the default), `ci` when ``CONVCORE_COURSE_SIZE=ci``.

    Only sizes of timed or trained work depend on it; every checked answer is computed at
    the course's own sizes in both.
    """
    return ci if SIZE == "ci" else full


def photo(size=64):
    """A real photograph as a (3, size, size) float64 image in [0, 1]: scikit-learn's bundled
    ``china.jpg`` (no download), a square crop averaged down to `size` pixels per side."""
    from sklearn.datasets import load_sample_image

    picture = load_sample_image("china.jpg")[:, 100:527].astype(np.float64) / 255
    block = picture.shape[0] // size
    crop = picture[:size * block, :size * block]
    return crop.reshape(size, block, size, block, 3).mean(axis=(1, 3)).transpose(2, 0, 1)


def _in_notebook():
    return "ipykernel" in sys.modules


def pyplot():
    """matplotlib's pyplot: inline in a notebook, the file-only Agg backend in a script."""
    import matplotlib

    if not _in_notebook():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, name, measured=False):
    """Write `figure` as ``FIGURES/name.png`` and return the path.

    A figure with `measured` timings gets the machine's `stamp` written under it.

    In a notebook the figure stays open so the cell shows it (and the HTML build keeps it);
    in a script it is closed, so a page's figures do not pile up in memory.
    """
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{name}.png"
    if measured:
        figure.text(0.5, -0.01, "measured on " + stamp(), ha="center", va="top", fontsize=8)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    if not _in_notebook():
        import matplotlib.pyplot as plt

        plt.close(figure)
    print(f"figure saved: {path}")
    return path


def instruction_set(flags):
    """The widest x86 vector extension in a /proc/cpuinfo flags line (or the machine name)."""
    names = set(flags.split())
    for flag, label in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"),
                        ("sse4_2", "SSE4.2"), ("asimd", "NEON")):
        if flag in names:
            return label
    return platform.machine()


def stamp():
    """One line naming the machine a page's timings come from: CPU model, instruction set,
    threads, convcore and NumPy versions, and how busy the machine was (load average)."""
    import convcore
    from convcore.runtime.build import cpu_model

    model, flags = cpu_model()
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"{model} ({instruction_set(flags)}), {os.cpu_count()} CPUs, "
            f"{convcore.get_num_threads()} convcore threads, convcore {convcore.__version__}, "
            f"NumPy {np.__version__}{load}")


def seconds(call, repeats=5):
    """Median seconds of `repeats` calls of `call`, after untimed calls to warm it up.

    Uses the benchmark suite's warm-up (``convcore.benchmarks.timing``); the median, because
    on a shared machine noise only ever adds time.
    """
    from convcore.benchmarks import timing

    timing.warm_up(call, seconds=0.05)
    return float(np.median(timing.block_times(call, repeats)))


def format_seconds(value):
    """``1.23 ms``-style text for a time in seconds."""
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns"
