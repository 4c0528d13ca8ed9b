"""``separable``: low-rank kernels as 1-D passes.

A kh x kw kernel of numerical rank r is ``sum_t u_t v_t^T`` (its SVD); convolving with it
costs ``r * (kh + kw)`` multiply-adds per output instead of ``kh * kw``: 30x fewer for a
31 x 31 Gaussian (r = 1). Each term is a vertical pass and a horizontal pass, run strip by
strip so the intermediate stays in cache (see ``_cy.pyx``). N-D kernels that are an
outer product of 1-D kernels run one pass per axis. Integer kernels are served only when they
are exactly an integer outer product (Sobel), so results stay exact.

The rank depends on the kernel's values, not its shape (``reads_kernel_values``): about a
problem without values ``supports()`` and ``cost()`` answer for the best case, rank 1; the
engine then asks again with ``problem.kernel`` (kernels up to 128 x 128, keyed by their
content) when that could win. ``problem.factors`` (from ``convcore.sepconvolve``) needs no
factorization.

Options (``backend_options``): ``rank`` (keep at most r terms) and ``tol`` (drop singular
values below ``tol * s_max``) ask for an approximation; :func:`decompose` returns the factors
and the error bound of such a request.
"""

import threading

import numpy as np

from convcore.plugin import (
    Backend, ProblemMemo, calibrated_constants, cpu_budget, extension_table,
    kernel_values_matter, native_threads, team_size, worth,
)

from . import _cy
from ._factors import Decomposition, decompose, default_tolerance

__all__ = ["SeparableBackend", "backend", "decompose", "Decomposition", "default_tolerance"]

OPTIONS = ("rank", "tol")

# Measured on the development machine, per thread (1024^2 'same', Gaussian kernels): the
# passes run at about 0.025 ns per multiply-add in float32 (k = 31: 62 M in 1.5 ms, 1 thread),
# twice that in float64 and ~4x that for complex (generic loops); small kernels are bound by
# streaming the signal and the result (k = 3 float32: 8 MB in 0.54 ms, 1 thread).
SECONDS_PER_MAC = {4: 0.025e-9, 8: 0.05e-9}
SECONDS_PER_BYTE = 0.05e-9
# Each term past the first streams the result once more: its horizontal pass reads and writes
# the output rows to accumulate (and its vertical pass rewrites the strip's intermediate).
# Counted in passes over the result, so the rate stays SECONDS_PER_BYTE: rank 2 against rank 1
# (one thread, AVX2 EPYC, 100^2-512^2, k 5-17, float32 and float64) cost 0.08-0.15 ns per
# result byte beyond the extra multiply-adds, two passes at 0.05 ns (docs/separable.md).
STREAM_PASSES_PER_TERM = 2
# A prepared call's own time: the runner's checks, the scratch lookup and the C job set-up,
# one thread (calls this small never wake a team: their second thread would not save the
# engine's 40 us floor). 16^2 k3: 11.3 us (`convcore calibrate`, quiet AVX2 EPYC); 11.7-12.8 us
# as the intercept of 120-row images (8-256 columns, ranks 1-2, k5, loaded); it was 20 us
# when small calls still woke the OpenMP team.
SECONDS_PER_CALL = 11e-6
# Per strip (STRIP output rows) and term, the work outside the vector loops: the boundary
# sums of the strip's rows and the edge columns copied into the intermediate. 1200 against
# 120 rows (the same widths, k5, float32): 0.07-0.13 us per strip and term at 32-256 columns.
SECONDS_PER_STRIP_TERM = 0.1e-6
# Those rates are for 64-byte vectors (AVX-512); a narrower target issues the same
# multiply-adds in more instructions, but not in proportion: fitted on one thread, 1024^2
# Gaussians k 3 and 31 (multiply-adds against streaming), an AVX2 build (Zen 3) ran 1.48x
# (float32) and 1.32x (float64) the AVX-512 machine's time per multiply-add, and an SSE build
# on the same CPU 3.1x and 2.7x (docs/separable.md, "Blocking per instruction set").
_WIDTH_SCALE = {64: 1.0, 32: 1.4, 16: 2.9}.get(_cy.blocking()["vector_bytes"], 2.9)
# A plan that depends on the kernel's values has the engine look each call's kernel up (a
# CRC of its bytes picks the plan, a comparison confirms it; docs/design.md "Kernel values"):
# a call costs this much more than its runner, on top of the runner's own SECONDS_PER_CALL,
# plus three passes over the kernel's bytes (copied, summed, compared). API call minus
# prepared runner, separable against openmp (one thread, AVX2 EPYC): 6.5-7.6 us more for
# 5 x 5 to 24 x 24 kernels, 13-18 us at 63 x 63 float64. It is the engine's work, outside
# the runner `convcore calibrate` times, so it is not refitted there.
SECONDS_PER_KERNEL_LOOKUP = 6.5e-6
# Waking each thread beyond the first when calls are not back to back: openmp's model counts
# the same 20 us (backends/openmp/_model.py); SECONDS_PER_CALL no longer holds it (calls too
# small to pay for a second thread run on one, docs/separable.md).
SECONDS_PER_EXTRA_THREAD = 20e-6
# Each thread beyond the first adds this share of one thread's speed (1: perfect scaling).
PARALLEL_EFFICIENCY = 1.0
EFFICIENCY_BOUNDS = (0.1, 1.1)  # what a fit may find (a loaded machine can suggest less)
# What `convcore calibrate` measures on the user's machine (``calibrate`` below;
# docs/design.md, "Calibration"): the formulas read `machine`, which holds this machine's
# values when a valid calibration exists and the defaults above otherwise.
machine = calibrated_constants("separable", SECONDS_PER_MAC=SECONDS_PER_MAC,
                               SECONDS_PER_BYTE=SECONDS_PER_BYTE,
                               SECONDS_PER_CALL=SECONDS_PER_CALL,
                               SECONDS_PER_STRIP_TERM=SECONDS_PER_STRIP_TERM,
                               PARALLEL_EFFICIENCY=PARALLEL_EFFICIENCY)



def _seconds_per_mac(dtype):
    """One thread's predicted seconds per multiply-add of the passes in `dtype`."""
    if dtype.kind == "c":  # generic loops, four real multiply-adds each
        return 4 * machine.SECONDS_PER_MAC[dtype.itemsize // 2] * _WIDTH_SCALE
    return machine.SECONDS_PER_MAC.get(dtype.itemsize, machine.SECONDS_PER_MAC[8]) * _WIDTH_SCALE


class SeparableBackend(Backend):
    """Rank-r kernels as 1-D passes (see the module docstring)."""

    name = "separable"
    kind = "direct"
    reads_kernel_values = True
    # A low-rank sum is accurate relative to the largest output, not element by element:
    # calls that promise SciPy's direct sums (convolve2d, method='direct') pass it over.
    sums_directly = False

    def __init__(self):
        # supports, cost and prepare all need the factorization: one per problem and options.
        self._decompositions = ProblemMemo()

    # -- what the engine asks -------------------------------------------------------------

    def build_config(self):
        """The vertical and horizontal register blocks this build uses (``_kernels.h``)."""
        b = _cy.blocking()
        return {"vertical block": f"{b['strip_rows']} rows x {b['vertical_bytes']} bytes",
                "horizontal block": f"{b['horizontal_bytes']} bytes"}

    def supports(self, problem, ctx):
        if problem.kind != "signal":
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
            self.check_options(ctx.backend_options, known=OPTIONS)
            found = self._factors(problem, ctx)
        except ValueError as err:
            return str(err)
        if found is None:
            return True  # no values yet: rank 1 is possible (the engine asks again)
        if isinstance(found, str):
            return found
        if not ctx.backend_options:
            direct, passes = _work_per_output(problem.k_shape, found.rank)
            if passes >= direct:
                return (f"the kernel {problem.k_shape} has numerical rank {found.rank}: "
                        f"{passes} multiply-adds per output in 1-D passes, not fewer than "
                        f"{direct} for a direct loop")
        return True

    def cost(self, problem, ctx):
        found = self._factors(problem, ctx)
        if found is None:
            rank = ctx.backend_options.get("rank") or 1  # the best case, until values come
        else:
            rank = found.rank if not isinstance(found, str) else None
        if rank:
            serial = _serial_seconds(problem, rank)
        else:  # a reason string: cost is not asked for, but answer as a direct loop would
            serial = problem.macs * _seconds_per_mac(problem.dtype)
        # The team the runner will start (``team_size``): another thread only where it pays
        # for itself, as openmp's model counts it; a small image runs on one thread.
        threads = worth(min(max(ctx.threads, 1), cpu_budget()), serial)
        lookup = 0.0
        if problem.factors is None:  # the kernel's values chose this plan: each call checks them
            lookup = SECONDS_PER_KERNEL_LOOKUP + 3 * _prod(problem.k_shape) \
                * problem.dtype.itemsize * machine.SECONDS_PER_BYTE
        return (machine.SECONDS_PER_CALL + lookup + SECONDS_PER_EXTRA_THREAD * (threads - 1)
                + serial / (1 + machine.PARALLEL_EFFICIENCY * (threads - 1)))

    def calibrate(self, ctx, timer):
        """Fit `machine` (``Backend.calibrate``), one thread unless said: a Gaussian (k = 31,
        rank 1) for the pass rate per dtype, a larger image with k = 3 for the streaming, a
        tiny image for the call, a tall narrow one for the strips' set-up, all threads
        against one for thread scaling."""
        fit = timer.fit(machine)
        rng = np.random.default_rng(0)

        def gaussian(n, k, dtype, threads=1):
            g = np.exp(-np.linspace(-2, 2, k) ** 2)
            return timer.signal(rng.random((n, n)).astype(dtype), np.outer(g, g).astype(dtype),
                                ctx.replace(threads=threads))

        n = timer.size(512, 64)
        for dtype in ("float32", "float64"):
            timer.solve(fit, self, gaussian(n, 31, dtype), "SECONDS_PER_MAC",
                        f"{n}^2 Gaussian k31 {dtype}", key=np.dtype(dtype).itemsize)
        # The streaming constant's regime (1024^2: 8 MB, beyond L2, the default's fit); one
        # constant cannot also cover images far beyond the last-level cache.
        big = timer.size(1024, 128)
        timer.solve(fit, self, gaussian(big, 3, "float32"), "SECONDS_PER_BYTE",
                    f"{big}^2 Gaussian k3 float32")
        timer.solve(fit, self, gaussian(16, 3, "float64"), "SECONDS_PER_CALL",
                    "16^2 k3: the call")
        # Strip set-up: a tall, narrow image of many strips and little arithmetic per strip
        # (32 columns: no scalar tails on any target; rank 2, so the per-term share counts).
        tall = timer.size(6000, 600)
        pair = rng.random((2, 2, 5))
        timer.solve(fit, self, timer.signal(
            rng.random((tall, 32)), pair[0, 0][:, None] * pair[0, 1] + pair[1, 0][:, None]
            * pair[1, 1], ctx.replace(threads=1)), "SECONDS_PER_STRIP_TERM",
            f"{tall} x 32 rank 2 k5: the strips")
        timer.thread_scaling(fit, self, lambda t: gaussian(n, 31, "float32", t), ctx.threads,
                             "PARALLEL_EFFICIENCY", f"{n}^2 Gaussian k31 float32",
                             bounds=EFFICIENCY_BOUNDS)
        return fit.finish()

    def workspace(self, problem, ctx):
        # Per-thread strip buffers, and the lead-axis intermediates of N-D kernels.
        strips = ctx.threads * _cy.scratch_size(
            problem.out_shape[-1], problem.k_shape[-1]) * problem.dtype.itemsize
        lead = problem.ndim - 2
        if lead <= 0:
            return strips
        biggest = max(_prod(problem.out_shape[: d + 1]) * _prod(problem.x_shape[d + 1:])
                      for d in range(lead))
        return strips + 2 * biggest * problem.dtype.itemsize

    # -- the factorization ---------------------------------------------------------------

    def _factors(self, problem, ctx):
        """Decomposition (of the kernel, not the taps), a reason string, or None when the
        problem carries no values yet (the engine plans by shape first)."""
        if problem.factors is not None:
            return Decomposition([tuple(problem.factors)], problem.k_shape, None, 0.0, 0.0,
                                 problem.dtype.kind not in "fc")
        k = problem.kernel
        if k is None:
            if kernel_values_matter(problem):
                return None
            return ("the kernel has more than 128 x 128 elements: the engine passes the "
                    "values of smaller kernels only (use convcore.sepconvolve with factors)")
        tol, rank = ctx.backend_options.get("tol"), ctx.backend_options.get("rank")
        # Integer results keep the low bits of the result dtype: factors need only match the
        # kernel modulo 2**bits.
        bits = 8 * problem.out_dtype.itemsize if problem.dtype.kind == "u" else 64
        return self._decompositions.get(problem, (tol, rank), lambda: decompose(
            k, tol=tol, rank=rank, dtype=problem.dtype, bits=bits))

    # -- the work ------------------------------------------------------------------------

    def prepare(self, problem, ctx):
        """Taps, boundary tables and fill values of the passes, built once for the plan."""
        self.check_options(ctx.backend_options, known=OPTIONS)
        found = self._factors(problem, ctx)
        if found is None or isinstance(found, str):
            raise ValueError(f"backend 'separable' cannot run this problem: "
                             f"{found or 'the kernel values are needed'}")
        prep = _Prepared(problem, found)
        dtype, out_shape, start = problem.dtype, problem.out_shape[-2:], problem.starts[-1]

        def run(x, k, out):
            signal = x
            # The team: what pays for itself, on the cores other processes leave free now.
            wanted = team_size(ctx.threads, prep.serial_seconds)
            with native_threads(wanted, key=problem.key) as threads:
                # Leading axes of N-D kernels (rank 1): one pass each, a full-size intermediate.
                for taps, table, outer, n, inner, o, fill in prep.lead:
                    result = np.empty(outer * o * inner, dtype)
                    _cy.axis_pass(signal.reshape(-1), outer, n, inner, taps, table, fill,
                                  result, o, threads)
                    signal = result
                workers = min(threads, prep.strips // 2 + 1)
                scratch = _scratch(workers * prep.scratch_size, dtype)
                job = _cy.separable_2d(
                    signal.reshape(-1), prep.planes, prep.rows, prep.cols, prep.us, prep.upads,
                    prep.vs, prep.row_table, prep.col_table, start, prep.fill,
                    out.reshape(-1), *out_shape, scratch)
                job.run(workers)

        return run


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
        # One thread's time, for ``convcore.plugin.worth``: "is another thread worth it".
        self.serial_seconds = _serial_seconds(problem, self.us.shape[0])
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


def _serial_seconds(problem, rank):
    """One thread's predicted time of the passes (the call's own overhead apart).

    The rows are rounded up to whole strips (a short last strip computes rows nobody
    reads); the vertical pass runs over every signal column the horizontal pass reads (up to
    ``o_cols + kw - 1``: a 'valid' 48^2 k24 result has 25 columns, its vertical pass 48);
    leading axes of N-D kernels add one pass each over their intermediate.
    """
    dtype = problem.dtype
    strip = _cy.strip_rows()
    planes = _prod(problem.out_shape[:-2])
    o_rows, o_cols = problem.out_shape[-2:]
    kh, kw = problem.k_shape[-2:]
    strips = planes * -(-o_rows // strip)
    lead = _work_per_output(problem.k_shape, rank)[1] - rank * (kh + kw)
    columns = min(problem.x_shape[-1], o_cols + kw - 1)
    macs = strips * strip * rank * (kh * columns + kw * o_cols) + problem.out_size * lead
    blocking = _cy.blocking()
    if dtype.kind == "f" and blocking["vectorized"]:
        # Columns past the last whole register block run in scalar loops, one lane per
        # instruction: an 8-column image is all tail (0.23 us per strip and term at k5 float32,
        # 0.08 at 32 columns, where there is none).
        item = dtype.itemsize
        tails = strips * strip * rank * (
            kh * (columns % (blocking["vertical_bytes"] // item))
            + kw * (o_cols % (blocking["horizontal_bytes"] // item)))
        macs += tails * (blocking["vector_bytes"] // item - 1)
    passes = (_prod(problem.x_shape) + problem.out_size
              + STREAM_PASSES_PER_TERM * (rank - 1) * problem.out_size)
    return (macs * _seconds_per_mac(dtype) + passes * dtype.itemsize * machine.SECONDS_PER_BYTE
            + strips * rank * machine.SECONDS_PER_STRIP_TERM)


def _work_per_output(k_shape, rank):
    """(direct multiply-adds per output, multiply-adds per output in rank-`rank` passes)."""
    direct = _prod(k_shape)
    lead = sum(n for n in k_shape[:-2] if n > 1)
    return direct, lead + rank * (k_shape[-2] + k_shape[-1])


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
