"""FFTW plans for the ``fft`` backend: a bounded plan cache of plan sets, wisdom on disk.

Two jobs, kept here so ``fft.py`` reads as the algorithm (transform sizes are chosen in
``_layout``):

* **Plan cache.** FFTW plans are expensive to make and cheap to run. A plan is only valid for
  its arrays' shapes, strides and alignment, so the cache stores *plan sets* (the FFTW objects
  together with the aligned buffers they were planned on) in a bounded LRU keyed by shape,
  dtype, axes, threads and planner effort. A call takes a plan set out of the cache and puts
  it back afterwards, so two Python threads never share buffers: a concurrent call on the same
  key simply makes (or finds) a second plan set. Planning runs under one process-wide lock
  (FFTW's planner is not thread safe); executing does not take it.
* **Wisdom.** Measured plans (``plan="measure"``) are slow to make, so FFTW's wisdom is
  exported to the user cache directory after each measured planning and imported once per
  process before the first plan (estimated plans use it too). A corrupt wisdom file is
  ignored with a warning.
"""

import collections
import math
import os
import struct
import threading
import warnings

import numpy as np
import pyfftw
from convcore.plugin import cache_dir

# FFTW's planner, and the wisdom functions, are not thread safe (pyFFTW has a lock of its own
# around planning, but wisdom export/import and its tracker have had race reports): every
# FFTW object is created under this lock.
PLAN_LOCK = threading.Lock()

EFFORTS = {"estimate": "FFTW_ESTIMATE", "measure": "FFTW_MEASURE"}

class PlanCache:
    """A bounded LRU of idle plan sets, keyed by everything a plan depends on.

    ``acquire`` returns an idle plan set for the key (a hit) or builds one with `factory`
    under :data:`PLAN_LOCK` (a miss); ``release`` gives it back. Idle sets beyond
    ``max_sets`` or ``max_bytes`` are dropped, least recently used first.
    """

    def __init__(self, max_sets=32, max_bytes=256 << 20):
        self.max_sets = max_sets
        self.max_bytes = max_bytes
        self._idle = collections.OrderedDict()  # key -> list of plan sets
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def acquire(self, key, factory):
        with self._lock:
            sets = self._idle.get(key)
            if sets:
                self._idle.move_to_end(key)
                self.hits += 1
                return sets.pop()
            self.misses += 1
        with PLAN_LOCK:
            return factory()

    def release(self, key, plan_set):
        if plan_set.nbytes > self.max_bytes:
            return
        with self._lock:
            self._idle.setdefault(key, []).append(plan_set)
            self._idle.move_to_end(key)
            self._trim()

    def _trim(self):
        count = sum(len(v) for v in self._idle.values())
        total = sum(s.nbytes for v in self._idle.values() for s in v)
        while self._idle and (count > self.max_sets or total > self.max_bytes):
            key, sets = next(iter(self._idle.items()))
            dropped = sets.pop(0)
            count -= 1
            total -= dropped.nbytes
            if not sets:
                del self._idle[key]

    def clear(self):
        """Forget every idle plan set and reset the hit/miss counters."""
        with self._lock:
            self._idle.clear()
            self.hits = self.misses = 0

    @property
    def cached_bytes(self):
        with self._lock:
            return sum(s.nbytes for v in self._idle.values() for s in v)


CACHE = PlanCache()

# Transform lengths FFTW has planned in this process (estimate effort). Planning a length for
# the first time costs milliseconds (2-11 ms measured for 1k-140k points, forward and inverse,
# on this machine under load); once FFTW's planner has seen it, another plan on it (a new
# batch, the kernel's) costs about 0.1 ms. ``_layout`` counts that cost for new lengths.
planned_lengths = set()


def make_fftw(a, b, axes, direction, effort, threads, destroy_input=False):
    """One FFTW object on arrays `a` -> `b` (call under PLAN_LOCK).

    FFTW_MEASURE scribbles over the arrays while planning, so callers fill them afterwards.
    """
    # Wisdom is read before the first plan of the process, whatever the effort: FFTW's
    # estimated plans also use measured wisdom (a 64 x 8192 float32 r2c batch here: 0.85 ms
    # estimated afresh, 0.63 ms estimated with the wisdom of an earlier measured run).
    load_wisdom()
    flags = [EFFORTS[effort]]
    if destroy_input:
        flags.append("FFTW_DESTROY_INPUT")
    plan = pyfftw.FFTW(a, b, axes=axes, direction=direction, flags=flags, threads=threads)
    if effort == "estimate":
        planned_lengths.update(max(a.shape[axis], b.shape[axis]) for axis in axes)
    if effort == "measure":
        _wisdom_state["dirty"] = True
    return plan


# --- plan sets ----------------------------------------------------------------------------

# FFTW's threads split every execute statically and wait for each other at the end. On two
# cores shared with other work, a thread that must wait for its time slice stalls the whole
# transform: measured here under load, a 256^2 float32 r2c took 16 ms with 2 threads and
# 0.13 ms with 1. So FFTW gets threads only for transforms of at least this many elements,
# where the work per execute dwarfs such stalls; smaller work is parallelized by the chunked
# overlap-add pipeline instead, which shares chunks dynamically.
FFTW_THREAD_MIN_ELEMENTS = 1 << 22


class _PlanSet:
    """FFTW objects with the aligned buffers they were planned on (one user at a time).

    ``xa -> xs`` transforms the signal; the kernel goes ``ka -> ks`` through the plans in
    ``fk``; the product is formed in ``ps`` (``xs`` itself when the shapes allow) and
    ``inv`` brings it back into ``pa`` (``xa`` itself then).
    """

    __slots__ = ("xa", "xs", "ka", "ks", "kz", "pa", "ps", "fx", "fk", "inv", "nbytes")


def _spectrum_shape(shape, axes, real):
    shape = list(shape)
    if real:
        shape[axes[-1]] = shape[axes[-1]] // 2 + 1
    return tuple(shape)


def build_plan_set(x_buf, k_buf, k_region, axes, real, float_dtype, threads, effort,
                   rows=None):
    """Buffers and plans for one key (called under PLAN_LOCK by the cache).

    ``x_buf`` None: kernel plans only; ``k_buf`` None: signal plans only (the inverse then
    runs in place, ``xs -> xa``). ``rows``: only the first `rows` entries of the signal along
    ``axes[0]`` are nonzero (overlap-add blocks), so the forward transform of the other axes
    skips the rest (about 10% of a 2-D block's forward transform).

    The kernel is small next to the transform, so when two or more axes are transformed its
    spectrum is made in two stages: the last axis only over the kernel's own rows, then the
    other axes (the rows past the kernel are zero, never transformed): about half the work of
    transforming the padded kernel in one go.
    """
    cdt = np.result_type(float_dtype, np.complex64)
    sdt = float_dtype if real else cdt
    s = _PlanSet()
    s.xa = s.xs = s.fx = s.ka = s.ks = s.kz = s.fk = s.pa = s.ps = s.inv = None
    if x_buf is not None:
        s.xa = pyfftw.empty_aligned(x_buf, sdt)
        s.xs = pyfftw.empty_aligned(_spectrum_shape(x_buf, axes, real), cdt)
        if rows is not None and len(axes) > 1 and rows < x_buf[axes[0]]:
            s.fx = _PrunedForward(s.xa, s.xs, axes, rows, effort, threads)
        else:
            s.fx = make_fftw(s.xa, s.xs, axes, "FFTW_FORWARD", effort, threads)
    if k_buf is not None:
        _kernel_plans(s, k_buf, k_region, axes, real, sdt, cdt, threads, effort)
    if x_buf is None:
        pass
    elif k_buf is None or np.broadcast_shapes(s.xs.shape, s.ks.shape) == s.xs.shape:
        s.ps, s.pa = s.xs, s.xa  # multiply in place and transform back into the signal buffer
    else:
        s.ps = pyfftw.empty_aligned(np.broadcast_shapes(s.xs.shape, s.ks.shape), cdt)
        s.pa = pyfftw.empty_aligned(np.broadcast_shapes(x_buf, k_buf), sdt)
    if x_buf is not None:
        s.inv = make_fftw(s.ps, s.pa, axes, "FFTW_BACKWARD", effort, threads,
                          destroy_input=True)
    buffers = (s.xa, s.xs, s.ka, s.ks, s.kz, s.pa, s.ps)
    s.nbytes = sum(b.nbytes for b in {id(b): b for b in buffers if b is not None}.values())
    return s


class _PrunedForward:
    """Forward transform of a buffer whose entries past `rows` on ``axes[0]`` are zero.

    The other axes are transformed over the first `rows` only, the zero rows of the spectrum
    are cleared (the inverse transform destroys them), then ``axes[0]`` in place.
    """

    def __init__(self, xa, xs, axes, rows, effort, threads):
        first = axes[0]
        head = tuple(slice(0, rows) if d == first else slice(None) for d in range(xa.ndim))
        self.tail = tuple(slice(rows, None) if d == first else slice(None)
                          for d in range(xa.ndim))
        self.xs = xs
        self.rest = make_fftw(xa[head], xs[head], axes[1:], "FFTW_FORWARD", effort, threads)
        self.first = make_fftw(xs, xs, axes[:1], "FFTW_FORWARD", effort, threads)

    def execute(self):
        self.rest.execute()
        self.xs[self.tail] = 0
        self.first.execute()


def _kernel_plans(s, k_buf, k_region, axes, real, sdt, cdt, threads, effort):
    k_threads = threads if math.prod(k_buf) >= FFTW_THREAD_MIN_ELEMENTS else 1
    s.ks = pyfftw.empty_aligned(_spectrum_shape(k_buf, axes, real), cdt)
    lead = axes[:-1]
    if lead and any(k_region[d] < k_buf[d] for d in lead):
        small = tuple(k_region[d] if d in lead else k_buf[d] for d in range(len(k_buf)))
        s.ka = pyfftw.empty_aligned(small, sdt)
        s.kz = pyfftw.empty_aligned(s.ks.shape, cdt)
        rows = s.kz[tuple(slice(0, k_region[d]) if d in lead else slice(None)
                          for d in range(len(k_buf)))]
        s.fk = (make_fftw(s.ka, rows, axes[-1:], "FFTW_FORWARD", effort, k_threads),
                make_fftw(s.kz, s.ks, lead, "FFTW_FORWARD", effort, k_threads))
        s.kz[...] = 0  # rows past the kernel stay zero: the second stage never writes kz
    else:
        s.ka = pyfftw.empty_aligned(k_buf, sdt)
        s.kz = None
        s.fk = (make_fftw(s.ka, s.ks, axes, "FFTW_FORWARD", effort, k_threads),)
    s.ka[...] = 0  # planning may scribble; the kernel buffer keeps zero padding from now on


def with_plan_set(key, build, body):
    plan_set = CACHE.acquire(key, build)
    try:
        return body(plan_set)
    finally:
        CACHE.release(key, plan_set)


def fill_kernel(s, kc, scale):
    """Kernel (scaled by 1/N) into its corner; the rest of ka stays zero (same key, same
    corner, and a forward transform never writes its input)."""
    np.multiply(kc, scale, out=s.ka[tuple(slice(0, n) for n in kc.shape)], casting="unsafe")


def transform_kernel(s):
    for plan in s.fk:
        plan.execute()



# --- wisdom ----------------------------------------------------------------------------------

_MAGIC = b"convcore-fftw-wisdom-1\n"
_wisdom_state = {"loaded": False, "dirty": False}
# Tests (and users who want another place) may point this at a file; None means the user
# cache directory.
wisdom_file_override = None


def wisdom_file():
    """Path of the wisdom file: ``fftw-wisdom.bin`` in convcore's cache folder
    (``convcore.plugin.cache_dir``)."""
    if wisdom_file_override is not None:
        return os.fspath(wisdom_file_override)
    return os.path.join(cache_dir(), "fftw-wisdom.bin")


def _encode(wisdom):
    parts = [_MAGIC]
    for blob in wisdom:
        parts.append(struct.pack("<Q", len(blob)))
        parts.append(blob)
    return b"".join(parts)


def _decode(data):
    if not data.startswith(_MAGIC):
        raise ValueError("missing header")
    pos, blobs = len(_MAGIC), []
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated length")
        (size,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        if pos + size > len(data):
            raise ValueError("truncated wisdom")
        blobs.append(data[pos:pos + size])
        pos += size
    if len(blobs) != 3:
        raise ValueError(f"expected 3 wisdom blocks, found {len(blobs)}")
    return tuple(blobs)


def load_wisdom(force=False):
    """Import the wisdom file once per process (call under PLAN_LOCK).

    Returns
    -------
    bool
        True when wisdom was read and accepted by FFTW.
    """
    if _wisdom_state["loaded"] and not force:
        return False
    _wisdom_state["loaded"] = True
    path = wisdom_file()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    except OSError as err:
        warnings.warn(f"convcore fft: cannot read FFTW wisdom {path}: {err}; planning afresh",
                      RuntimeWarning, stacklevel=3)
        return False
    try:
        accepted = pyfftw.import_wisdom(_decode(data))
        if not all(accepted[:2]):  # double and single precision must parse
            raise ValueError("FFTW rejected the wisdom text")
    except (ValueError, TypeError) as err:
        warnings.warn(f"convcore fft: ignoring corrupt FFTW wisdom file {path} ({err}); "
                      "plans will be measured again", RuntimeWarning, stacklevel=3)
        return False
    return True


def save_wisdom():
    """Export FFTW's wisdom to the wisdom file (atomically); returns the path or None."""
    with PLAN_LOCK:
        if not _wisdom_state["dirty"]:
            return None
        data = _encode(pyfftw.export_wisdom())
        _wisdom_state["dirty"] = False
    path = wisdom_file()
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as err:
        warnings.warn(f"convcore fft: cannot save FFTW wisdom to {path}: {err}",
                      RuntimeWarning, stacklevel=2)
        return None
    return path


def forget_wisdom():
    """Drop FFTW's in-memory wisdom and plan cache, so the next import is observable."""
    with PLAN_LOCK:
        pyfftw.forget_wisdom()
        _wisdom_state["loaded"] = False
        _wisdom_state["dirty"] = False
    CACHE.clear()
