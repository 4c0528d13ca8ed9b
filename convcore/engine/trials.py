"""Auto's trials: where the cost models may be wrong for this machine, time the candidates.

Three kinds (docs/design.md, "The fast path"): a signal signature whose steady-state plan
names another backend than its first call's, or whose runner-up is predicted within
SIGNAL_TRIAL_RATIO of the steady choice (both held by ``engine.calls._Call``), and a layer
whose runner-up is predicted within LAYER_TRIAL_RATIO of auto's choice (``LayerTrial``, held
by ``engine.calls.run_layer``). Each candidate answers TRIAL_CALLS calls in turn, the model's
choice first; the first of each is not timed (it pays for preparing), and the least of the
others counts (one burst of another process's work does not decide). The model's choice keeps
the problem unless it was over TRIAL_MARGIN times slower.
"""

import threading
import time

from convcore.engine import dispatch as _dispatch

TRIAL_CALLS = 3
TRIAL_MARGIN = 1.1
# A signal signature's runner-up predicted within this factor of auto's steady choice is
# tried against it: that close, the models' errors decide. 1-D, 1e4 samples, k = 256,
# float64, AVX2 build on a Xeon: openmp predicted 134 us and ran 175, fft (in the geometry
# its first call chose) predicted 170 us and ran 143: 1.27x apart predicted, 0.82x measured.
SIGNAL_TRIAL_RATIO = 1.5


def clock():
    """Seconds, for timing trial calls (tests replace ``_clock``)."""
    return _clock()


_clock = time.perf_counter


class Turns:
    """Whose turn each call of a trial is, and each candidate's best time.

    Candidate 0 (the model's choice) answers the first TRIAL_CALLS calls, candidate 1 the
    next TRIAL_CALLS; all calls after those are the verdict's. Not thread-safe: the trial
    holding it takes its lock around ``next`` and ``record``.
    """

    def __init__(self):
        self.calls = 0
        self.recorded = 0
        self.best = [None, None]

    def next(self):
        """(candidate, timed) for the next call, or (None, False) once every trial call has
        been handed out."""
        call, self.calls = self.calls, self.calls + 1
        if call >= 2 * TRIAL_CALLS:
            return None, False
        turn, index = divmod(call, TRIAL_CALLS)
        return turn, index > 0

    def record(self, turn, seconds):
        """Keep a timed call; True when it was the last one the trial waits for."""
        best = self.best[turn]
        self.best[turn] = seconds if best is None else min(best, seconds)
        self.recorded += 1
        return self.recorded == 2 * (TRIAL_CALLS - 1)

    def switch(self):
        """Whether candidate 1 wins: candidate 0 took over TRIAL_MARGIN times as long."""
        return self.best[0] > TRIAL_MARGIN * self.best[1]

# A layer's runner-up predicted within this factor of auto's choice is tried against it.
LAYER_TRIAL_RATIO = 2.0


def layer_trial(plan):
    """The plan's LayerTrial (running or decided), or None: no close runner-up."""
    trial = plan.trial
    if trial is None:
        with _trial_lock:
            if plan.trial is None:
                plan.trial = _new_layer_trial(plan)
            trial = plan.trial
    return trial or None


def _new_layer_trial(plan):
    runner_up = plan.runner_up(LAYER_TRIAL_RATIO)
    if runner_up is None:
        return False
    return LayerTrial(plan, _dispatch.plan(plan.problem, runner_up.backend.name, "auto",
                                           plan.ctx))


_trial_lock = threading.Lock()


class LayerTrial:
    """Auto's first calls of a layer whose runner-up the cost models predict within
    LAYER_TRIAL_RATIO of its choice, in ``Turns`` (module docstring); then ``winner`` runs
    every call, and ``verdict`` says why for ``explain_conv2d``."""

    def __init__(self, chosen, runner_up):
        self.plans = (chosen, runner_up)
        self.turns = Turns()
        self.verdict = None
        self.winner = None
        self._lock = threading.Lock()

    def run(self, operands, results):
        """Run one call on the plan its turn names; past the trial, on the winner."""
        with self._lock:
            turn, timed = (None, False) if self.winner is not None else self.turns.next()
        if turn is None:
            # Decided (or another thread's last trial call is still timing): the choice.
            (self.winner or self.plans[0]).runner(*operands, *results)
            return
        runner = self.plans[turn].runner   # prepared outside the timing
        start = clock()
        runner(*operands, *results)
        seconds = clock() - start
        if timed:
            with self._lock:
                if self.turns.record(turn, seconds):
                    self._decide()

    def describe(self):
        """A line for ``explain_conv2d``: the trial's plan, or how it went."""
        if self.verdict is not None:
            return self.verdict
        chosen, other = (plan.backend.name for plan in self.plans)
        return (f"{other} is predicted within {LAYER_TRIAL_RATIO:g}x of {chosen}; "
                f"each runs {TRIAL_CALLS} of this layer's first calls, and {other} keeps it "
                f"if {chosen} is over {TRIAL_MARGIN:g}x slower (the two answer in different "
                f"last bits)")

    def _decide(self):
        chosen, other = self.turns.best
        names = [plan.backend.name for plan in self.plans]
        switch = self.turns.switch()
        self.winner = self.plans[1] if switch else self.plans[0]
        self.verdict = (f"measured on this layer's first calls: {names[0]} "
                        f"{_dispatch._format_seconds(chosen)}, {names[1]} "
                        f"{_dispatch._format_seconds(other)}: {self.winner.backend.name} runs "
                        f"it" + (" (the prediction was wrong here)" if switch else ""))
