"""``openmp``: the direct method done the way high-performance libraries do it.

Same algorithm as ``naive`` (every output, every tap), restructured for the machine:

- **register blocking**: a block of R output rows x a strip of JB output columns is
  accumulated in vector registers for the whole tap loop; every signal load feeds R
  fused multiply-adds (``_cy.pyx`` explains the loop);
- **threads**: OpenMP ``prange`` over the row blocks, the GIL released for the whole loop,
  each thread writing (and so first-touching) the output rows it owns;
- **borders without a padded copy**: rows through pointers found in the boundary tables,
  columns read in place except for the strips that cross an edge.

Every rank folds onto one loop over stacks of 2-D planes: a 2-D problem is one plane, an N-D
one adds a *slice* per tap of the leading axes (3-D: one per depth tap, all accumulated in the
same registers); a 1-D one with a long kernel becomes rows of a 2-D problem (polyphase, so
loads are shared across rows again), with a short kernel a single row. Complex inputs run as
four real passes (two calls of two slices each: re = xr*wr - xi*wi, im = xr*wi + xi*wr);
integers run as uint64 vectors, whose wrapping arithmetic is exactly SciPy's once cast back.
"""

import collections

import numpy as np

from convcore.plugin import (
    Backend, cpu_budget, extension_tables, native_threads, run_batched, team_size,
    thread_rows, worth,
)

from . import _cy, _model
from ._shapes import _polyphase_pays, choose_variant, polyphase_shape
from ._model import (depthwise_seconds, predict_seconds, serial_seconds, threads_to_use,
                     work_shape)

_REAL = {np.dtype(np.complex64): np.dtype(np.float32),
         np.dtype(np.complex128): np.dtype(np.float64)}


class OpenMPBackend(Backend):
    """Register-blocked, OpenMP-parallel direct loop (see the module docstring)."""

    name = "openmp"
    kind = "direct"

    def build_config(self):
        """The register block shapes (rows x float32 columns) this build uses, how it runs a
        block's edge rows and which kernel sizes have their own compiled loop (``_kernels.h``;
        docs/openmp.md, "Phases" and "Fixed sizes")."""
        names = ("medium results", "short results or kernels", "1-D", "tall results")
        shapes = [_cy.geometry(0, variant) for variant in range(len(names))]
        fixed = {name: ", ".join(f"{k}x{k}" for k in range(1, 64)
                                 if _cy.fixed_kernel(0, variant, k, k))
                 for variant, name in enumerate(names)}
        return {"blocks": ", ".join(f"{name} {r}x{jb}" for name, (r, jb) in zip(names, shapes)),
                "edge rows": "paired in phases" if _cy.phase_loop() else "one by one",
                "fixed kernels": "; ".join(f"{name} {sizes}" for name, sizes in fixed.items()
                                           if sizes) or "none"}

    def supports(self, problem, ctx):
        if problem.kind == "layer":
            return _depthwise_verdict(problem)
        if problem.dtype.kind == "O":
            return "openmp computes in machine types; object arrays take the naive backend"
        return True

    def cost(self, problem, ctx):
        if problem.kind == "layer":
            return depthwise_seconds(problem, _depthwise_team(problem, ctx))
        return predict_seconds(problem, _team(problem, ctx))

    def calibrate(self, ctx, timer):
        return _model.calibrate(self, ctx, timer)

    def workspace(self, problem, ctx):
        """Bytes allocated per call beyond the result (all as NumPy arrays)."""
        if problem.kind == "layer":
            # The forward loop writes the result and nothing else; the weight gradient sums
            # in a row per tap and thread.
            if problem.direction == "weight_grad":
                return (ctx.threads * problem.kh * problem.kw * problem.out_w
                        * problem.dtype.itemsize)
            return 0
        shape = work_shape(problem)
        threads = _team(problem, ctx)
        item = problem.dtype.itemsize // (2 if problem.dtype.kind == "c" else 1)
        # Per-thread row pointers and edge tiles; padded taps; index tables and plane lists.
        total = threads * (shape.pointers * 8 + shape.tile * item)
        total += item * shape.padded_taps * (2 if problem.dtype.kind == "c" else 1)
        total += 8 * (4 * (sum(problem.out_shape) + sum(problem.k_shape)) + 2 * shape.nd
                      * shape.n_oplanes + 2 * shape.n_strips)
        x_size = int(np.prod(problem.x_shape, dtype=np.int64))
        if problem.dtype.kind == "c":
            # The signal as real and imaginary planes, one real result plane, split taps.
            total += item * (2 * x_size + problem.out_size + 2 * int(np.prod(problem.k_shape)))
        if problem.ndim == 1 and shape.rows > 1:
            # 1-D folded onto rows: the extended signal is materialized (n + m + 2 P).
            total += item * (x_size + problem.k_shape[0] + 2 * shape.strip)
        if problem.is_batched:
            total += problem.dtype.itemsize * int(np.prod([problem.out_shape[a]
                                                           for a in problem.axes]))
        return int(total)

    def prepare(self, problem, ctx):
        """Layouts (block shape, boundary tables, strip offsets) built once for the plan."""
        self.check_options(ctx.backend_options)
        if problem.kind == "layer":
            return _depthwise_runner(problem, _depthwise_team(problem, ctx))
        axes = problem.axes
        out_shape = tuple(problem.out_shape[a] for a in axes)
        slices = max(problem.out_size // max(int(np.prod(out_shape)), 1), 1)  # batch axes
        correlator = _Correlator(
            tuple(problem.x_shape[a] for a in axes), tuple(problem.k_shape[a] for a in axes),
            out_shape, tuple(problem.starts[a] for a in axes), problem.boundary,
            problem.fillvalue, problem.dtype, _team(problem, ctx),
            serial_seconds(problem) / slices, problem.key)
        if problem.is_batched:
            return lambda x, k, out: run_batched(x, problem.taps(k), problem, out, correlator)
        if problem.dtype.kind != "c":
            # Real taps are the kernel or its reversed view: the loop reads them through
            # their strides, so no copy is made.
            flip = (slice(None, None, -1),) * problem.ndim if problem.flip else ()
            return lambda x, k, out: correlator(x, k[flip], out)
        return lambda x, k, out: correlator(x, problem.taps(k), out)


def _team(problem, ctx):
    """Threads a plan of this problem counts on (``_model.threads_to_use``)."""
    return threads_to_use(problem, min(ctx.threads, cpu_budget()))


class _Correlator:
    """out = correlation of x with taps w (same rank), extended by `boundary`: everything
    that depends on shapes only is built once, here."""

    def __init__(self, x_shape, w_shape, out_shape, starts, boundary, fill, dtype, team,
                 serial, key):
        # `team` is what the plan counts on; each call sizes its own from it, live.
        self.fill, self.team, self.dtype = fill, team, dtype
        self.serial, self.key = serial, key
        self.complex = dtype.kind == "c"
        real = _REAL[dtype] if self.complex else dtype
        out_size = int(np.prod(out_shape))
        self.polyphase = None
        if len(x_shape) == 1 and not self.complex and _polyphase_pays(dtype, w_shape[0], out_size):
            self.polyphase = _Polyphase(x_shape[0], w_shape[0], out_size, starts[0], boundary,
                                        fill, dtype)
        if len(x_shape) == 1:  # one row of a 2-D problem
            x_shape, w_shape, out_shape = (1,) + x_shape, (1,) + w_shape, (1,) + out_shape
            starts = (0,) + tuple(starts)
        self.lay = _layout(x_shape, w_shape, out_shape, tuple(starts), boundary, real,
                           self.complex)
        if self.complex:
            self.fillrows = np.empty((2, max(x_shape[-1], 1)), real)
            self.fillrows[0], self.fillrows[1] = np.real(fill), np.imag(fill)
        else:
            self.fillrows = np.full((1, max(x_shape[-1], 1)), fill, dtype=real)
        self.fill_is_zero = bool(fill == 0)
        self.loop = None
        if not self.complex:
            lay = self.lay
            n_cchunks, strips_per_chunk = _column_chunks(lay, team)
            self.loop = _cy.PlaneLoop(
                lay.type_code, lay.variant, int(np.prod(x_shape)), x_shape[-2], x_shape[-1],
                lay.plane_src, lay.slice_fill, self.fillrows, self.fill_is_zero,
                w_shape[-2], w_shape[-1], lay.row_table, lay.col_table, lay.col_run,
                lay.strip_off, out_shape[-2], out_shape[-1], lay.n_oplanes, n_cchunks,
                strips_per_chunk)

    def __call__(self, x, w, out):
        # The cores other processes leave free now (``convcore.plugin.team_size``). A call on one
        # thread goes straight to the loop: no parallel region, no reservation in the thread
        # budget and no stall bookkeeping (about 5 us, 10-20% of a 256^2 k5 call), so a busy
        # machine that leaves one core costs no more than threads(1).
        team = team_size(self.team, self.serial) if self.team > 1 else 0
        if self.polyphase is not None and (x.dtype.kind == "u" or np.isfinite(x).all()):
            # (The zero-padded taps of the last kernel row meet real signal values: a NaN or
            # inf there would leak as 0 * inf into outputs it must not reach, so non-finite
            # signals keep the one-row loop, which multiplies only real taps.)
            self.polyphase(x, w, out, max(team, 1), self.key)
            return
        if self.loop is not None:
            if w.ndim > 3:
                w = w.reshape(self.lay.nd_taps, *w.shape[-2:])
            if team <= 1:
                self.loop.run(x, w, out, 1)
                return
            with native_threads(team, key=self.key) as threads:
                self.loop.run(x, w, out, threads)
            return
        # Complex: four real passes, re = xr*wr - xi*wi and im = xr*wi + xi*wr, two slices
        # per call.
        lay = self.lay
        if x.ndim == 1:
            x, w, out = x[None, :], w[None, :], out[None, :]
        w = w.reshape(lay.nd_taps, *w.shape[-2:])
        planes = np.stack([x.real, x.imag])
        wr, wi = np.ascontiguousarray(w.real), np.ascontiguousarray(w.imag)
        part = np.empty(out.shape, planes.dtype)
        for taps, target in (((wr, -wi), out.real), ((wi, wr), out.imag)):
            _run_planes(lay, planes, np.concatenate(taps), self.fillrows, self.fill_is_zero,
                        part, max(team, 1), self.key)
            target[...] = part


class _Polyphase:
    """1-D as 2-D: rows of P outputs, kernel rows of P taps, so loads are shared across rows.

    With c = r P + u and tap b = a P + j, ``out[r P + u] = sum_a sum_j e[(r + a) P + u + j]
    * w[a P + j]`` where e is the extended signal: a 2-D correlation whose input row i is the
    run of e starting at i P (rows overlap; the row pointers do it without copying) and whose
    kernel has ceil(m / P) rows of P taps (zero-padded). The extended signal is materialized
    once per call, O(n + m) next to the O(n m) multiply-adds. The last ``L mod P`` outputs
    take a small matrix-vector product.
    """

    def __init__(self, n, m, length, start, boundary, fill, dtype):
        type_code = _cy.TYPE_CODES[dtype.name]
        variant, P = polyphase_shape(type_code, m, length)
        self.m, self.length, self.start, self.fill, self.dtype, self.P = (
            m, length, start, fill, dtype, P)
        self.n_taps_rows = -(-m // P)
        self.n_rows = length // P
        self.count = length + m - 1
        self.table = extension_tables((n,), (m,), (length,), (start,), boundary)[0, :self.count]
        # The interior is one slice of x; only the ends go through the boundary table.
        lo, hi = min(max(-start, 0), self.count), max(min(n - start, self.count), 0)
        self.lo, self.hi = min(lo, hi), hi
        # Ends that only read the zero fill are already zeros in the extended signal.
        self.ends = [part for part in (slice(0, self.lo), slice(self.hi, self.count))
                     if not (fill == 0 and (self.table[part] < 0).all())]
        self.lay = _polyphase_layout(type_code, variant, self.n_rows, self.n_taps_rows)
        self.fillrows = np.zeros((1, P), dtype)

    def __call__(self, x, w, out, team, key):
        P, m, count, lo, hi = self.P, self.m, self.count, self.lo, self.hi
        extended = np.zeros((self.n_rows + self.n_taps_rows) * P + P, self.dtype)
        extended[lo:hi] = x[lo + self.start:hi + self.start]
        table = self.table
        for part in self.ends:
            extended[part] = np.where(table[part] >= 0, x[np.maximum(table[part], 0)],
                                      self.fill)
        taps = np.zeros(self.n_taps_rows * P, self.dtype)
        taps[:m] = w
        done = self.n_rows * P
        _run_planes(self.lay, extended, taps.reshape(1, self.n_taps_rows, P), self.fillrows,
                    True, out[:done].reshape(self.n_rows, P), team, key, xcols=P)
        if done < self.length:
            # np.correlate, not a sliding window view times w: the view's construction and a
            # product over overlapping strides cost 25-30 us a call at 1e4 samples (a fifth
            # of a 1e4 x 256 call). Real dtypes only here, so no conjugate is taken.
            out[done:] = np.correlate(extended[done:count], w)


def _polyphase_layout(type_code, variant, n_rows, n_taps_rows):
    rows, period = _cy.geometry(type_code, variant)
    arrays = [np.zeros((1, 1), np.intp), np.zeros(1, np.intp),
              np.arange(n_rows + n_taps_rows - 1, dtype=np.intp),
              np.arange(2 * period - 1, dtype=np.intp),
              np.arange(2 * period - 1, 0, -1, dtype=np.intp),
              np.zeros(1, np.intp)]
    for a in arrays:
        a.flags.writeable = False
    return Layout(type_code, variant, rows, period, 1, *arrays, 1, -(-n_rows // rows), 1)


Layout = collections.namedtuple(
    "Layout", "type_code variant rows strip nd_taps plane_src slice_fill row_table col_table "
              "col_run strip_off n_oplanes n_rblocks n_strips")


def _layout(x_shape, k_shape, out_shape, starts, boundary, dtype, complex_):
    """Everything about a call that depends on shapes only (built once per plan; arrays
    read-only)."""
    type_code = _cy.TYPE_CODES[np.dtype(dtype).name]
    tables = extension_tables(x_shape, k_shape, out_shape, starts, boundary)
    plane_src = _plane_sources(x_shape, k_shape, out_shape, tables)
    nd_taps = plane_src.shape[1]
    slice_fill = np.zeros(nd_taps, np.intp)
    if complex_:
        # Slices [0, nd) read the real planes, [nd, 2 nd) the imaginary ones (fill row 1).
        n_planes = int(np.prod(x_shape[:-2], dtype=np.intp))
        plane_src = np.concatenate([plane_src, np.where(plane_src >= 0, plane_src + n_planes, -1)],
                                   axis=1)
        slice_fill = np.repeat(np.arange(2, dtype=np.intp), nd_taps)
    (orows, ocols), (kr, kc) = out_shape[-2:], k_shape[-2:]
    variant = choose_variant(type_code, orows, ocols, kr)
    rows, strip = _cy.geometry(type_code, variant)
    row_table = tables[-2, :orows + kr - 1]
    col_table = tables[-1, :ocols + kc - 1]
    col_run = _runs(col_table)
    n_strips = -(-ocols // strip)
    strip_off = _strip_offsets(col_table, col_run, ocols, strip, kc, n_strips)
    arrays = [np.ascontiguousarray(a, np.intp) for a in
              (plane_src, slice_fill, row_table, col_table, col_run, strip_off)]
    for a in arrays:
        a.flags.writeable = False
    return Layout(type_code, variant, rows, strip, nd_taps, *arrays, plane_src.shape[0],
                  -(-orows // rows), n_strips)


def _plane_sources(x_shape, k_shape, out_shape, tables):
    """Signal plane read by each (output plane, leading tap) pair, -1 where outside.

    The leading axes (all but the last two) are folded: output plane o of the flattened
    leading output index reads, for leading tap j, the signal plane at the extended
    coordinates o + j through each leading axis' boundary table.
    """
    lead = len(x_shape) - 2
    src = np.zeros((1,) * (2 * lead), np.intp)
    for d in range(lead):
        o = np.arange(out_shape[d])
        j = np.arange(k_shape[d])
        idx = tables[d][o[:, None] + j[None, :]]
        shape = [1] * (2 * lead)
        shape[d], shape[lead + d] = out_shape[d], k_shape[d]
        idx = idx.reshape(shape)
        src = np.where((src < 0) | (idx < 0), -1, src * x_shape[d] + idx)
    n_out = int(np.prod(out_shape[:lead], dtype=np.intp))
    n_taps = int(np.prod(k_shape[:lead], dtype=np.intp))
    return np.broadcast_to(src, tuple(out_shape[:lead]) + tuple(k_shape[:lead])).reshape(
        n_out, n_taps)


def _run_planes(lay, x, w, fillrows, fill_is_zero, out, team, key, xcols=None):
    """Run the compiled loop on stacked planes (see _cy.correlate) with up to `team` threads
    (`key` names the work for the stall rule of ``convcore.plugin.team_size``).

    `xcols` overrides the signal's row stride (the 1-D polyphase rows overlap).
    """
    R, JB = lay.rows, lay.strip
    nd, kr, kc = w.shape
    wp = np.zeros((nd, kr + 2 * (R - 1), kc), x.dtype)
    wp[:, R - 1:R - 1 + kr] = w
    orows, ocols = out.shape[-2:]
    with native_threads(team, key=key) as threads:
        n_cchunks, strips_per_chunk = _column_chunks(lay, threads)
        nt = R + kr - 1
        # Per thread: the block's row pointers and three edge tiles with their row pointers.
        rows_scratch = thread_rows(threads, 4 * nd * nt, np.intp)
        tile_scratch = thread_rows(threads, 3 * nd * nt * (JB + kc - 1), x.dtype)
        _cy.correlate(
            lay.type_code, lay.variant, x, x.shape[-2] if x.ndim > 1 else 1,
            x.shape[-1] if xcols is None else xcols, lay.plane_src,
            lay.slice_fill, fillrows, bool(fill_is_zero), wp, kr, kc, lay.row_table,
            lay.row_table.size, lay.col_table, lay.col_table.size, lay.col_run, lay.strip_off,
            out, orows, ocols, lay.n_oplanes, n_cchunks, strips_per_chunk, threads,
            rows_scratch, tile_scratch)


def _column_chunks(lay, threads):
    """(chunks, strips per chunk) of each row block: enough items for every thread (1-D and
    short problems split their strips)."""
    blocks = lay.n_oplanes * lay.n_rblocks
    n_cchunks = 1
    if blocks < 4 * threads and lay.n_strips > 1:
        n_cchunks = min(lay.n_strips, -(-4 * threads // blocks))
    strips_per_chunk = -(-lay.n_strips // n_cchunks)
    return -(-lay.n_strips // strips_per_chunk), strips_per_chunk


def _depthwise_verdict(p):
    """Layers openmp serves: depthwise ones (each input channel its own filters), NCHW,
    real, forward and their weight gradient (a depthwise input gradient of stride 1 is a
    forward depthwise layer). Other layers are GEMMs, which im2col serves."""
    if p.direction not in ("forward", "weight_grad"):
        return (f"openmp computes depthwise layers forward and their weight gradient, not "
                f"{p.direction}")
    if p.groups != p.C or p.K % p.C:
        return (f"openmp serves depthwise layers (groups == C, K a multiple of C); this one "
                f"has C={p.C}, K={p.K}, groups={p.groups}: a GEMM, which im2col serves")
    if p.layout != "NCHW":
        return "openmp's depthwise loop reads NCHW planes; im2col serves NHWC"
    if p.dtype.kind != "f":
        return f"openmp's depthwise loop is real (float32/float64), not {p.dtype}"
    return True


def _depthwise_team(p, ctx):
    return worth(ctx.threads, depthwise_seconds(p, 1))


def _depthwise_runner(p, planned):
    serial = depthwise_seconds(p, 1)
    (ph, _), (pw, _) = p.padding
    if p.direction == "weight_grad":
        def weight_grad(x, grad_out, grad_w):
            team = team_size(planned, serial) if planned > 1 else 1
            with native_threads(team, key=p.key) as threads:
                scratch = thread_rows(threads, _cy.weight_grad_scratch(p.kh, p.kw, p.out_w),
                                      p.dtype)
                _cy.depthwise_weight_grad(x, grad_out, grad_w, p.stride[0], p.stride[1], ph,
                                          pw, p.dilation[0], p.dilation[1], scratch, threads)
        return weight_grad

    def runner(x, weight, out):
        # The cores other processes leave free now, out of the plan's team.
        team = team_size(planned, serial) if planned > 1 else 1
        with native_threads(team, key=p.key) as threads:
            _cy.depthwise_forward(x, weight, out, p.stride[0], p.stride[1], ph, pw,
                                  p.dilation[0], p.dilation[1], threads)
    return runner


def _runs(table):
    """For each entry, how many entries from it on continue a contiguous run of indices."""
    n = table.size
    runs = np.ones(n, np.intp)
    if n > 1:
        breaks = np.flatnonzero(np.diff(table) != 1) + 1       # starts of new runs
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [n]])
        run_id = np.repeat(np.arange(starts.size), ends - starts)
        runs = ends[run_id] - np.arange(n)
    return np.ascontiguousarray(runs, np.intp)


def _strip_offsets(col_table, col_run, ocols, jb, kc, n_strips):
    """First source column of each strip that can be read in place, -1 otherwise."""
    c0 = np.arange(n_strips) * jb
    need = jb + kc - 1
    in_place = (c0 + jb <= ocols) & (c0 + need <= col_table.size)
    ok = np.zeros(n_strips, bool)
    ok[in_place] = (col_table[c0[in_place]] >= 0) & (col_run[c0[in_place]] >= need)
    return np.ascontiguousarray(np.where(ok, col_table[np.minimum(c0, col_table.size - 1)], -1),
                                np.intp)


backend = OpenMPBackend()
