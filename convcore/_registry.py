"""The backend registry: built-ins by module path, third parties by entry point.

Nothing here imports a backend at ``import convcore``. Built-ins are listed as
``"module:attribute"`` strings and imported on first lookup; third-party backends come from the
entry-point group ``convcore.backends`` (``name = "pkg.module:backend_object"``), scanned once,
on the first lookup that needs them.
"""

import importlib
import threading
from importlib import metadata

ENTRY_POINT_GROUP = "convcore.backends"

# Built-in backends, in the order `list_backends()` shows them. A module missing from this
# build (not yet written, or its extension failed to compile) is reported, not fatal.
BUILTIN_BACKENDS = {
    "naive": "convcore.backends.naive:backend",
    "openmp": "convcore.backends.openmp:backend",
    "separable": "convcore.backends.separable:backend",
    "fft": "convcore.backends.fft:backend",
    "im2col": "convcore.backends.im2col:backend",
}


class Backend:
    """Base class for backends (the protocol of DESIGN.md, with defaults).

    Subclasses set ``name`` and implement ``supports``, ``cost`` and ``run``.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"naive"``.
    kind : {'direct', 'fft'}
        What ``method=`` maps to.
    spreads_nonfinite : bool
        True when a NaN or inf anywhere in the input may spread over the whole result (FFT).
    """

    name = None
    kind = "direct"
    spreads_nonfinite = False

    def supports(self, problem):
        """Return True, or a string saying why this backend cannot run `problem`."""
        raise NotImplementedError

    def cost(self, problem):
        """Predicted seconds for `problem` on this machine."""
        raise NotImplementedError

    def workspace(self, problem):
        """Bytes of scratch memory `run` allocates beyond the result."""
        return 0

    def run(self, x, k, problem, out):
        """Fill `out` (C-contiguous, ``problem.out_shape``, ``problem.dtype``)."""
        raise NotImplementedError

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
    for attribute in ("name", "supports", "cost", "run"):
        if not hasattr(obj, attribute):
            raise TypeError(f"backend from {origin} lacks {attribute!r} (see convcore.Backend)")
    if not isinstance(obj.name, str) or not obj.name:
        raise TypeError(f"backend from {origin} must have a non-empty str name")


def register_backend(backend, *, replace=False):
    """Register a backend object under ``backend.name``.

    Parameters
    ----------
    backend : Backend
        An object with ``name``, ``supports``, ``cost`` and ``run`` (and optionally
        ``kind``, ``workspace``, ``spreads_nonfinite``).
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
    from . import _dispatch

    _dispatch.clear_plan_cache()


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
