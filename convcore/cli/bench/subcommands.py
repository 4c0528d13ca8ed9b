"""``convcore bench SUBCOMMAND``: the measurements that are not rows of the grid.

Each subcommand is the ``main(argv, prog)`` of a module of the suite (``convcore.benchmarks``),
where its measuring code lives beside the grid and ``timing.py`` it shares; this table only
names them. docs/benchmarks.md says what each one measures and which page quotes it.
"""

import importlib

# name -> (module of convcore.benchmarks, one line for ``convcore bench --help``)
SUBCOMMANDS = {
    "rounds": ("rounds", "interleaved rounds on groups of the grid: the ratios the docs quote"),
    "regret": ("regret", "auto's time over the fastest backend's on each regret cell, one "
                         "thread, CPU time"),
    "busy": ("rounds_busy", "per-call time of a pipeline beside a CPU-bound competitor, and "
                            "quiet"),
    "first-calls": ("first_calls", "first calls at new shapes in fresh processes, against "
                                   "SciPy's fftconvolve"),
    "peak-memory": ("peak_memory", "peak RSS rise of one convolve2d call, against SciPy"),
    "nn": ("bench_nn", "convcore.nn's layers against torch and an einsum"),
    "dask": ("bench_dask", "convcore.dask against dask-image and map_overlap on a local "
                           "cluster"),
    "dask-scaling": ("dask_scaling", "convcore.dask's time against workers and chunk size "
                                     "(a plot)"),
}


def epilog():
    """The subcommands' lines for ``convcore bench --help``."""
    width = max(map(len, SUBCOMMANDS))
    return "subcommands (convcore bench NAME --help):\n" + "\n".join(
        f"  {name:<{width}}  {line}" for name, (_, line) in SUBCOMMANDS.items())


def run(name, argv):
    """Run subcommand `name` with `argv`; return its exit code."""
    module = importlib.import_module(f"convcore.benchmarks.{SUBCOMMANDS[name][0]}")
    return module.main(argv, prog=f"convcore bench {name}") or 0
