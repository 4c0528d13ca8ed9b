"""``separable``: low-rank kernels as 1-D passes.

A kh x kw kernel of numerical rank r is ``sum_t u_t v_t^T`` (its SVD); convolving with it
costs ``r * (kh + kw)`` multiply-adds per output instead of ``kh * kw``: 30x fewer for a
31 x 31 Gaussian (r = 1). Each term is a vertical pass and a horizontal pass, run strip by
strip so the intermediate stays in cache (see ``_cy.pyx``). N-D kernels that are an
outer product of 1-D kernels run one pass per axis. Integer kernels are served only when they
are exactly an integer outer product (Sobel), so results stay exact.

The rank depends on the kernel's values, not its shape: ``supports()`` reads
``problem.kernel`` (the engine attaches kernels up to 128 x 128 and keys plans by their
content) or ``problem.factors`` (given by ``convcore.sepconvolve``), and factorizations are
cached by kernel bytes.

Options (``backend_options``): ``rank`` (keep at most r terms) and ``tol`` (drop singular
values below ``tol * s_max``) ask for an approximation; :func:`decompose` returns the factors
and the error bound of such a request.
"""

import threading

import numpy as np

from convcore._boundary import extension_table
from convcore._contention import team_size
from convcore._registry import Backend
from convcore._threads import get_num_threads, native_threads

from . import _cy
from ._factors import Decomposition, decompose, default_tolerance

__all__ = ["SeparableBackend", "backend", "decompose", "Decomposition", "default_tolerance"]

OPTIONS = ("rank", "tol")

# Measured on the development machine, per thread (1024^2 'same', Gaussian kernels): the
# passes run at about 0.025 ns per multiply-add in float32 (k = 31: 62 M in 1.5 ms, 1 thread),
# twice that in float64 and ~4x that for complex (generic loops); small kernels are bound by
# streaming the signal and the result (k = 3 float32: 8 MB in 0.54 ms, 1 thread). A call
# costs tens of microseconds in Python (plan lookup, tables, waking the OpenMP team).
SECONDS_PER_MAC = {4: 0.025e-9, 8: 0.05e-9}
SECONDS_PER_BYTE = 0.05e-9
SECONDS_PER_CALL = 20e-6

_CACHE_SIZE = 256
_PREPARED_CACHE_SIZE = 32


class SeparableBackend(Backend):
    """Rank-r kernels as 1-D passes (see the module docstring)."""

    name = "separable"
    kind = "direct"

    def __init__(self):
        self._cache = {}
        self._prepared_cache = {}
        self._lock = threading.Lock()

    # -- what the engine asks -------------------------------------------------------------

    def supports(self, problem):
        if not hasattr(problem, "x_shape"):
            return "separable serves signal convolutions (ConvProblem), not CNN layers"
        if problem.dtype.kind == "O":
            return "separable does not serve object arrays (only naive does)"
        if problem.is_batched:
            return ("separable does not broadcast axes (fftconvolve's axes=); every axis must "
                    "be convolved")
        long_axes = sum(1 for a in problem.axes if problem.k_shape[a] > 1)
        if long_axes < 2:
            return ("the kernel has fewer than two axes longer than 1: a 1-D convolution is "
                    "already one pass, nothing to separate")
        try:
            self.check_options(problem.backend_options, known=OPTIONS)
            found = self._factors(problem)
        except ValueError as err:
            return str(err)
        if isinstance(found, str):
            return found
        if not problem.backend_options:
            direct, passes = _work_per_output(problem.k_shape, found)
            if passes >= direct:
                return (f"the kernel {problem.k_shape} has numerical rank {found.rank}: "
                        f"{passes} multiply-adds per output in 1-D passes, not fewer than "
                        f"{direct} for a direct loop")
        return True

    def cost(self, problem):
        found = self._factors(problem)
        per_output = _work_per_output(problem.k_shape, found)[1] if not isinstance(found, str) \
            else problem.macs / max(problem.out_size, 1)
        dtype = problem.dtype
        if dtype.kind == "c":
            per_mac = 4 * SECONDS_PER_MAC[dtype.itemsize // 2]
        else:
            per_mac = SECONDS_PER_MAC.get(dtype.itemsize, SECONDS_PER_MAC[8])
        compute = problem.out_size * per_output * per_mac
        stream = (_prod(problem.x_shape) + problem.out_size) * dtype.itemsize * SECONDS_PER_BYTE
        return SECONDS_PER_CALL + (compute + stream) / max(get_num_threads(), 1)

    def workspace(self, problem):
        # Per-thread strip buffers, and the lead-axis intermediates of N-D kernels.
        strips = get_num_threads() * _cy.scratch_size(
            problem.out_shape[-1], problem.k_shape[-1]) * problem.dtype.itemsize
        lead = problem.ndim - 2
        if lead <= 0:
            return strips
        biggest = max(_prod(problem.out_shape[: d + 1]) * _prod(problem.x_shape[d + 1:])
                      for d in range(lead))
        return strips + 2 * biggest * problem.dtype.itemsize

    # -- the factorization, cached by kernel bytes -----------------------------------------

    def _factors(self, problem, kernel=None):
        """Decomposition (of the kernel, not the taps) or a reason string."""
        if problem.factors is not None:
            return Decomposition([tuple(problem.factors)], problem.k_shape, None, 0.0, 0.0,
                                 problem.dtype.kind not in "fc")
        k = problem.kernel if kernel is None else kernel
        if k is None:
            return ("the kernel has more than 128 x 128 elements: the engine passes the "
                    "values of smaller kernels only (use convcore.sepconvolve with factors)")
        options = problem.backend_options
        # Integer results keep the low bits of the result dtype: factors need only match
        # the kernel modulo 2**bits.
        bits = 8 * problem.out_dtype.itemsize if problem.dtype.kind == "u" else 64
        key = (k.tobytes(), k.shape, k.dtype.str, options.get("tol"), options.get("rank"), bits)
        found = self._cache.get(key)
        if found is None:
            found = decompose(k, tol=options.get("tol"), rank=options.get("rank"),
                              dtype=problem.dtype, bits=bits)
            with self._lock:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = found
        return found

    # -- the work ------------------------------------------------------------------------

    def run(self, x, k, problem, out):
        self.check_options(problem.backend_options, known=OPTIONS)
        prep = self._prepared(problem, k)
        signal = x
        wanted = team_size(get_num_threads(), prep.serial_seconds)
        with native_threads(wanted, key=problem.key) as threads:
            # Leading axes of N-D kernels (rank 1): one pass each, a full-size intermediate.
            for taps, table, outer, n, inner, o, fill in prep.lead:
                result = np.empty(outer * o * inner, problem.dtype)
                _cy.axis_pass(signal.reshape(-1), outer, n, inner, taps, table,
                                        fill, result, o, threads)
                signal = result
            workers = min(threads, prep.strips // 2 + 1)
            scratch = _scratch(workers * prep.scratch_size, problem.dtype)
            job = _cy.separable_2d(
                signal.reshape(-1), prep.planes, prep.rows, prep.cols, prep.us, prep.upads,
                prep.vs, prep.row_table, prep.col_table, problem.starts[-1], prep.fill,
                out.reshape(-1), *problem.out_shape[-2:], scratch)
            job.run(workers)

    def _prepared(self, problem, k):
        """Taps, boundary tables and fill values of a problem, cached by its key and kernel
        values (a few tens of microseconds of NumPy per call otherwise)."""
        # The problem key tells only whether the fill value is zero: add the value.
        fill = np.asarray(problem.fillvalue).tobytes()
        if problem.factors is not None:
            key = (problem.key, fill)
        elif k.size <= 128 * 128:
            key = (problem.key, fill, k.tobytes())
        else:
            key = None
        prep = self._prepared_cache.get(key) if key is not None else None
        if prep is None:
            found = self._factors(problem, kernel=k)
            if isinstance(found, str):
                raise ValueError(f"backend 'separable' cannot run this problem: {found}")
            prep = _Prepared(problem, found)
            if key is not None:
                with self._lock:
                    if len(self._prepared_cache) >= _PREPARED_CACHE_SIZE:
                        self._prepared_cache.clear()
                    self._prepared_cache[key] = prep
        return prep


class _Prepared:
    """Everything run() hands the Cython passes, apart from the arrays of one call."""

    def __init__(self, problem, found):
        dtype = problem.dtype
        terms = [tuple(_taps(f, problem, dtype) for f in term) for term in found.terms]
        fill = problem.fillvalue
        shape = list(problem.x_shape)
        self.lead = []
        lead_scale = np.ones((), dtype)
        for axis in range(problem.ndim - 2):
            taps = terms[0][axis]
            if taps.size == 1:
                lead_scale = lead_scale * taps[0]  # a one-tap pass is a scale (identity table)
                continue
            o = problem.out_shape[axis]
            table = extension_table(shape[axis], problem.starts[axis], o + taps.size - 1,
                                    problem.boundary)
            self.lead.append((taps, table, _prod(shape[:axis]), shape[axis],
                              _prod(shape[axis + 1:]), o, fill))
            # Outside the signal along this axis the pass sees fill * sum(taps) on the next.
            fill = fill * taps.sum(dtype=dtype)
            shape[axis] = o
        self.us = np.ascontiguousarray([t[-2] * lead_scale for t in terms], dtype)
        self.vs = np.ascontiguousarray([t[-1] for t in terms], dtype)
        kh, kw = self.us.shape[1], self.vs.shape[1]
        o_rows, o_cols = problem.out_shape[-2:]
        strip = _cy.strip_rows()
        padded_rows = -(-o_rows // strip) * strip
        self.row_table = np.full(padded_rows + kh - 1, -1, np.intp)
        self.row_table[: o_rows + kh - 1] = extension_table(
            shape[-2], problem.starts[-2], o_rows + kh - 1, problem.boundary)
        self.upads = np.zeros((self.us.shape[0], kh + 2 * strip - 2), dtype)
        self.upads[:, strip - 1: strip - 1 + kh] = self.us
        self.col_table = extension_table(shape[-1], problem.starts[-1], o_cols + kw - 1,
                                         problem.boundary)
        _check_columns(self.col_table, problem.starts[-1], shape[-1])
        self.planes, self.rows, self.cols = _prod(shape[:-2]), shape[-2], shape[-1]
        self.fill = np.asarray(fill, dtype)[()]
        self.strips = self.planes * padded_rows // strip
        self.macs = self.planes * padded_rows * o_cols * self.us.shape[0] * (kh + kw)
        # One thread's time, for _contention's "is another thread worth it".
        lead_macs = sum(outer * o * inner * taps.size
                        for taps, _, outer, _, inner, o, _ in self.lead)
        per_mac = SECONDS_PER_MAC.get(dtype.itemsize, SECONDS_PER_MAC[8])
        if dtype.kind == "c":
            per_mac = 4 * SECONDS_PER_MAC[dtype.itemsize // 2]
        self.serial_seconds = (self.macs + lead_macs) * per_mac + (
            _prod(problem.x_shape) + problem.out_size) * dtype.itemsize * SECONDS_PER_BYTE
        self.scratch_size = _cy.scratch_size(o_cols, kw)


_local = threading.local()


def _scratch(size, dtype):
    """The calling thread's strip buffers, kept between calls: a fresh array of this size
    is a fresh mmap, whose pages fault in on every call."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    buffer = buffers.get(dtype)
    if buffer is None or buffer.size < size:
        buffer = buffers[dtype] = np.empty(size, dtype)
    return buffer[:size]


def _taps(factor, problem, dtype):
    """One factor in correlation form: reversed for a convolution, conjugated if asked."""
    f = np.asarray(factor)
    if problem.flip:
        f = f[::-1]
    if problem.conj:
        f = np.conj(f)
    return np.ascontiguousarray(f, dtype)


def _work_per_output(k_shape, found):
    """(direct multiply-adds per output, multiply-adds per output in 1-D passes)."""
    direct = _prod(k_shape)
    lead = sum(n for n in k_shape[:-2] if n > 1)
    return direct, lead + found.rank * (k_shape[-2] + k_shape[-1])


def _check_columns(col_table, start, n):
    """The vertical pass computes signal columns max(0, start) ... ; every column an edge
    entry copies must be among them (true for full, same and valid)."""
    valid = col_table[col_table >= 0]
    low, high = max(0, start), min(n, start + col_table.size)
    if valid.size and (valid.min() < low or valid.max() >= high):
        raise RuntimeError("separable: boundary columns outside the computed range")


def _prod(values):
    result = 1
    for v in values:
        result *= v
    return result


backend = SeparableBackend()
