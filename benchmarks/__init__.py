"""convcore's benchmark suite (pytest-benchmark), installed as ``convcore.benchmarks``.

``grid.py`` defines the problems, ``contenders.py`` who runs on them, ``timing.py`` how a row
is timed (the one timing module: everything here uses it), ``bench_grid.py`` the one test that
times every (problem, row), ``conftest.py`` the report, ``ab_worker.py`` the process the A/B
comparison runs. The measurements that are not rows of the grid are modules whose ``main`` is
a ``convcore bench`` subcommand (``convcore/cli/bench/subcommands.py``): ``rounds.py``
(``rounds``), ``rounds_busy.py`` (``busy``), ``first_calls.py``, ``peak_memory.py``,
``bench_nn.py`` (``nn``), ``bench_dask.py`` (``dask``) and ``dask_scaling.py``; ``stamp.py``
is the machine-and-commit line each prints. Shipping the suite inside the package lets
``convcore bench`` find it after a plain ``pip install .`` (docs/benchmarks.md).
"""
