"""Per work key: has a team lately beaten one thread? (``runtime.contention``'s fourth limit.)

On a VM the other tenants leave no trace in ``/proc/stat``: when one of them holds the CPU
under a team thread, the call waits for it, and two threads can run slower than one (the
depthwise layer, 2 CPUs: 1.2-1.3 ms on two threads against 0.8-1.1 ms on one in the same
minutes) without the contention module's CPU signal or stall rule noticing (the calls were
not 2x and 1.5 ms slower than their best). So ``runtime.threads.native_threads`` records,
per work key, the times of the last ``LATELY_SAMPLES`` calls on a team and on one thread
(:func:`record`), and asks :func:`team_for` before each call. When the team's calls of the
last ``LATELY_SECONDS`` average ``LATELY_DEGRADED`` times its best, one call runs on one
thread to see (a probe); while one thread's recent mean beats the team's by
``LATELY_MARGIN`` (a one-thread time of 0.95x the team's is noise, not worth flapping over),
the work runs on one thread, with a team call again once the team's samples are older than
``LATELY_SECONDS``. On a quiet machine the team stays near its best and no probe is run;
under contention one call of each kind per ``LATELY_SECONDS`` is the price. Off with the
other contention limits (``CONVCORE_ADAPTIVE_THREADS=0``). See docs/design.md, "Threads".
"""

import collections
import math
import threading

from convcore.runtime import contention as _contention
from convcore.runtime.tables import BoundedTable

LATELY_SECONDS = 0.5
LATELY_SAMPLES = 8
LATELY_DEGRADED = 1.3
LATELY_MARGIN = 1.1

_lately = BoundedTable(1024)
_lock = threading.Lock()


class _Lately:
    """The recent calls of one work key: (end time, seconds) on a team and on one thread,
    and the team's best time."""

    __slots__ = ("team", "solo", "best")

    def __init__(self):
        self.team = collections.deque(maxlen=LATELY_SAMPLES)
        self.solo = collections.deque(maxlen=LATELY_SAMPLES)
        self.best = math.inf


def record(key, threads, seconds):
    """Remember that work `key` just took `seconds` on `threads` threads."""
    now = _contention._now()
    lately = _lately.get(key)
    if lately is None:
        lately = _Lately()
        _lately.put(key, lately)
    with _lock:
        if threads > 1:
            lately.team.append((now, seconds))
            lately.best = min(lately.best, seconds)
        else:
            lately.solo.append((now, seconds))


def _recent_mean(samples, now):
    """(mean seconds, count) of the samples of the last ``LATELY_SECONDS``, or None."""
    total, count = 0.0, 0
    for when, seconds in samples:
        if now - when <= LATELY_SECONDS:
            total += seconds
            count += 1
    return (total / count, count) if count else None


def team_for(key, wanted):
    """Threads for work `key` now: `wanted`, or 1 while one thread has lately been faster.

    Work seen for the first time, or not lately, gets `wanted`; so does everything when the
    contention limits are off.

    Examples
    --------
    >>> team_for(("never seen",), 2)
    2
    """
    if wanted <= 1 or key is None or not _contention.adaptive():
        return wanted
    lately = _lately.get(key)
    if lately is None:
        return wanted
    now = _contention._now()
    with _lock:
        team = _recent_mean(lately.team, now)
        solo = _recent_mean(lately.solo, now)
        if team is None:
            return wanted  # measure the team again
        if solo is None:
            # A probe, once the team's recent calls (two at least) run well above its best.
            degraded = team[1] >= 2 and team[0] > LATELY_DEGRADED * lately.best
            return 1 if degraded else wanted
        return 1 if LATELY_MARGIN * solo[0] < team[0] else wanted
