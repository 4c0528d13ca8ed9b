"""The result cache: freed large results lend their memory to the next result of their size.

Why and how: ``convcore/_cy/result_pool.pyx``. This module holds the setting: at most
``CONVCORE_RESULT_CACHE`` bytes (environment, e.g. ``512M``; default 1/32 of the RAM, at most
1 GiB) stay idle, in blocks of 4 MiB and more; ``set_result_cache(0)`` turns it off.
"""

import os

from convcore._cy import result_pool
from convcore.runtime.options import _parse_bytes, _physical_memory, check_bytes

MIN_BLOCK = 4 << 20
# Results of this size and more come from the pool, placed in their page (result_pool.pyx).
PLACE_MIN = result_pool.PLACE_MIN

empty = result_pool.empty


def _initial_cap():
    raw = os.environ.get("CONVCORE_RESULT_CACHE")
    if raw:
        return check_bytes(_parse_bytes(raw, "CONVCORE_RESULT_CACHE"), "CONVCORE_RESULT_CACHE",
                           allow_zero=True)
    return min(1 << 30, _physical_memory() // 32)


def set_result_cache(max_bytes):
    """Set how many bytes of freed results convcore keeps for reuse; return the old value.

    A result of tens of megabytes costs more to obtain fresh from the operating system (the
    kernel zeroes each page on first touch) than many convolutions take to fill it; when a
    result is dropped, convcore keeps its memory (blocks of 4 MiB and more, at most eight)
    and gives it to the next result of exactly that size. The idle blocks are not counted
    against ``max_memory``, which budgets one call's result and workspace.

    Parameters
    ----------
    max_bytes : int
        Idle bytes kept at most; 0 turns the cache off and frees what it holds.

    Returns
    -------
    int
        The previous limit.
    """
    max_bytes = check_bytes(max_bytes, "max_bytes", allow_zero=True)
    previous = result_pool.info()["cap"]
    result_pool.set_limits(max_bytes, MIN_BLOCK)
    return previous


def result_cache_info():
    """Return the result cache's state: idle bytes and blocks, reuses so far, and its limit.

    Returns
    -------
    dict
        ``idle_bytes``, ``idle_blocks``, ``reused`` (results served from the cache since the
        process started), ``cap`` (the limit in bytes) and ``min_block``.
    """
    return result_pool.info()


result_pool.set_limits(_initial_cap(), MIN_BLOCK)
