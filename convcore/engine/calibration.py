"""The cost models' per-machine constants: declared by each backend, calibrated per machine.

A backend's cost model is a formula in operations times constants (seconds per multiply-add,
bytes per second, ...). Its model module declares the constants it wants measured, with the
defaults fitted on the development machine::

    machine = calibrated_constants("openmp", SECONDS_PER_LANE_MAC=SECONDS_PER_LANE_MAC, ...)

and its formulas read ``machine.SECONDS_PER_LANE_MAC``. That is this machine's value when a
valid calibration file exists (``convcore calibrate`` writes it: ``convcore/cli/calibrate.py``),
the default otherwise. The file is read once per process, on the first read of any constant
(the first ``cost()``), and the values then stay plain attributes: nothing is read per call.

The file (docs/design.md, "Calibration") lives in convcore's cache folder
(``convcore.runtime.user_cache``), one per CPU model and instruction set, and records the key it was
made for (CPU model, instruction set and registers, convcore version, build flags). A file
whose key is not this machine's and build's (stale), or that does not parse, has the wrong
schema, or holds a value that is not finite, not positive, or more than ``LIMIT`` times away
from its default (corrupt), is ignored with a :class:`CalibrationWarning`, once per process:
the defaults are used. A backend whose defaults changed since the file was written (a refitted
model) has its section ignored the same way.
"""

import contextlib
import datetime
import hashlib
import json
import math
import os
import re
import threading
import warnings

from convcore.runtime.build import VERSION, build_info, cpu_model
from convcore.runtime.invalidation import settings_changed
from convcore.runtime.user_cache import cache_dir

SCHEMA = 1
# A calibrated value this many times away from its default is not a measurement of a
# working machine (a model off by more would need fixing, not calibrating): refused.
LIMIT = 100.0
DEFAULTS_SOURCE = "defaults fitted on the development machine"
BUILD_FIELDS = ("openmp", "compile_args", "portable", "march")


class CalibrationWarning(UserWarning):
    """A calibration file was ignored (stale or corrupt): the default constants are used."""


_lock = threading.RLock()
_UNREAD = object()
_state = {"document": _UNREAD, "path": None, "problem": None, "defaults_only": False,
          "refused": {}}
_declared = {}        # backend name -> its Constants
_warned = set()       # messages already given in this process


# --------------------------------------------------------------------------- the constants

class Constants:
    """One backend's calibratable constants (see the module docstring).

    Read them as attributes (``machine.BYTES_PER_SECOND_MEMORY``). A value is a number, a
    dict of numbers (per dtype, per block shape) or a table of ``(x, y)`` pairs (a rate by
    size, interpolated), and calibrated values keep the default's shape.
    """

    def __init__(self, backend, defaults):
        for name in defaults:
            if not name.isupper():
                raise ValueError(f"calibrated constants are named in capitals, got {name!r}")
        self.__dict__["_backend"] = backend
        self.__dict__["_defaults"] = dict(defaults)
        self.__dict__["_origin"] = None

    def __getattr__(self, name):
        # Only reached before the first read (or after a reload): resolve, then plain reads.
        defaults = self.__dict__.get("_defaults", {})
        if name not in defaults:
            raise AttributeError(f"{self.__dict__.get('_backend')!r} declares no calibrated "
                                 f"constant {name!r}")
        self._resolve()
        return self.__dict__[name]

    def __setattr__(self, name, value):
        raise AttributeError("calibrated constants are read-only (convcore calibrate measures "
                             "them; Constants.trial overrides them for a fit)")

    @property
    def backend(self):
        return self._backend

    @property
    def defaults(self):
        return dict(self._defaults)

    def values(self):
        """The values in use now, by name."""
        return {name: getattr(self, name) for name in self._defaults}

    def origin(self):
        """'calibrated' or 'defaults': where the values in use came from."""
        self.values()
        return self._origin

    def _resolve(self):
        values, origin = _values_for(self._backend, self._defaults)
        self.__dict__.update(values)
        self.__dict__["_origin"] = origin

    def _forget(self):
        for name in self._defaults:
            self.__dict__.pop(name, None)

    @contextlib.contextmanager
    def trial(self, values):
        """Use `values` (some constants, by name) inside the block: what a fit tries."""
        unknown = set(values) - set(self._defaults)
        if unknown:
            raise ValueError(f"{self._backend!r} declares no calibrated constant "
                             f"{sorted(unknown)[0]!r}")
        self.values()
        saved = {name: self.__dict__[name] for name in values}
        self.__dict__.update(values)
        try:
            yield
        finally:
            self.__dict__.update(saved)


def calibrated_constants(backend, **defaults):
    """Declare `backend`'s calibratable constants with their defaults; return the object its
    cost model reads them from (a :class:`Constants`).

    A second declaration for the same backend replaces the first (a reloaded module).
    """
    constants = Constants(backend, defaults)
    with _lock:
        _declared[backend] = constants
    return constants


def declared(backend):
    """The :class:`Constants` `backend` declared, or None."""
    return _declared.get(backend)


# --------------------------------------------------------------------------- the file

def machine_key():
    """What a calibration is valid for: CPU model, vector target, convcore version, build."""
    from convcore._cy.target import describe

    target = describe()
    info = build_info()
    return {"cpu": cpu_model()[0], "isa": target["isa"],
            "vector_bytes": target["vector_bytes"], "registers": target["registers"],
            "fma": target["fma"], "convcore": VERSION,
            "build": {name: info.get(name) for name in BUILD_FIELDS}}


def calibration_path(key=None):
    """This machine's calibration file: one per CPU model and instruction set."""
    key = key or machine_key()
    slug = re.sub(r"[^a-z0-9]+", "-", key["cpu"].lower()).strip("-")[:48] or "cpu"
    digest = hashlib.sha1(key["cpu"].encode()).hexdigest()[:6]
    return os.path.join(cache_dir(), f"calibration-{slug}-{digest}-{key['isa']}.json")


def save(backends, measurements=(), seconds=None, threads=None, quick=False, other_load=None):
    """Write a calibration for this machine (atomically) and use it from now on.

    `backends` maps a backend name to the values its ``calibrate`` fitted; the defaults they
    were fitted against are stored beside them (a later change of defaults makes the section
    stale). Returns the path written.
    """
    key = machine_key()
    sections = {}
    for name, values in backends.items():
        constants = declared(name)
        if constants is None or not values:
            continue
        defaults = constants.defaults
        sections[name] = {"defaults": _to_json(defaults),
                          "values": _to_json({n: values[n] for n in sorted(values)})}
    document = {"schema": SCHEMA, "key": key,
                "created": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M UTC"),
                "seconds": seconds, "threads": threads, "quick": bool(quick),
                "other_load": other_load,
                "backends": sections, "measurements": list(measurements)}
    path = calibration_path(key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(document, f, indent=1)
    os.replace(temporary, path)
    reload()
    return path


def reload():
    """Read the calibration file again on the next constant read (after it was written, or
    the cache folder changed), and forget plans made with the old values."""
    with _lock:
        _state.update(document=_UNREAD, path=None, problem=None, refused={})
        for constants in _declared.values():
            constants._forget()
    settings_changed()


@contextlib.contextmanager
def defaults_only():
    """Inside the block every model reads its defaults (what calibration fits against)."""
    with _lock:
        was = _state["defaults_only"]
        _state["defaults_only"] = True
        for constants in _declared.values():
            constants._forget()
    try:
        yield
    finally:
        with _lock:
            _state["defaults_only"] = was
            for constants in _declared.values():
                constants._forget()


def _document():
    """The valid calibration file's content, or None; read once per process."""
    document = _state["document"]
    if document is _UNREAD:
        with _lock:
            if _state["document"] is _UNREAD:
                # Before any warning: under -W error the warning raises, and the next read
                # must find the defaults in place, not read the file again.
                _state["document"] = None
                path = calibration_path()
                _state["path"] = path
                _state["document"] = _read(path)
            document = _state["document"]
    return document


def _read(path):
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        return _refuse(path, f"cannot be read ({err})")
    try:
        document = json.loads(text)
    except ValueError as err:
        return _refuse(path, f"is not valid JSON ({err})")
    why = _check_document(document)
    if why:
        return _refuse(path, why)
    why = _key_mismatch(document["key"], machine_key())
    if why:
        return _refuse(path, f"was made for {why}", stale=True)
    return document


def _check_document(document):
    """Why `document` is not a calibration file of this schema (None when it is one)."""
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        return f"has schema {found!r}, expected {SCHEMA}"
    if not isinstance(document.get("key"), dict) or not isinstance(document.get("backends"), dict):
        return "lacks its key or its backends"
    for name, section in document["backends"].items():
        if not (isinstance(section, dict) and isinstance(section.get("values"), dict)
                and isinstance(section.get("defaults"), dict)):
            return f"has a malformed section for {name!r}"
        bad = _bad_number(section["values"])
        if bad:
            return f"holds {bad} among {name!r}'s values"
    return None


def _bad_number(value):
    """A description of the first value that is not a finite, positive number, or None."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            bad = _bad_number(item)
            if bad:
                return bad
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} (not a number)"
    if not math.isfinite(value) or value <= 0:
        return f"{value!r} (not a finite positive number)"
    return None


def _key_mismatch(stored, current):
    """'another CPU (...)' etc. when the stored key is not this machine's, else None."""
    what = (("cpu", "another CPU"), ("isa", "another instruction set"),
            ("vector_bytes", "another vector width"), ("registers", "another register count"),
            ("fma", "another FMA setting"), ("convcore", "another convcore version"),
            ("build", "other build flags"))
    for field, label in what:
        if stored.get(field) != current[field]:
            return f"{label} ({stored.get(field)!r}; this is {current[field]!r})"
    return None


def _values_for(backend, defaults):
    """(values, 'calibrated' or 'defaults') for one backend's declared constants."""
    if _state["defaults_only"]:
        return dict(defaults), "defaults"
    document = _document()
    section = document["backends"].get(backend) if document else None
    if section is None:
        return dict(defaults), "defaults"
    path = _state["path"]
    if section["defaults"] != _to_json(defaults):
        _refuse(path, f"was made with other defaults of {backend!r}'s cost model (the model "
                      f"changed since)", stale=True, backend=backend)
        return dict(defaults), "defaults"
    values = dict(defaults)
    try:
        for name, stored in section["values"].items():
            if name not in defaults:
                raise ValueError(f"{name}: not a constant {backend!r} declares")
            values[name] = _conform(defaults[name], stored, name)
    except ValueError as err:
        _refuse(path, f"holds an untrustworthy value for {backend!r}: {err}", backend=backend)
        return dict(defaults), "defaults"
    return values, "calibrated"


def _conform(default, stored, where):
    """`stored` (decoded JSON) in the shape of `default`, or ValueError saying why not."""
    if isinstance(default, dict):
        if not isinstance(stored, dict) or set(stored) != {str(k) for k in default}:
            raise ValueError(f"{where}: expected the keys {sorted(map(str, default))}")
        return {k: _conform(v, stored[str(k)], f"{where}[{k}]") for k, v in default.items()}
    if isinstance(default, (tuple, list)):
        if not isinstance(stored, list) or len(stored) != len(default):
            raise ValueError(f"{where}: expected a table of {len(default)} entries")
        rows = []
        for (x, y), entry in zip(default, stored):
            if not isinstance(entry, list) or len(entry) != 2 or entry[0] != x:
                raise ValueError(f"{where}: expected the entry for {x!r}")
            rows.append((x, _conform(y, entry[1], f"{where}[{x}]")))
        return tuple(rows)
    if isinstance(stored, bool) or not isinstance(stored, (int, float)) \
            or not math.isfinite(stored) or stored <= 0:
        raise ValueError(f"{where} = {stored!r} is not a finite positive number")
    if default > 0 and not 1 / LIMIT <= stored / default <= LIMIT:
        raise ValueError(f"{where} = {stored:.3g} is more than {LIMIT:g}x away from its "
                         f"default {default:.3g}")
    return float(stored)


def _to_json(value):
    """Constants as JSON-able values: dict keys as strings, tables as lists."""
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    return float(value)


def _refuse(path, why, stale=False, backend=None):
    message = (f"convcore: ignoring the calibration file {path}: it {why}. The cost models "
               f"use their defaults; run `convcore calibrate` to measure this machine.")
    if backend is None:
        _state["problem"] = f"{path} ignored: it {why}"
    else:
        _state["refused"][backend] = f"its calibration was ignored: the file {why}"
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, CalibrationWarning, stacklevel=3)
    return None


# --------------------------------------------------------------------------- explaining

def source():
    """Where the constants in use come from, in one line (for ``explain``)."""
    document = _document()
    if document is not None and not _state["defaults_only"]:
        quick = ", quick: rough values" if document.get("quick") else ""
        return (f"calibrated on this machine {document.get('created', '')}{quick} "
                f"({_state['path']})")
    why = _state["problem"] or "no calibration for this machine; `convcore calibrate` " \
                               "measures one"
    return f"{DEFAULTS_SOURCE} ({why})"


def describe(backend):
    """``'NAME x1.9, ...'``: the calibrated constants of `backend` as factors of their
    defaults; 'defaults' when it uses its defaults; None when it declares none."""
    constants = declared(backend)
    if constants is None:
        return None
    values = constants.values()
    if constants.origin() != "calibrated":
        refused = _state["refused"].get(backend)
        return f"{DEFAULTS_SOURCE} ({refused})" if refused else "defaults"
    parts = [f"{name} x{ratio(constants.defaults[name], value):.3g}"
             for name, value in values.items() if value != constants.defaults[name]]
    return ", ".join(parts) or "defaults (none measured)"


def ratio(default, value):
    """value / default, the geometric mean over a dict's or table's entries."""
    pairs = list(_leaf_pairs(default, value))
    if not pairs:
        return 1.0
    return math.exp(sum(math.log(v / d) for d, v in pairs) / len(pairs))


def _leaf_pairs(default, value):
    if isinstance(default, dict):
        for k in default:
            yield from _leaf_pairs(default[k], value[k])
    elif isinstance(default, (tuple, list)):
        for (_, d), (_, v) in zip(default, value):
            yield from _leaf_pairs(d, v)
    elif default > 0 and value > 0:
        yield default, value
