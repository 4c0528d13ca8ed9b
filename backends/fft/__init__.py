"""``fft``: convolution by the convolution theorem, on pyFFTW (FFTW) plans.

The signal and the kernel are zero-padded to a fast transform length on every convolved
axis, transformed (``rfftn`` for real data, ``fftn`` for complex), multiplied and transformed
back: about ``3 N log N`` work in the padded size ``N`` instead of ``out.size * kernel.size``
multiply-adds, so it wins for large kernels. Only the convolved axes are transformed; the
broadcast axes of ``fftconvolve(axes=...)`` ride along as batch dimensions of one plan.
Sizes, paths (full transform, circular for 'wrap', overlap-add) and costs are decided in
``_layout``; plans, buffers and FFTW wisdom live in ``_plans``.

Non-finite input
    A NaN or inf anywhere in either input spreads over the *whole* result under an FFT
    (every output frequency mixes every sample). ``backend="fft"`` does exactly that, as
    SciPy's ``fftconvolve`` does; ``auto`` checks finiteness and takes a direct backend.

Integers
    ``fftconvolve``/``oaconvolve`` give float64 for integer input (SciPy's rule). For
    ``convolve``/``correlate`` on integers the result must be exact, so the backend computes in
    float64, rounds to the nearest integer and serves the problem only when this bound proves
    the rounding exact (otherwise it declines and a direct backend answers)::

        E = g * X * K * (2 * sqrt(nx) * nk + nx * sqrt(nk)) + 2**-40 * X * K * min(nx, nk)
        g = 8 * u * log2(N),  u = 2**-53,  N = product of the transform lengths
        serve only if  E < 0.25  and  X * K * min(nx, nk) < 2**52

    ``X``, ``K`` are the largest magnitudes of signal (plus a fill value) and kernel, rounded
    up to ``2**bits - 1`` (the engine memoizes plans by bit length); ``nx``, ``nk`` their
    element counts on the convolved axes (per block, with E doubled, under overlap-add).
    Derivation: an FFT of length N has a relative 2-norm error of at most ``g`` (Higham,
    *Accuracy and Stability of Numerical Algorithms*, 2nd ed., section 24.1: ``log2(N) * eta``,
    ``eta ~ 7u`` with accurate twiddles). Carried through the product of the spectra
    (``|FFT(k)|_inf <= |k|_1``) and the inverse transform, the error of every output is at
    most ``g * (2 |x|_2 |k|_1 + |x|_1 |k|_2)``; with ``|x|_2 <= X sqrt(nx)``,
    ``|x|_1 <= X nx`` this is the first term. The second covers the rounding of the result
    itself (2**13 times ``u |y|``). Because of ``log2 N`` a longer transform proves less; the
    last clause keeps every exact result representable in float64.
"""

import math
import threading

import numpy as np

from convcore.plugin import (Backend, BoundedTable, ProblemMemo, extension_table,
                             native_threads, team_size)

from . import _cy
from ._layout import chunked, plan_layout, relayout
from ._overlap_add import fill_blocks, run_chunked, sum_blocks
from ._plans import build_plan_set, fill_kernel, save_wisdom, transform_kernel, with_plan_set

_U = 2.0 ** -53
_layouts = ProblemMemo()


def integer_error_bound(x_max, k_max, nx, nk, transform_size):
    """The bound E of the module docstring (float64 error of the rounded FFT result)."""
    g = 8 * _U * math.log2(max(transform_size, 2))
    scale = float(x_max) * float(k_max)
    return (g * scale * (2 * math.sqrt(nx) * nk + nx * math.sqrt(nk))
            + 2.0 ** -40 * scale * min(nx, nk))


def integer_error(p, layout, x_max=None, k_max=None):
    """(E, largest exact result) for integer problem `p` under `layout` (module docstring).

    Overlap-add rounds the sum of two blocks' results, so its E is doubled. Magnitudes taken
    from the problem are rounded up to ``2**bits - 1``: the engine memoizes plans by the bit
    length of max|x|, max|k| and |fill|, so the verdict must not depend on more than that.
    """
    if x_max is None:
        x_max, k_max = ((1 << v.bit_length()) - 1 for v in p.max_abs)
        if p.boundary == "fill":
            fill = abs(int(np.asarray(p.fillvalue, np.uint64).view(np.int64)))
            x_max += (1 << fill.bit_length()) - 1
    nx = math.prod(layout.sig_shape[a] for a in p.axes)
    nk = math.prod(p.k_shape[a] for a in p.axes)
    blocks = 1
    if layout.path == "oa":
        nx = nx // layout.sig_shape[layout.block_axis] * layout.block_step
        blocks = 2
    transform = math.prod(layout.sizes.values())
    bound = blocks * integer_error_bound(x_max, k_max, nx, nk, transform)
    return bound, x_max * k_max * min(nx, nk) * blocks


def integer_bound_verdict(p, layout):
    """True when the rounded float64 FFT is provably exact for integer problem `p`, else why."""
    bound, largest = integer_error(p, layout)
    if largest >= 2 ** 52:
        return (f"integer result could reach {largest:.3g}, beyond the 2**52 float64 "
                "integers an FFT can round exactly; a direct backend is exact")
    if bound >= 0.25:
        return (f"float64 FFT error bound {bound:.3g} (max|x|, max|k| = {p.max_abs}, "
                f"transform {math.prod(layout.sizes.values())}) is not below 0.25, so "
                "rounding cannot be proved exact; a direct backend is exact")
    return True


def layout_for(p, ctx):
    """The transform layout of problem `p` under `ctx` (see ``_layout``), built once per
    problem and context: supports, cost, workspace and prepare all read it.

    Its geometry (path, transform sizes, blocked axis) is chosen once per problem and
    settings, by the first call that asks (a first call's choice counts the planning of
    lengths FFTW has not planned yet): the signature's later calls and every team size reuse
    it, so a repeated call gives the same bits, first call included (docs/fft.md, "The same
    call gives the same bits"). Only threads, chunking and the predicted time follow `ctx`.
    """
    return _layouts.get(p, ctx, lambda: relayout(p, _geometry(p, ctx), ctx.threads,
                                                 ctx.first_call))


def _geometry(p, ctx):
    settings = ("geometry", ctx.max_memory, ctx.plan,
                tuple(sorted(ctx.backend_options.items())))
    return _layouts.get(p, settings, lambda: _shared_geometry(p, settings, ctx))


# Geometries by the problem's key without its kernel values (which a layout does not read),
# not by problem object: auto's plans (one per kernel where the choice reads its values) and
# backend="fft"'s then transform one problem alike, with the same bits. Held per object
# only, each settled on its own lengths, chosen at different moments of the process's
# planning: 1024^2 k31 float32, auto 9.9 ms in blocks of 144 rows, backend="fft" 8.0 ms in
# blocks of 128 (a Xeon, AVX2 build). ``_layouts`` still holds each problem's own, so an
# entry dropped here never changes a live plan's lengths.
_geometries = BoundedTable(1024)
_geometries_lock = threading.Lock()


def _shared_geometry(p, settings, ctx):
    key = (p.without_kernel().key, settings)
    found = _geometries.get(key)
    if found is None:
        found = plan_layout(p, ctx.threads, ctx.max_memory, ctx.plan, ctx.backend_options,
                            ctx.first_call)
        with _geometries_lock:   # the first answer stays: concurrent first calls agree
            stored = _geometries.get(key)
            if stored is None:
                _geometries.put(key, found)
            else:
                found = stored
    return found


class FFTBackend(Backend):
    """pyFFTW convolution (see the module docstring): NaN/inf spread over the output."""

    name = "fft"
    kind = "fft"
    spreads_nonfinite = True

    def supports(self, p, ctx):
        if p.kind != "signal":
            return "fft serves signal convolutions (ConvProblem), not CNN layers"
        _check_options(self, ctx.backend_options)
        if p.dtype.kind == "O":
            return "fft cannot transform object arrays; the naive backend serves them"
        if p.dtype.kind == "u":
            return integer_bound_verdict(p, layout_for(p, ctx))
        return True

    def cost(self, p, ctx):
        return layout_for(p, ctx).seconds

    def calibrate(self, ctx, timer):
        """Fit the cost model's constants on this machine (``_calibrate``)."""
        from ._calibrate import calibrate

        return calibrate(self, ctx, timer)

    def workspace(self, p, ctx):
        """Bytes of the padded transform buffers (signal, kernel, spectra)."""
        return layout_for(p, ctx).bytes

    def prepare(self, p, ctx):
        """The layout (sizes, path, threads, planner effort) per team size; FFTW plan sets
        come from the shared plan cache on each call (``_plans``), since problems of other
        shapes reuse them."""
        _check_options(self, ctx.backend_options)
        layouts = {ctx.threads: layout_for(p, ctx)}
        # The chunked pipeline's workers may follow the load: its chunks are transformed
        # alike whoever takes them. FFTW's own threads may not: a plan made for another
        # thread count may round differently (docs/fft.md, "The same call gives the same
        # bits"), so a one-transform layout keeps the thread setting's plan.
        team_follows_load = chunked(p, layouts[ctx.threads])

        def runner(x, k, out):
            # Threads for FFTW and the chunk pipeline: fewer while other processes hold the
            # cores (``convcore.plugin.team_size``), with the layout made for that many.
            team = team_size(ctx.threads) if team_follows_load else ctx.threads
            with native_threads(team, key=p.key, follow_load=team_follows_load) as threads:
                if not team_follows_load:
                    threads = ctx.threads  # ... even when other Python threads hold the rest
                lay = layouts.get(threads)
                if lay is None:
                    lay = layouts[threads] = layout_for(p, ctx.replace(threads=threads))
                run = _run_circular if lay.path == "circular" else _run_transform
                run(x, k, p, lay, out, lay.effort)
            if lay.effort == "measure":
                save_wisdom()

        return runner


def _check_options(backend, options):
    """backend_options: ``overlap_add`` (True / False / None = by cost) and ``block_length``
    (the overlap-add transform length, at least twice the kernel length minus 2)."""
    backend.check_options(options, known=("overlap_add", "block_length"))
    if options.get("overlap_add") not in (None, True, False):
        raise ValueError(f"backend_options: overlap_add must be True, False or None, got "
                         f"{options['overlap_add']!r}")
    block = options.get("block_length")
    if block is not None and (isinstance(block, bool) or not isinstance(block, int)):
        raise ValueError(f"backend_options: block_length must be an int, got {block!r}")


# --- preparing the inputs --------------------------------------------------------------------

def _as_compute(a, lay):
    """Integers arrive as uint64 (two's complement bits): read them as signed values."""
    if a.dtype == np.uint64:
        return a.view(np.int64)
    return a


def _fill_scalar(p):
    if p.dtype == np.uint64:
        return int(np.asarray(p.fillvalue, np.uint64).view(np.int64))
    return p.fillvalue


def _signal(x, p, lay):
    """The array the transform sees: x, x - fill, or the boundary-extended signal."""
    sig = _as_compute(x, lay)
    if lay.extend:
        index = []
        for a in range(p.ndim):
            if a in p.axes:
                count = p.out_shape[a] + p.k_shape[a] - 1
                index.append(extension_table(p.x_shape[a], p.starts[a], count, p.boundary))
            else:
                index.append(np.arange(p.x_shape[a]))
        sig = sig[np.ix_(*index)]
    if lay.shift_fill:
        work = np.result_type(sig.dtype, lay.float_dtype) if lay.real else p.dtype
        sig = np.subtract(sig, _fill_scalar(p), dtype=work)
    return sig


def _conv_kernel(k, p):
    """Convolution-form kernel: correlation taps flipped back (k itself for a convolution)."""
    kc = _as_compute(k, None)
    if not p.flip:
        kc = kc[tuple(slice(None, None, -1) if a in p.axes else slice(None)
                      for a in range(kc.ndim))]
        if p.conj:
            kc = np.conj(kc)
    return kc


def _fill_corner(buf, src, scale=None):
    """buf[:n0, :n1, ...] = src (times scale), and zero everywhere else in buf."""
    region = tuple(slice(0, n) for n in src.shape)
    target = buf[region]
    if scale is None:
        np.copyto(target, src, casting="unsafe")
    else:
        np.multiply(src, scale, out=target, casting="unsafe")
    for d in range(buf.ndim):
        if src.shape[d] < buf.shape[d]:
            buf[region[:d] + (slice(src.shape[d], None),)] = 0


# --- plan sets -------------------------------------------------------------------------------

def _as_pairs(spectrum, outer, rows):
    """A complex spectrum as a (outer, rows, 2 * rest) array of reals (no copy)."""
    return spectrum.view(spectrum.real.dtype).reshape(outer, rows, -1)


def _multiply(s, threads):
    """Spectra product in place, on the engine's threads when the shapes allow it."""
    xs, ks = s.xs, s.ks
    differ = [d for d in range(xs.ndim) if xs.shape[d] != ks.shape[d]]
    if s.ps is xs and not differ:
        _cy.multiply_spectra(_as_pairs(xs, 1, 1), _as_pairs(ks, 1, 1), threads)
    elif s.ps is xs and len(differ) == 1 and ks.shape[differ[0]] == 1:
        d = differ[0]
        outer = math.prod(xs.shape[:d])
        _cy.multiply_spectra(_as_pairs(xs, outer, xs.shape[d]), _as_pairs(ks, outer, 1),
                                 threads)
    else:
        np.multiply(xs, ks, out=s.ps)


# --- the paths -------------------------------------------------------------------------------

def _store(out, result, p):
    """Copy the wanted window into out; integers are rounded (the bound proved it exact)."""
    if p.dtype == np.uint64:
        np.copyto(out.view(np.int64), np.rint(result), casting="unsafe")
    else:
        np.copyto(out, result, casting="unsafe")


def _add_fill_term(out, k, p, lay):
    """ext(x) = f + ext0(x - f): add f * sum(taps) back after transforming x - f."""
    if not lay.shift_fill:
        return
    if p.dtype == np.uint64:
        total = int(k.view(np.int64).astype(object).sum()) * _fill_scalar(p)
        out += np.uint64(total % 2 ** 64)
    else:
        out += p.fillvalue * p.taps(k).sum(axis=p.axes, keepdims=True)


def _run_transform(x, k, p, lay, out, effort):
    sig = _signal(x, p, lay)
    kc = _conv_kernel(k, p)
    if chunked(p, lay):
        run_chunked(sig, kc, p, lay, out, effort)
        _add_fill_term(out, k, p, lay)
        return
    axes_full = p.axes
    if lay.path == "oa":
        a = lay.block_axis
        x_buf = list(sig.shape[:a]) + [lay.nblocks] + [lay.sizes[a]] + list(sig.shape[a + 1:])
        k_buf = list(kc.shape[:a]) + [1] + [lay.sizes[a]] + list(kc.shape[a + 1:])
        axes = tuple(b + (b >= a) for b in axes_full)
        for b in axes_full:
            if b != a:
                x_buf[b + (b > a)] = lay.sizes[b]
                k_buf[b + (b > a)] = lay.sizes[b]
        kc_view = np.expand_dims(kc, a)
    else:
        x_buf = [lay.sizes.get(b, sig.shape[b]) for b in range(p.ndim)]
        k_buf = [lay.sizes.get(b, kc.shape[b]) for b in range(p.ndim)]
        axes = axes_full
        kc_view = kc
    key = ("fft", lay.path, tuple(x_buf), tuple(k_buf), kc_view.shape, axes, lay.real,
           lay.float_dtype.str, lay.threads, effort)
    scale = 1.0 / math.prod(lay.sizes.values())

    def body(s):
        if lay.path == "oa":
            fill_blocks(s.xa, sig, lay.block_axis, lay.block_step)
        else:
            _fill_corner(s.xa, sig)
        _product_of_spectra(s, kc_view, scale, lay.threads)
        if lay.path == "oa":
            sum_blocks(s.pa, lay, p, out, _store)
        else:
            window = tuple(slice(lay.offsets[b], lay.offsets[b] + p.out_shape[b])
                           if b in p.axes else slice(None) for b in range(p.ndim))
            _store(out, s.pa[window], p)

    build = lambda: build_plan_set(tuple(x_buf), tuple(k_buf), kc_view.shape, axes, lay.real,
                                    lay.float_dtype, lay.threads, effort)
    with_plan_set(key, build, body)
    _add_fill_term(out, k, p, lay)


def _product_of_spectra(s, kernel, scale, threads):
    """With the signal already in ``s.xa``: transform it and the kernel, multiply, invert."""
    fill_kernel(s, kernel, scale)
    s.fx.execute()
    transform_kernel(s)
    _multiply(s, threads)
    s.inv.execute()


def _run_circular(x, k, p, lay, out, effort):
    """'wrap': out[i] = sum_q x[(i - q) mod n] h[q], h = taps folded modulo n."""
    w = _as_compute(p.taps(k), None)
    folded = np.zeros(p.x_shape, np.result_type(w.dtype, lay.float_dtype))
    index = [(-p.starts[a] - np.arange(p.k_shape[a])) % p.x_shape[a] for a in range(p.ndim)]
    np.add.at(folded, np.ix_(*index), w)
    sizes = tuple(p.x_shape)
    key = ("fft", "circular", sizes, p.axes, lay.real, lay.float_dtype.str, lay.threads, effort)
    scale = 1.0 / math.prod(sizes)
    sig = _as_compute(x, lay)

    def body(s):
        _fill_corner(s.xa, sig)
        _product_of_spectra(s, folded, scale, lay.threads)
        if all(p.out_shape[a] <= sizes[a] for a in p.axes):
            _store(out, s.pa[tuple(slice(0, n) for n in p.out_shape)], p)
        else:
            _store(out, s.pa[np.ix_(*(np.arange(L) % n for L, n in zip(p.out_shape, sizes)))], p)

    build = lambda: build_plan_set(sizes, sizes, sizes, p.axes, lay.real, lay.float_dtype,
                                    lay.threads, effort)
    with_plan_set(key, build, body)


backend = FFTBackend()
