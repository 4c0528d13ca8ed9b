"""The backend registry: built-ins by module path, third parties by entry point.

Nothing here imports a backend at ``import convcore``. Built-ins are listed as
``"module:attribute"`` strings and imported on first lookup; third-party backends come from the
entry-point group ``convcore.backends`` (``name = "pkg.module:backend_object"``), scanned once,
on the first lookup that needs them.
"""

import importlib
import threading
from importlib import metadata

from convcore.runtime.invalidation import settings_changed

ENTRY_POINT_GROUP = "convcore.backends"

# Built-in backends, in the order `list_backends()` shows them. A module missing from this
# build (not yet written, or its extension failed to compile) is reported, not fatal.
BUILTIN_BACKENDS = {
    "naive": "convcore.backends.naive:backend",
    "openmp": "convcore.backends.openmp:backend",
    "separable": "convcore.backends.separable:backend",
    "fft": "convcore.backends.fft:backend",
    "im2col": "convcore.backends.im2col:backend",
    "winograd": "convcore.backends.winograd:backend",
}


class Backend:
    """Base class for backends: the contract of docs/design.md, with defaults.

    The engine asks four questions, each with the problem and the call's :class:`Context`
    passed explicitly (a backend reads no global setting):

    - ``supports(problem, ctx)``: True, or a string saying why not (it reaches the user);
    - ``cost(problem, ctx)``: predicted seconds on this machine;
    - ``workspace(problem, ctx)``: bytes its runner allocates beyond the result;
    - ``prepare(problem, ctx)``: a *runner*, ``runner(x, k, out)``, holding everything calls
      of this problem can reuse (taps layout, boundary tables, plans, scratch sizes). The
      engine prepares once per plan and calls the runner for every call with that signature,
      from any number of Python threads at once.

    ``problem.kind`` tells a signal convolution ("signal", :class:`ConvProblem`) from a CNN
    layer ("layer", :class:`LayerProblem`). Subclasses set ``name`` and implement the four.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"naive"``.
    kind : {'direct', 'fft'}
        What ``method=`` maps to.
    spreads_nonfinite : bool
        True when a NaN or inf anywhere in the input may spread over the whole result (FFT).
    reads_kernel_values : bool
        True when ``supports`` or ``cost`` depend on the kernel's values, not only its shape
        (separable: the rank). Such a backend is asked first about the problem without values
        (``problem.kernel is None``) and must answer for the best case (e.g. rank 1); only if
        that could win does the engine hash the kernel and ask again with
        ``problem.with_kernel(k)``.
    """

    name = None
    kind = "direct"
    spreads_nonfinite = False
    reads_kernel_values = False

    def supports(self, problem, ctx):
        """Return True, or a string saying why this backend cannot run `problem`."""
        raise NotImplementedError

    def cost(self, problem, ctx):
        """Predicted seconds for `problem` on this machine."""
        raise NotImplementedError

    def workspace(self, problem, ctx):
        """Bytes of scratch memory the runner allocates beyond the result."""
        return 0

    def prepare(self, problem, ctx):
        """Return ``runner(x, k, out)``, which fills `out` (C-contiguous,
        ``problem.out_shape``, ``problem.dtype``) from `x` and `k` (C-contiguous, compute
        dtype, as the engine hands them)."""
        raise NotImplementedError

    def calibrate(self, ctx, timer):
        """Measure this backend on this machine and fit its cost model's constants.

        Called by ``convcore.calibrate()`` (docs/design.md, "Calibration"). `ctx` is a context
        with every thread of the machine; `timer` (a ``convcore.cli.calibrate.Timer``) builds
        problems, times the prepared runner (idle gap, warm-up, median) and fits one constant
        at a time so that ``cost()`` predicts what was measured. Returns ``{name: value}`` for
        the constants the backend declared with ``convcore.engine.calibration.calibrated_constants``;
        the default (this one) has nothing to calibrate.
        """
        return {}

    def build_config(self):
        """What this backend's build chose for the target (its register blocking), as a
        dict for ``show_config``; empty when there is nothing to say."""
        return {}

    def check_options(self, options, known=()):
        """Refuse backend_options this backend does not know, naming the key."""
        unknown = sorted(set(options) - set(known))
        if unknown:
            allowed = ", ".join(repr(k) for k in known) or "none"
            raise ValueError(f"backend_options: {self.name!r} does not take {unknown[0]!r} "
                             f"(it takes: {allowed})")

    def __repr__(self):
        return f"<convcore backend {self.name!r} ({self.kind})>"


_lock = threading.RLock()
_backends = {}            # name -> backend object, once loaded
_sources = {}             # name -> "module:attr" not yet loaded
_load_errors = {}         # name -> why it could not be loaded
_entry_points_scanned = False


def _init_builtins():
    if not _sources and not _backends:
        _sources.update(BUILTIN_BACKENDS)


def _check_backend(obj, origin):
    for attribute in ("name", "supports", "cost", "prepare"):
        if not hasattr(obj, attribute):
            raise TypeError(f"backend from {origin} lacks {attribute!r} (see convcore.Backend)")
    if not isinstance(obj.name, str) or not obj.name:
        raise TypeError(f"backend from {origin} must have a non-empty str name")


def register_backend(backend, *, replace=False):
    """Register a backend object under ``backend.name``.

    Parameters
    ----------
    backend : Backend
        An object with ``name``, ``supports``, ``cost`` and ``prepare`` (and optionally
        ``kind``, ``workspace``, ``spreads_nonfinite``, ``reads_kernel_values``): see
        :class:`Backend`.
    replace : bool
        Allow replacing a backend of the same name (never silently).

    Raises
    ------
    ValueError
        If a backend of that name is already registered and `replace` is False.
    """
    _check_backend(backend, repr(backend))
    with _lock:
        _init_builtins()
        name = backend.name
        if not replace and (name in _backends or name in _sources):
            raise ValueError(f"backend: a backend named {name!r} is already registered; "
                             "pass replace=True to replace it")
        _sources.pop(name, None)
        _load_errors.pop(name, None)
        _backends[name] = backend
    _clear_plans()


def unregister_backend(name):
    """Remove a registered backend (mainly for tests and plugin authors)."""
    with _lock:
        _backends.pop(name, None)
        _sources.pop(name, None)
        _load_errors.pop(name, None)
    _clear_plans()


def _clear_plans():
    settings_changed()


def _scan_entry_points():
    global _entry_points_scanned
    if _entry_points_scanned:
        return
    _entry_points_scanned = True
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _backends or entry.name in _sources:
            _load_errors.setdefault(
                entry.name + " (entry point)",
                f"entry point {entry.value!r} ignored: a backend named {entry.name!r} exists")
            continue
        _sources[entry.name] = entry.value


def _load(name):
    source = _sources.pop(name)
    module_name, _, attribute = source.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attribute)
        _check_backend(obj, source)
        if obj.name != name:
            raise TypeError(f"{source} is named {obj.name!r}, registered as {name!r}")
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            _load_errors[name] = f"not built: {module_name} is not installed"
        else:
            _load_errors[name] = f"{type(err).__name__}: {err}"
        return None
    except Exception as err:  # a broken plugin must not break convcore
        _load_errors[name] = f"{type(err).__name__}: {err}"
        return None
    _backends[name] = obj
    return obj


def get_backend(name):
    """Return the backend registered as `name`, loading it on first use.

    Raises
    ------
    ValueError
        If no backend of that name exists (the message lists the available ones).
    """
    backend = _backends.get(name)
    if backend is not None:
        return backend
    if not isinstance(name, str):
        raise TypeError(f"backend must be a str, got {type(name).__name__}")
    with _lock:
        _init_builtins()
        if name not in _backends and name not in _sources:
            _scan_entry_points()
        if name in _sources:
            _load(name)
        backend = _backends.get(name)
    if backend is None:
        reason = _load_errors.get(name)
        available = ", ".join(repr(n) for n in list_backends())
        detail = f" ({reason})" if reason else ""
        raise ValueError(f"backend must be 'auto' or one of {available}; got {name!r}{detail}")
    return backend


def list_backends():
    """Names of every backend that loads in this installation, built-ins first.

    Returns
    -------
    list of str
    """
    with _lock:
        _init_builtins()
        _scan_entry_points()
        for name in list(_sources):
            _load(name)
        order = [n for n in BUILTIN_BACKENDS if n in _backends]
        return order + sorted(n for n in _backends if n not in BUILTIN_BACKENDS)


def all_backends():
    """The loaded backend objects, in ``list_backends()`` order."""
    return [_backends[name] for name in list_backends()]


def load_errors():
    """Why some backends are not available: ``{name: reason}``."""
    list_backends()
    return dict(_load_errors)
