"""The benchmark suite: every problem of the grid is one pytest-benchmark group.

Test ids read ``<profile>-<group>-<row>``: ``python -m pytest benchmarks -k quick`` runs the
quick profile, ``python -m pytest benchmarks`` the whole grid. A row that cannot run (a
library not installed, a backend that declines the problem, a grid rule) is skipped with its
reason, and the report at the end of the session lists it. Every timed result is checked
against a float64 reference. Under ``--benchmark-disable`` (and under xdist, where
pytest-benchmark disables timing) each body runs once, still checked: that is what CI runs.
"""

import pytest

from . import contenders, grid, timing

ROWS = [pytest.param(problem, row, id=f"{problem.profile}-{problem.group}-{row}")
        for problem in grid.problems(grid.FULL) for row in contenders.rows(problem)]


@pytest.mark.parametrize("problem,row", ROWS)
def test_grid(benchmark, problem, row):
    benchmark.group = problem.group
    benchmark.extra_info.update(row=row, kind=contenders.kind(row), family=problem.family,
                                profile=problem.profile, flops=problem.flops)
    with timing.row_conditions(problem):
        try:
            call = contenders.make_call(problem, row)
        except contenders.Unavailable as why:
            pytest.skip(str(why))
        if row == "auto":
            benchmark.extra_info["auto_choice"] = contenders.auto_choice(problem)
        if benchmark.disabled:
            result = benchmark(call)
        else:
            result = _timed(benchmark, problem, call)
    contenders.check(problem, result, grid.reference(problem))


def _timed(benchmark, problem, call):
    timing.idle_gap()
    seconds = timing.warm_up(call)
    if problem.family == "busy":
        # what a pipeline sees: 1 ms of Python between calls, no idle gaps, many calls
        rounds = max(30, min(200, int(1.5 / (seconds + 1e-3))))
        return benchmark.pedantic(call, setup=timing.python_work, rounds=rounds)
    rounds, iterations = timing.rounds_for(seconds, problem.profile)
    return benchmark.pedantic(call, rounds=rounds, iterations=iterations)
