"""convcore's benchmark suite (pytest-benchmark), installed as ``convcore.benchmarks``.

``grid.py`` defines the problems, ``contenders.py`` who runs on them, ``timing.py`` how a row
is timed, ``bench_grid.py`` the one test that times every (problem, row), ``conftest.py`` the
report, ``ab_worker.py`` the process the A/B comparison runs. Shipping the suite inside the
package lets ``convcore bench`` find it after a plain ``pip install .``.
"""
