"""The thread budget and the "how many threads now" decision (convcore/runtime/contention.py).

No timing here: the CPU signal reads a /proc/stat stand-in written by the test, the clocks
are fakes, and the stall rule is fed the times it is to judge.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

import convcore
from convcore.runtime import contention as _contention
from convcore.runtime import team_history as _history
from convcore.runtime.tables import BoundedTable
from convcore.runtime import threads as _threads


@pytest.fixture
def fresh(monkeypatch):
    """A clean decision state, restored afterwards; dispatch cost fixed at 20 us."""
    monkeypatch.setattr(_contention, "_state", dict(_contention._state, budget=None,
                                                   dispatch=20e-6, adaptive=True,
                                                   stalled_until=0.0, strikes=0,
                                                   last_end=-math.inf, warm_from=-math.inf,
                                                   peak=(0.0, -math.inf)))
    monkeypatch.setattr(_contention, "_best", BoundedTable(1024))
    monkeypatch.setattr(_history, "_lately", BoundedTable(1024))
    return monkeypatch


class FakeStat:
    """A /proc/stat stand-in: busy ticks per CPU, rewritten as the test advances time."""

    def __init__(self, path, cpus=(0, 1)):
        self.path, self.cpus, self.busy, self.now, self.own = path, cpus, 0, 100.0, 0.0
        self.write()

    def write(self):
        lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
        for c in self.cpus:
            # user nice system idle iowait irq softirq steal guest guest_nice
            lines.append(f"cpu{c} {self.busy} 0 0 999999 7 0 0 0 0 0")
        lines.append("intr 1 2 3")
        self.path.write_text("\n".join(lines) + "\n")

    def advance(self, seconds, busy_cores, own_cores):
        """`seconds` pass while others use `busy_cores` and we use `own_cores`."""
        tick = 1.0 / os.sysconf("SC_CLK_TCK")
        per_cpu = (busy_cores + own_cores) * seconds / len(self.cpus)
        self.busy += round(per_cpu / tick)
        self.now += seconds
        self.own += own_cores * seconds
        self.write()

    def signal(self):
        return _contention.CpuSignal(self.cpus, stat_path=str(self.path),
                                     own_seconds=lambda: self.own, clock=lambda: self.now)


def two_cores_watched(fresh, tmp_path):
    """A fake /proc/stat as the process's CPU signal and clock, on a 2-core budget."""
    stat = FakeStat(tmp_path / "stat")
    signal = stat.signal()
    signal.others()
    fresh.setattr(_contention, "_signal", signal)
    fresh.setattr(_contention, "_now", lambda: stat.now)
    fresh.setitem(_contention._state, "budget", 2)
    return stat, signal


# --- the machine's share -----------------------------------------------------------------

@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "150000 100000\n"}, 2),
    ({"cpu.max": "50000 100000\n"}, 1),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_quota_is_read(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _contention._cgroup_cpus(str(tmp_path)) == expected


def test_budget_is_the_smaller_of_affinity_and_quota(fresh):
    fresh.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    fresh.setattr(_contention, "_cgroup_cpus", lambda: 3)
    assert _contention.cpu_budget() == 3
    fresh.setitem(_contention._state, "budget", None)
    fresh.setattr(_contention, "_cgroup_cpus", lambda: None)
    assert _contention.cpu_budget() == 4
    fresh.setitem(_contention._state, "budget", None)
    fresh.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)
    assert _contention.cpu_budget() == 1
    assert _contention.team_size(8, serial_seconds=10.0) == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux affinity API")
def test_default_threads_follow_the_affinity_mask():
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "import convcore; print(convcore.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "CONVCORE_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "1"


# --- is another thread worth it ----------------------------------------------------------------

def test_worth_weighs_work_against_dispatch(fresh):
    fresh.setitem(_contention._state, "dispatch", 1e-3)
    assert _contention.worth(2, 1.9e-3) == 1      # 0.95 ms saved < 1 ms to start a thread
    assert _contention.worth(2, 2.1e-3) == 2
    assert _contention.worth(4, 11e-3) == 3       # the 4th thread saves t/12 < 1 ms
    assert _contention.worth(4, 13e-3) == 4
    assert _contention.worth(1, 1.0) == 1


def test_an_empty_region_does_not_make_a_second_thread_look_free(fresh):
    # On a quiet VM the empty region measured 1 us, and every call of more than a few
    # microseconds started a second thread (256^2 k3 float32: 113 us on two, 105 on one).
    fresh.setitem(_contention._state, "dispatch", None)
    fresh.setitem(_contention._state, "dispatch_retry", 0.0)
    fresh.setattr(_contention, "_signal", None)
    fresh.setattr(_contention, "_measure_dispatch", lambda: 1e-6)
    assert _contention.dispatch_seconds() == _contention.DEFAULT_DISPATCH_SECONDS
    assert _contention.worth(2, 60e-6) == 1    # 30 us saved < 40 us to start a thread
    assert _contention.worth(2, 170e-6) == 2


def test_dispatch_is_not_measured_on_a_busy_machine(fresh, tmp_path):
    fresh.setitem(_contention._state, "dispatch", None)
    stat = FakeStat(tmp_path / "stat")
    signal = stat.signal()
    signal.others()
    stat.advance(0.1, busy_cores=1.5, own_cores=0.2)
    fresh.setattr(_contention, "_signal", signal)
    fresh.setattr(_contention, "_measure_dispatch", lambda: pytest.fail("measured while busy"))
    assert _contention.dispatch_seconds() == _contention.DEFAULT_DISPATCH_SECONDS
    assert _contention._state["dispatch"] is None  # still to be measured, later


# --- the CPU signal ----------------------------------------------------------------------------

def test_cpu_signal_counts_other_processes_only(tmp_path):
    stat = FakeStat(tmp_path / "stat")
    signal = stat.signal()
    assert signal.others() is None                 # the first read only starts the interval
    stat.advance(0.3, busy_cores=1.0, own_cores=0.8)
    assert signal.others() == pytest.approx(1.0, abs=0.1)
    stat.advance(0.1, busy_cores=0.0, own_cores=0.0)
    assert signal.others() == pytest.approx(1.0, abs=0.1)  # within the period: not re-read
    stat.advance(0.2, busy_cores=0.0, own_cores=1.0)
    assert signal.others() == pytest.approx(0.0, abs=0.15)  # the last interval was quiet


def test_cpu_signal_watches_only_the_affinity_cpus(tmp_path):
    stat = FakeStat(tmp_path / "stat", cpus=(0, 1, 2, 3))
    signal = _contention.CpuSignal([7], stat_path=str(stat.path), own_seconds=lambda: 0.0,
                                   clock=lambda: stat.now)
    assert signal.others() is None                 # no cpu7 line: unreadable, not zero


def test_team_follows_the_cores_others_leave(fresh, tmp_path):
    stat, signal = two_cores_watched(fresh, tmp_path)
    stat.advance(0.3, busy_cores=0.05, own_cores=1.0)
    assert _contention.team_size(2, serial_seconds=1.0) == 2
    stat.advance(0.3, busy_cores=1.0, own_cores=1.0)   # one competitor on two cores
    assert _contention.team_size(2, serial_seconds=1.0) == 1
    _contention.set_adaptive(False)
    try:
        assert _contention.team_size(2, serial_seconds=1.0) == 2
    finally:
        _contention.set_adaptive(True)
    stat.advance(0.3, busy_cores=0.0, own_cores=0.5)   # the competitor left ...
    assert _contention.team_size(2, serial_seconds=1.0) == 1  # ... but may be back soon
    for _ in range(12):                                 # a calm second later: two threads
        stat.advance(0.1, busy_cores=0.0, own_cores=0.5)
        last = _contention.team_size(2, serial_seconds=1.0)
    assert last == 2


def test_unreadable_signal_leaves_the_full_team(fresh):
    fresh.setattr(_contention, "_signal", None)
    fresh.setitem(_contention._state, "budget", 2)
    assert _contention.team_size(2, serial_seconds=1.0) == 2
    assert _contention.team_size(2, serial_seconds=1e-6) == 1  # too little work all the same


# --- the stall rule ----------------------------------------------------------------------------

def test_a_stalled_call_makes_later_calls_serial(fresh):
    fresh.setattr(_contention, "_signal", None)
    fresh.setattr(_contention, "_now", lambda: 50.0)
    fresh.setitem(_contention._state, "budget", 2)
    fresh.setitem(_contention._state, "last_end", 50.0)  # calls back to back, no idle gap
    key = ("some work",)
    _contention.observe(key, 2, 1.0e-3)
    _contention.observe(key, 2, 1.4e-3)           # noise: not a stall
    _contention.observe(key, 1, 50e-3)            # one thread cannot be held up by a team
    assert _contention.team_size(2, serial_seconds=1.0) == 2
    _contention.observe(key, 2, 9.0e-3)           # one slow call: a thread woken after idle
    assert _contention.team_size(2, serial_seconds=1.0) == 2
    _contention.observe(key, 2, 1.1e-3)           # ... and the next is fine again
    _contention.observe(key, 2, 9.0e-3)
    assert _contention.team_size(2, serial_seconds=1.0) == 2
    _contention.observe(key, 2, 9.0e-3)           # twice in a row: waiting for time slices
    assert _contention.team_size(2, serial_seconds=1.0) == 1
    assert _contention.reading()["stalled_for"] > 0
    fresh.setitem(_contention._state, "stalled_until", 0.0)  # the hold is over: probe again
    assert _contention.team_size(2, serial_seconds=1.0) == 2


def test_slow_calls_right_after_an_idle_gap_are_not_stalls(fresh):
    clock = {"now": 10.0}
    fresh.setattr(_contention, "_signal", None)
    fresh.setattr(_contention, "_now", lambda: clock["now"])
    fresh.setitem(_contention._state, "budget", 2)
    fresh.setitem(_contention._state, "last_end", clock["now"])  # a pipeline under way
    key = ("some work",)

    def call(seconds, gap=1e-3):
        clock["now"] += gap + seconds
        _contention.observe(key, 2, seconds)

    for _ in range(3):
        call(1e-3)
    clock["now"] += 1.0                       # a second without calls: the VM idles
    for _ in range(5):
        call(6e-3)                            # its threads wake slowly for a while
    assert _contention.team_size(2, serial_seconds=1.0) == 2
    clock["now"] += _contention.WARM_SECONDS
    call(6e-3)
    call(6e-3)                                # slow twice in a row once warm: contended
    assert _contention.team_size(2, serial_seconds=1.0) == 1


# --- the team against one thread, per work key ---------------------------------------------

class Pipeline:
    """A fake clock and a key's calls: each call asks ``team_for`` for its team, "runs" for
    the time the test says a team or one thread takes now, and reports it as
    ``native_threads`` does."""

    def __init__(self, fresh, key=("depthwise",)):
        self.now, self.key, self.teams = 20.0, key, []
        fresh.setattr(_contention, "_signal", None)
        fresh.setattr(_contention, "_now", lambda: self.now)
        fresh.setitem(_contention._state, "last_end", self.now)

    def calls(self, count, team_seconds, solo_seconds, gap=1e-3):
        for _ in range(count):
            team = _history.team_for(self.key, 2)
            seconds = team_seconds if team > 1 else solo_seconds
            self.now += gap + seconds
            if _contention.observe(self.key, team, seconds):
                _history.record(self.key, team, seconds)
            self.teams.append(team)
        return self


def test_a_quiet_team_never_probes_one_thread(fresh):
    # Noise up to 1.2x the best: no call is sent to one thread to see.
    run = Pipeline(fresh)
    for seconds in (1.0e-3, 1.2e-3, 1.1e-3, 1.0e-3) * 100:
        run.calls(1, seconds, solo_seconds=1.6e-3)
    assert set(run.teams) == {2}


def test_one_thread_takes_over_while_the_team_is_held_up(fresh):
    run = Pipeline(fresh).calls(20, 0.75e-3, 0.85e-3)
    assert set(run.teams) == {2}
    # A tenant holds one of the CPUs: the team waits for it, one thread would not.
    run.calls(600, 1.3e-3, 0.9e-3)                  # about a second
    late = run.teams[-590:]
    assert late.count(1) > 0.9 * len(late)
    # ... and the team is measured again now and then, not dropped for good:
    assert 2 in late
    # The tenant leaves: the next team call is fast again and the team is back.
    run.calls(400, 0.75e-3, 0.9e-3)
    assert run.teams[-100:] == [2] * 100


def test_a_probe_that_loses_leaves_the_team(fresh):
    # Two threads slower than their best, but one thread slower still: one probe per
    # LATELY_SECONDS at most, the rest on the team.
    run = Pipeline(fresh).calls(20, 1.0e-3, 2.0e-3)
    start = run.now
    run.calls(300, 1.5e-3, 2.0e-3)
    probes = run.teams[20:].count(1)
    elapsed = run.now - start
    assert 1 <= probes <= 1 + elapsed / _history.LATELY_SECONDS


def test_team_for_keeps_the_team_when_not_adaptive_or_unnamed(fresh):
    run = Pipeline(fresh).calls(20, 0.75e-3, 0.85e-3).calls(50, 1.3e-3, 0.9e-3)
    assert _history.team_for(run.key, 2) == 1
    assert _history.team_for(None, 2) == 2
    assert _history.team_for(("other work",), 2) == 2
    assert _history.team_for(run.key, 1) == 1
    _contention.set_adaptive(False)
    try:
        assert _history.team_for(run.key, 2) == 2
    finally:
        _contention.set_adaptive(True)


def test_native_threads_follows_team_for(fresh):
    run = Pipeline(fresh).calls(20, 0.75e-3, 0.85e-3).calls(50, 1.3e-3, 0.9e-3)
    with _threads.native_threads(2, key=run.key) as threads:
        assert threads == 1
    with _threads.native_threads(2, key=("other work",)) as threads:
        assert threads == min(2, _threads._budget._size)
    # A plan whose bits depend on its thread count (fft's one-transform layouts) runs its
    # team whatever: the rule must not cut it.
    with _threads.native_threads(2, key=run.key, follow_load=False) as threads:
        assert threads == min(2, _threads._budget._size)


def test_stall_rule_is_off_when_not_adaptive(fresh):
    fresh.setattr(_contention, "_signal", None)
    _contention.set_adaptive(False)
    try:
        _contention.observe("k", 2, 1e-3)
        _contention.observe("k", 2, 50e-3)
        assert _contention._state["stalled_until"] == 0.0
    finally:
        _contention.set_adaptive(True)


def test_environment_turns_the_contention_limit_off():
    code = "from convcore.runtime import contention as _contention; print(_contention.adaptive())"
    env = dict(os.environ, CONVCORE_ADAPTIVE_THREADS="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "False"


# --- the native thread budget ----------------------------------------------------------------

def test_budget_shares_threads_between_callers():
    budget = _threads._NativeThreadBudget(4)
    assert budget.acquire(3) == 3
    assert budget.acquire(3) == 1                 # what is left, not three more
    budget.release(1)
    budget.release(3)
    assert budget.acquire(8) == 8                 # alone: what it asks (a cap comes earlier)
    budget.release(8)


def test_native_threads_reports_to_the_stall_rule(fresh):
    seen = []
    fresh.setattr(_contention, "observe", lambda key, n, seconds: seen.append((key, n)))
    with _threads.native_threads(1, key="k") as n:
        assert n == 1
    with _threads.native_threads(1):
        pass
    assert seen == [("k", 1)]


# --- every backend asks the decision -----------------------------------------------------------

CASES = {
    "openmp": (np.float32, (300, 300), (7, 7), {}),
    "separable": (np.float32, (300, 300), "rank1", {}),
    "im2col": (np.float64, (300, 300), (7, 7), {}),
    "fft": (np.float64, (4000,), (301,), {"overlap_add": True}),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("contended", [False, True])
def test_backends_run_the_team_the_decision_gives(fresh, name, contended):
    dtype, x_shape, k_shape, options = CASES[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    if k_shape == "rank1":
        k = np.outer(rng.standard_normal(9), rng.standard_normal(9)).astype(dtype)
    else:
        k = rng.standard_normal(k_shape).astype(dtype)
    teams = []
    real_observe = _contention.observe
    fresh.setattr(_contention, "observe",
                  lambda key, n, seconds: (teams.append(n), real_observe(key, n, seconds)))
    fresh.setattr(_contention, "_signal", None)
    fresh.setitem(_contention._state, "stalled_until", math.inf if contended else 0.0)
    with convcore.threads(2):
        got = convcore.convolve(x, k, mode="same", backend=name, backend_options=options)
    expected = scipy.signal.convolve(x.astype(np.float64), k.astype(np.float64), mode="same",
                                     method="direct")
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    if contended:
        # openmp runs a call sized to one thread without a region or a reservation at all.
        assert set(teams) == (set() if name == "openmp" else {1})
        return
    assert teams, f"{name} ran no parallel region through the native thread budget"
    if _contention.cpu_budget() >= 2:
        assert max(teams) == 2


def test_tick_noise_of_a_quiet_machine_keeps_the_team(fresh, tmp_path):
    """/proc/stat counts 10 ms ticks: over single 50 ms intervals a quiet machine reads up to
    0.4 cores used by others; the window averages that out and the team stays whole."""
    stat, signal = two_cores_watched(fresh, tmp_path)
    teams = []
    for step in range(40):
        noise = 0.4 if step % 4 == 0 else 0.0     # one tick of somebody's every fourth read
        stat.advance(0.05, busy_cores=noise, own_cores=1.0)
        teams.append(_contention.team_size(2, serial_seconds=1.0))
    assert teams[-20:] == [2] * 20
    for _ in range(6):                               # a real competitor is still seen
        stat.advance(0.05, busy_cores=1.0, own_cores=1.0)
    assert _contention.team_size(2, serial_seconds=1.0) == 1


def test_slow_calls_with_nobody_else_running_are_not_stalls(fresh, tmp_path):
    stat, signal = two_cores_watched(fresh, tmp_path)
    fresh.setitem(_contention._state, "last_end", stat.now)
    key = ("some work",)

    def call(seconds, others):
        stat.advance(seconds + 1e-3, busy_cores=others, own_cores=1.0)
        _contention.observe(key, 2, seconds)

    stat.advance(0.3, busy_cores=0.0, own_cores=1.0)
    assert signal.others() == pytest.approx(0.0, abs=0.2)   # a first reading: nobody else
    call(1e-3, 0.0)
    call(9e-3, 0.0)
    call(9e-3, 0.0)                               # slow twice, but the machine is ours
    assert _contention._state["stalled_until"] < stat.now
    for _ in range(12):
        call(1e-3, 0.0)
    for _ in range(6):                            # a competitor arrives: the signal sees it
        stat.advance(0.05, busy_cores=1.0, own_cores=0.0)
        _contention.observe(key, 2, 1e-3)
    assert _contention.reading()["others"] > 0.5
    call(9e-3, 1.0)
    call(9e-3, 1.0)
    assert _contention._state["stalled_until"] > stat.now
