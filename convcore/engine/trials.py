"""Auto's trials: where the cost models may be wrong for this machine, time the candidates.

Two kinds (docs/design.md, "The fast path"): a signal signature whose steady-state plan names
another backend than its first call's (held by ``engine.calls._Call``), and a layer whose
runner-up is predicted within LAYER_TRIAL_RATIO of auto's choice (``LayerTrial``, held by
``engine.calls.run_layer``). Each candidate answers TRIAL_CALLS calls, the last one timed
(the first pays for preparing), and the model's choice keeps the problem unless it was over
TRIAL_MARGIN times slower.
"""

import threading
import time

from convcore.engine import dispatch as _dispatch

TRIAL_CALLS = 2
TRIAL_MARGIN = 1.1


def clock():
    """Seconds, for timing trial calls (tests replace ``_clock``)."""
    return _clock()


_clock = time.perf_counter

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
    for name, cost, why in plan.alternatives:
        if why is None and name != plan.backend.name:
            if cost <= LAYER_TRIAL_RATIO * plan.cost:
                return LayerTrial(plan, _dispatch.plan(plan.problem, name, "auto", plan.ctx))
            break
    return False


_trial_lock = threading.Lock()


class LayerTrial:
    """Auto's first calls of a layer whose runner-up the cost models predict within
    LAYER_TRIAL_RATIO of its choice: the choice answers TRIAL_CALLS calls, the runner-up
    the next TRIAL_CALLS (the last of each timed: the first pays for preparing), and the
    runner-up keeps the layer only if the choice took over TRIAL_MARGIN times as long
    (docs/design.md, "The fast path"). Then ``winner`` runs every call, and ``verdict``
    says why for ``explain_conv2d``."""

    def __init__(self, chosen, runner_up):
        self.plans = (chosen, runner_up)
        self.seconds = [None, None]
        self.calls = 0
        self.verdict = None
        self.winner = None
        self._lock = threading.Lock()

    def run(self, operands, results):
        """Run one call on the plan its turn names; past the trial, on the winner."""
        with self._lock:
            call, self.calls = self.calls, self.calls + 1
        if self.winner is not None or call >= 2 * TRIAL_CALLS:
            # Decided (or another thread's last trial call is still timing): the choice.
            (self.winner or self.plans[0]).runner(*operands, *results)
            return
        which = call // TRIAL_CALLS
        runner = self.plans[which].runner   # prepared outside the timing
        start = clock()
        runner(*operands, *results)
        seconds = clock() - start
        if call % TRIAL_CALLS == TRIAL_CALLS - 1:
            with self._lock:
                self.seconds[which] = seconds
                if which == 1 and self.seconds[0] is not None:
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
        chosen, other = self.seconds
        names = [plan.backend.name for plan in self.plans]
        switch = chosen > TRIAL_MARGIN * other
        self.winner = self.plans[1] if switch else self.plans[0]
        self.verdict = (f"measured on this layer's first calls: {names[0]} "
                        f"{_dispatch._format_seconds(chosen)}, {names[1]} "
                        f"{_dispatch._format_seconds(other)}: {self.winner.backend.name} runs "
                        f"it" + (" (the prediction was wrong here)" if switch else ""))
