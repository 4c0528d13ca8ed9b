"""``im2col``: convolution as BLAS matrix products, in blocks that fit a small workspace.

CNN layers (:class:`convcore.LayerProblem`, ``convcore.nn.conv2d``): the patches a block of
output rows reads form a ``(C/groups * kh * kw) x (rows * Wo)`` matrix; one GEMM with the
group's ``(K/groups) x (C/groups * kh * kw)`` weights produces those rows for every filter.
That is a real matrix product (many channels times many filters), and BLAS runs it near its
peak; a 1x1 stride-1 layer needs no unfolding at all. A layer's gradients (the directions
'input_grad', 'weight_grad' and 'grads' of a LayerProblem) are matrix products over the
same windows: ``_grads.py``.

One signal and one kernel (``convolve``/``correlate``, any rank, every mode and boundary):
the textbook patch matrix times the kernel as a vector is a matrix-*vector* product over
``kernel.size`` times the image: memory-bound, and slow. The default *banded* form instead
cuts each boundary-extended row into chunks of B samples and multiplies them, for every
kernel row, with a ``(B + kw - 1) x B`` Toeplitz matrix of that row's taps: a real GEMM at the
price of ``(B + kw - 1) / kw`` times the multiply-adds, with no patch matrix at all. Each
thread owns its blocks and calls a single-threaded BLAS, so unfolding and multiplying overlap
and the workspace is ``threads x`` a budget of about 1 MiB (never above ``max_memory``).

Integers (which reach backends as uint64) are computed in float64 when the a-priori bound
``max|x| * max|k| * kernel size < 2**53`` proves every partial sum exact; otherwise the
backend declines. Object arrays and fftconvolve's broadcast axes are declined too.
"""

import numpy as np

from convcore.plugin import (
    Backend, extension_tables, native_threads, over_batch, serial_blas, transposed_padding,
    thread_rows, worth, team_size as live_team_size,
)

from . import _cy, _plan
from ._grads import gradient_runner, gradient_workspace
from ._plan import LayerBlocks, SignalBlocks, layer_cost, layer_workspace, signal_cost

FORMS = ("banded", "patch")
EXACT_LIMIT = 2 ** 53


class Im2colBackend(Backend):
    """Unfolding + BLAS GEMM (see the module docstring)."""

    name = "im2col"
    kind = "direct"

    # --- what it serves -----------------------------------------------------------------

    def supports(self, problem, ctx):
        if problem.kind == "layer":
            return _layer_verdict(problem)
        if problem.dtype.kind == "O":
            return "im2col multiplies with BLAS, which has no object arrays"
        if problem.is_batched:
            return ("im2col does not broadcast fftconvolve's batch axes (axes=); the fft and "
                    "naive backends do")
        if problem.dtype == np.uint64:
            bound = _integer_bound(problem)
            if bound >= EXACT_LIMIT:
                return (f"im2col computes integers in float64, exact only while max|x| * max|k| "
                        f"* kernel size < 2**53; here the bound is {bound:.3g}")
        return True

    def workspace(self, problem, ctx):
        if problem.kind == "layer" and problem.direction != "forward":
            return gradient_workspace(problem, ctx)
        threads = planned_team(problem, ctx)
        if problem.kind == "layer":
            return layer_workspace(problem, threads, ctx.max_memory)
        return SignalBlocks(problem, threads, self._form(ctx),
                            ctx.max_memory).workspace(threads)

    def cost(self, problem, ctx):
        threads = planned_team(problem, ctx)
        if problem.kind == "layer":
            return layer_cost(problem, threads, ctx.max_memory)
        return signal_cost(problem, threads, self._form(ctx), ctx.max_memory)

    def calibrate(self, ctx, timer):
        return _plan.calibrate(self, ctx, timer)

    def _form(self, ctx):
        options = ctx.backend_options
        self.check_options(options, known=("form",))
        form = options.get("form", "banded")
        if form not in FORMS:
            raise ValueError(f"backend_options: im2col's 'form' must be 'banded' or 'patch', "
                             f"got {form!r}")
        return form

    # --- running ------------------------------------------------------------------------

    def prepare(self, problem, ctx):
        """Block sizes and boundary tables, decided once for the plan's team; each call
        sizes its own team from it, live (``convcore.plugin.team_size``)."""
        if problem.kind == "layer" and problem.direction != "forward":
            self.check_options(ctx.backend_options)
            return gradient_runner(problem, ctx)
        threads, alone = planned_team(problem, ctx), _one_thread_seconds(problem, ctx)
        if problem.kind == "layer":
            self.check_options(ctx.backend_options)
            blocks = LayerBlocks(problem, threads, ctx.max_memory)
            if _numpy_pointwise(problem, blocks):
                return lambda x, k, out: _run_pointwise(x, k, problem, out, threads, alone)
            return lambda x, k, out: _run_layer(x, k, problem, out, blocks, threads, alone)
        form = self._form(ctx)
        signal = _SignalRun(problem, threads, alone, form, ctx.max_memory)
        if problem.dtype == np.uint64:
            return lambda x, k, out: _run_integer(x, k, problem, out, signal)
        return lambda x, k, out: signal(x, problem.taps(k), out, problem.fillvalue)


def _layer_verdict(p):
    """Every forward layer; the gradients of real ones (see ``_grads.py``)."""
    if p.direction == "forward":
        return True
    if p.dtype.kind != "f":
        return f"im2col computes the gradients of real layers, not {p.dtype}"
    if p.direction == "grads" and (
            p.stride != (1, 1) or transposed_padding((p.kh, p.kw), p.padding, p.dilation) is None):
        return ("im2col computes both gradients in one pass for stride 1 with even padding no "
                "wider than the kernel's span; ask for 'input_grad' and 'weight_grad'")
    return True


def planned_team(problem, ctx):
    """Threads a plan counts on: the call's thread count, or fewer where another thread would
    not pay for itself (``convcore.plugin.worth``)."""
    if ctx.threads == 1:
        return 1
    return worth(ctx.threads, _one_thread_seconds(problem, ctx))


def _one_thread_seconds(problem, ctx):
    if problem.kind == "signal":
        return signal_cost(problem, 1, backend._form(ctx), ctx.max_memory)
    return layer_cost(problem, 1, ctx.max_memory)


def _live_team(planned, alone):
    """The cores other processes leave free now, out of the plan's team."""
    return live_team_size(planned, alone) if planned > 1 else 1


def _integer_bound(problem):
    max_x, max_k = problem.max_abs
    fill = abs(int(np.asarray(problem.fillvalue).view(np.int64)))
    taps = int(np.prod([problem.k_shape[a] for a in problem.axes]))
    return max(max_x, fill) * max_k * taps


def _run_layer(x, w, p, out, blocks, planned, alone):
    nchw_out = out
    if p.layout == "NHWC":
        # The kernels read channel planes: transpose in, compute, transpose out.
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        nchw_out = np.empty((p.N, p.K, p.out_h, p.out_w), p.dtype)
    with native_threads(_live_team(planned, alone), key=p.key) as threads:
        scratch = thread_rows(threads, blocks.per_thread // p.dtype.itemsize, p.dtype)
        with serial_blas:
            _cy.layer_forward(x, w, nchw_out, p.groups, p.stride[0], p.stride[1],
                              p.padding[0][0], p.padding[1][0], p.dilation[0], p.dilation[1],
                              blocks.rows, scratch, threads)
    if p.layout == "NHWC":
        out[...] = nchw_out.transpose(0, 2, 3, 1)


def _numpy_pointwise(p, blocks):
    """A real 1x1 stride-1 layer that NumPy's matmul takes as it is (NCHW, or NHWC in one
    group; see ``_run_pointwise``)."""
    return (blocks.pointwise and p.dtype.kind == "f"
            and (p.layout == "NCHW" or p.groups == 1))


def _run_pointwise(x, w, p, out, planned, alone):
    """A 1x1 stride-1 layer is a matrix product per image, with no unfolding:
    ``out[n] = W (K x C) @ x[n] (C x H*W)`` per group (NCHW) or ``x[n] (H*W x C) @ W^T``
    (NHWC). It runs through NumPy's matmul, whose OpenBLAS was 15-20% faster at these
    shapes than the one SciPy's Cython BLAS links (NumPy 2.4 bundles OpenBLAS 0.3.31, SciPy
    1.17 0.3.30; 256 -> 64 channels of 56^2, 8 images: 10.5 against 12.9 ms on one thread),
    on convcore's threads over images (or over columns when there are fewer images than
    threads), each with a single-threaded BLAS."""
    threads = _live_team(planned, alone)
    kg, cg, positions = p.K // p.groups, p.C // p.groups, p.H * p.W
    if p.layout == "NHWC":
        rows, weights = x.reshape(p.N, positions, p.C), w.reshape(p.K, p.C).T
        results = out.reshape(p.N, positions, p.K)
        product = lambda n, c: np.matmul(rows[n, c], weights, out=results[n, c])  # noqa: E731
    else:
        rows, weights = x.reshape(p.N, p.groups, cg, positions), w.reshape(p.groups, kg, cg)
        results = out.reshape(p.N, p.groups, kg, positions)
        product = lambda n, c: np.matmul(  # noqa: E731
            weights, rows[n, :, :, c], out=results[n, :, :, c])
    over_batch(lambda task: product(*task), _pointwise_tasks(p.N, positions, threads), threads)


def _pointwise_tasks(images, positions, threads):
    """(images, positions) slices: one run of images per thread, or column blocks of each
    image when there are fewer images than threads."""
    if images >= threads:
        size = -(-images // threads)
        return [(slice(i, i + size), slice(None)) for i in range(0, images, size)]
    size = -(-positions // -(-threads // images))
    return [(slice(n, n + 1), slice(c, c + size))
            for n in range(images) for c in range(0, positions, size)]


def _toeplitz(taps, blocks):
    """Per kernel row r: T[r, t, u] = taps_r[t - u] for 0 <= t - u < kw (else 0).

    With z_r = (b - 1 zeros, taps_r, zeros), T[r, t, u] = z_r[t + b - 1 - u]: a sliding
    window over z_r read backwards, copied once (a column at a time cost 128 Python steps
    and kw strided writes each, 4 ms for kw = 4096).
    """
    b, kw = blocks.chunk, blocks.kw
    rows = taps.reshape(-1, kw)
    height = blocks.pieces * b
    z = np.zeros((rows.shape[0], height + b - 1), taps.dtype)
    z[:, b - 1:b - 1 + kw] = rows
    windows = np.lib.stride_tricks.sliding_window_view(z, b, axis=1)[:, :height, ::-1]
    return np.ascontiguousarray(windows)


class _SignalRun:
    """One signal problem's blocks and boundary tables (built once), run per call."""

    def __init__(self, p, threads, alone, form, max_memory):
        self.planned, self.alone, self.form, self.key = threads, alone, form, (p.key, form)
        self.blocks = SignalBlocks(p, threads, form, max_memory)
        b = self.blocks
        self.tables = extension_tables(b.xs, b.ks, b.os, b.starts, p.boundary)
        # NaN or inf in a banded problem's signal: recomputed with patches (see __call__).
        self.patches = None
        if form == "banded":
            self.patches = _SignalRun(p, threads, alone, "patch", max_memory)

    def __call__(self, x, taps, out, fill):
        with native_threads(_live_team(self.planned, self.alone), key=self.key) as threads:
            finite = self._pass(x, taps, out, fill, threads)
        if not finite:
            # NaN or inf in the signal: a banded product multiplies each by the Toeplitz
            # zeros of its chunk (NaN * 0 = NaN). Patches keep them local.
            self.patches(x, taps, out, fill)

    def _pass(self, x, taps, out, fill, threads):
        """One pass on `threads` threads; False if the banded form met NaN or inf."""
        blocks = self.blocks
        rows_scratch = thread_rows(threads, blocks.rows_len, taps.dtype)
        out_scratch = thread_rows(threads, blocks.out_len, taps.dtype)
        args = (x.reshape(-1), blocks.xs, blocks.ks, blocks.os)
        tail = (out.reshape(-1), self.tables, blocks.starts[-1], fill, blocks.rows, blocks.seg)
        with serial_blas:
            if self.form == "banded":
                return _cy.banded_correlate(*args, _toeplitz(taps, blocks), *tail, blocks.chunk,
                                            rows_scratch, out_scratch, threads)
            _cy.patch_correlate(*args, taps.reshape(-1), *tail, rows_scratch, out_scratch,
                                threads)
            return True


def _run_integer(x, k, p, out, signal):
    """Exact integers through float64 (supports() proved the bound); uint64 bits back."""
    as_float = lambda a: a.view(np.int64).astype(np.float64)  # noqa: E731
    fill = float(np.asarray(p.fillvalue).view(np.int64))
    result = np.empty(p.out_shape, np.float64)
    signal(as_float(x), p.taps(as_float(k)), result, fill)
    np.rint(result, out=result)
    out[...] = result.astype(np.int64).view(np.uint64)


backend = Im2colBackend()
