"""Process-wide engine options: ``max_memory`` and ``plan``.

Each API call may pass them as keywords; otherwise the values set here (or by the
``CONVCORE_MAX_MEMORY`` environment variable) apply.
"""

import contextlib
import os
import threading

PLAN_EFFORTS = ("estimate", "measure")

_lock = threading.Lock()
_local = threading.local()
_defaults = {}


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _initial_defaults():
    raw = os.environ.get("CONVCORE_MAX_MEMORY")
    if raw:
        max_memory = check_max_memory(_parse_bytes(raw), "CONVCORE_MAX_MEMORY")
    else:
        max_memory = _physical_memory() // 4
    return {"max_memory": max_memory, "plan": "estimate"}


def _parse_bytes(raw, name="CONVCORE_MAX_MEMORY"):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = raw.strip().lower().rstrip("b").rstrip("i")
    scale = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(float(number) * scale)
    except ValueError:
        raise ValueError(f"{name} must be a number of bytes such as 4G, got {raw!r}") from None


def check_bytes(value, name, allow_zero=False):
    """A byte count as an int: TypeError unless int-like, ValueError below 1 (or below 0)."""
    kind = "non-negative" if allow_zero else "positive"
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be a {kind} int (bytes), got {type(value).__name__}")
    value = int(value)
    if value < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be a {kind} number of bytes, got {value}")
    return value


def check_max_memory(value, name="max_memory"):
    return check_bytes(value, name)


def check_plan(value):
    if value not in PLAN_EFFORTS:
        raise ValueError(f"plan must be 'estimate' or 'measure', got {value!r}")
    return value


_CHECKS = {"max_memory": check_max_memory, "plan": check_plan}


def _check_all(options):
    unknown = set(options) - set(_CHECKS)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; known: {sorted(_CHECKS)}")
    return {name: _CHECKS[name](value) for name, value in options.items() if value is not None}


def get_options():
    """Return the options in force in this thread, as a dict.

    Returns
    -------
    dict
        ``{"max_memory": bytes, "plan": "estimate" | "measure"}``
    """
    if not _defaults:
        with _lock:
            if not _defaults:
                _defaults.update(_initial_defaults())
    merged = dict(_defaults)
    merged.update(getattr(_local, "override", None) or {})
    return merged


def current(max_memory=None, plan=None):
    """(max_memory, plan) for one call: the call's own values (checked) or those in force.

    The engine reads the settings here once per call and passes them on in a
    :class:`~convcore.Context`; backends never call this.
    """
    override = getattr(_local, "override", None)
    if max_memory is None and plan is None and override is None and _defaults:
        return _defaults["max_memory"], _defaults["plan"]
    if max_memory is not None:
        max_memory = check_max_memory(max_memory)
    if plan is not None:
        check_plan(plan)
    if max_memory is None or plan is None:
        if not _defaults:
            get_options()
        if max_memory is None:
            max_memory = override.get("max_memory", _defaults["max_memory"]) if override \
                else _defaults["max_memory"]
        if plan is None:
            plan = override.get("plan", _defaults["plan"]) if override else _defaults["plan"]
    return max_memory, plan


def get_option(name):
    override = getattr(_local, "override", None)
    if override and name in override:
        return override[name]
    return get_options()[name]


def set_options(**options):
    """Set process-wide defaults for engine options.

    Parameters
    ----------
    max_memory : int, optional
        Bytes a single call may allocate (result plus workspace). Default: a quarter of
        physical memory, or ``CONVCORE_MAX_MEMORY``.
    plan : {'estimate', 'measure'}, optional
        Planner effort for backends that plan (FFT).

    Examples
    --------
    >>> import convcore
    >>> convcore.set_options(plan="estimate")
    """
    checked = _check_all(options)
    get_options()
    with _lock:
        _defaults.update(checked)


@contextlib.contextmanager
def options(**options):
    """Set engine options inside a ``with`` block (calling Python thread only).

    Examples
    --------
    >>> import convcore, numpy as np
    >>> with convcore.options(max_memory=1 << 20):
    ...     convcore.get_options()["max_memory"]
    1048576
    """
    checked = _check_all(options)
    previous = getattr(_local, "override", None)
    merged = dict(previous or {})
    merged.update(checked)
    _local.override = merged
    try:
        yield get_options()
    finally:
        _local.override = previous
