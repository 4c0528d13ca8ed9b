# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""im2col kernels: unfold a block of patches into a small workspace, multiply it with BLAS.

Three loops, each over independent *tasks* (blocks of the output) in an OpenMP ``prange``.
Every thread owns one row of the workspace array and calls a single-threaded GEMM (the
caller limits the BLAS pool to one thread while these run), so unfolding and multiplying
overlap across threads and the two thread pools never fight over the two cores.

- ``layer_forward``: CNN layers (NCHW). Per task (image n, group g, block of output rows) the
  patches of the block form a (C/g * kh * kw) x (rows * Wo) matrix; the weights of the group
  multiply it. A 1x1 stride-1 unpadded layer multiplies the input as it lies.
- ``banded_correlate``: one signal, one kernel, any rank >= 2 (1-D arrives as one row). Per
  kernel row, the extended image rows cut into chunks of B samples multiply a small banded
  Toeplitz matrix of that row's taps: no patch matrix at all, only the boundary-extended rows.
- ``patch_correlate``: the textbook single-channel im2col (a patch matrix times the kernel as
  a vector). Memory-bound; kept because it keeps NaN/inf exactly local and for teaching.
"""

from cython.parallel cimport prange
from convcore._cy.gemm cimport sgemm_f, dgemm_f
from libc.string cimport memcpy, memset
from cpython.exc cimport PyErr_CheckSignals

from convcore._cy.blas cimport gemm_rowmajor
from convcore._cy.checks cimport check_at_least, check_table, shape_product
from convcore._cy.fused cimport real_or_complex, real_t
from convcore._cy.openmp cimport omp_get_thread_num
from convcore._cy.unfold cimport ceil_div, clamp, unfold_layer_rows


cdef int _check_signals() except -1 nogil:
    with gil:
        PyErr_CheckSignals()
    return 0


# ---------------------------------------------------------------------------------------------
# CNN layers
# ---------------------------------------------------------------------------------------------

def layer_forward(const real_or_complex[:, :, :, ::1] x, const real_or_complex[:, :, :, ::1] w,
                  real_or_complex[:, :, :, ::1] out, Py_ssize_t groups,
                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                  Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t block_rows,
                  real_or_complex[:, ::1] scratch, int nthreads):
    """out[n, k] = sum over the group's channels and taps of w * the padded input (NCHW).

    Parameters
    ----------
    x : (N, C, H, W); w : (K, C / groups, kh, kw); out : (N, K, Ho, Wo), all C-contiguous.
    sh, sw, ph, pw, dh, dw : stride, leading padding and dilation per axis.
    block_rows : output rows per task (the workspace bound).
    scratch : (threads, C/groups * kh * kw * block_rows * Wo) workspace, or (threads, 0)
        for a 1x1 stride-1 unpadded layer, which needs none.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t K = w.shape[0], cg = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t ho = out.shape[2], wo = out.shape[3]
    cdef Py_ssize_t kg, ckk = cg * kh * kw, nblocks, ntasks  # after the checks (no / 0)
    cdef bint pointwise = kh == 1 and kw == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0
    cdef Py_ssize_t t, n, g, y0, nrows, tid
    cdef const real_or_complex* b
    cdef real_or_complex* cols
    check_at_least(groups, 1, "groups")
    for value, name in ((sh, "sh"), (sw, "sw"), (dh, "dh"), (dw, "dw"),
                        (block_rows, "block_rows"), (nthreads, "nthreads")):
        check_at_least(value, 1, name)
    if C != cg * groups or K % groups:
        raise ValueError(f"w has {cg} channels per group and {K} filters: x must have "
                         f"{cg} * groups = {cg * groups} channels (got {C}) and K divisible "
                         f"by groups = {groups}")
    if out.shape[0] != N or out.shape[1] != K:
        raise ValueError(f"out must have shape ({N}, {K}, Ho, Wo), got "
                         f"({out.shape[0]}, {out.shape[1]}, {out.shape[2]}, {out.shape[3]})")
    if N == 0 or K == 0 or ho == 0 or wo == 0:
        return
    kg = K // groups
    nblocks = ceil_div(ho, block_rows)
    ntasks = N * groups * nblocks
    if pointwise:
        if ho * wo != H * W:
            raise ValueError(f"a 1x1 stride-1 unpadded layer keeps the image size: out "
                             f"{ho}x{wo}, x {H}x{W}")
    elif kh < 1 or kw < 1:
        raise ValueError(f"w must have at least one tap per axis, got {kh}x{kw}")
    elif scratch.shape[0] < nthreads or scratch.shape[1] < ckk * min(block_rows, ho) * wo:
        raise ValueError(f"scratch must have shape (>= {nthreads}, >= "
                         f"{ckk * min(block_rows, ho) * wo})")
    # One parallel region for the whole call: on a loaded 2-core machine, waking the team
    # for many short regions cost more than the work (depthwise layers: 50x). The calling
    # thread (OpenMP thread 0) looks for Ctrl-C between its tasks.
    with nogil:
        for t in prange(ntasks, num_threads=nthreads, schedule="static"):
            if omp_get_thread_num() == 0:
                _check_signals()
            n = t // (groups * nblocks)
            g = (t // nblocks) % groups
            y0 = (t % nblocks) * block_rows
            nrows = min(block_rows, ho - y0)
            tid = omp_get_thread_num()
            if pointwise:
                # The input already is the (C/g) x (H*W) matrix: multiply it in place.
                b = &x[n, g * cg, 0, 0] + y0 * wo
                gemm_rowmajor(kg, nrows * wo, ckk, &w[g * kg, 0, 0, 0], ckk,
                              b, ho * wo, False, &out[n, g * kg, 0, 0] + y0 * wo, ho * wo)
            else:
                cols = &scratch[tid, 0]
                unfold_layer_rows(&x[n, g * cg, 0, 0], H, W, cg, kh, kw, sh, sw, ph, pw,
                                  dh, dw, wo, y0, nrows, cols)
                gemm_rowmajor(kg, nrows * wo, ckk, &w[g * kg, 0, 0, 0], ckk,
                              cols, nrows * wo, False,
                              &out[n, g * kg, 0, 0] + y0 * wo, ho * wo)


# ---------------------------------------------------------------------------------------------
# One signal, one kernel
# ---------------------------------------------------------------------------------------------

cdef struct Geometry:
    # The problem folded to >= 2-D: lead axes, then rows, then columns (the last axis).
    Py_ssize_t ndim, n_lead_out, n_lead_taps, ho, wo, kh, kw, W, H_lines
    Py_ssize_t rows, seg, chunk, pieces, last_start
    Py_ssize_t n_row_blocks, n_segs


cdef struct Block:
    # One task: a lead output index, rows r0 .. r0 + rows - 1, columns c0 .. c0 + cols - 1.
    Py_ssize_t lead, r0, c0, rows, cols


cdef inline Block _task_block(const Geometry* geo, Py_ssize_t t) noexcept nogil:
    cdef Block b
    b.lead = t // (geo.n_row_blocks * geo.n_segs)
    b.r0 = ((t // geo.n_segs) % geo.n_row_blocks) * geo.rows
    b.c0 = (t % geo.n_segs) * geo.seg
    b.rows = min(geo.rows, geo.ho - b.r0)
    b.cols = min(geo.seg, geo.wo - b.c0)
    return b


cdef bint _build_extended_rows(const real_or_complex* x, const Py_ssize_t* xs,
                               const Py_ssize_t* ks, const Py_ssize_t* os,
                               const Py_ssize_t* tables, Py_ssize_t width,
                               Geometry* geo, Py_ssize_t lead, Py_ssize_t r0, Py_ssize_t rb,
                               Py_ssize_t c0, Py_ssize_t ncols, Py_ssize_t row_len,
                               real_or_complex fill, real_or_complex* e) noexcept nogil:
    """Write, for every lead tap, the rb + kh - 1 boundary-extended input rows this block
    reads (columns c0 .. c0 + ncols - 1 of the extended signal), each padded with zeros to
    `row_len`. Return False when a value read is NaN or inf."""
    cdef Py_ssize_t d, jl, rem_o, rem_t, i_d, j_d, src, line, stride, er, q, sc
    cdef Py_ssize_t D = geo.ndim, nrows = rb + geo.kh - 1
    cdef Py_ssize_t qlo = clamp(-geo.last_start - c0, 0, ncols)
    cdef Py_ssize_t qhi = clamp(geo.W - geo.last_start - c0, qlo, ncols)
    cdef const Py_ssize_t* row_table = tables + (D - 2) * width
    cdef const Py_ssize_t* col_table = tables + (D - 1) * width
    cdef const real_or_complex* srow
    cdef real_or_complex* dst
    cdef bint outside, finite = True
    cdef size_t item = sizeof(real_or_complex)
    for jl in range(geo.n_lead_taps):
        # The source line of (lead output index + lead tap), or none (fill value).
        rem_o = lead
        rem_t = jl
        line = 0
        stride = 1
        outside = False
        for d in range(D - 3, -1, -1):
            i_d = rem_o % os[d]
            rem_o = rem_o // os[d]
            j_d = rem_t % ks[d]
            rem_t = rem_t // ks[d]
            src = tables[d * width + i_d + j_d]
            if src < 0:
                outside = True
            line += src * stride
            stride *= xs[d]
        for er in range(nrows):
            dst = e + (jl * nrows + er) * row_len
            src = row_table[r0 + er]
            if outside or src < 0:
                for q in range(ncols):
                    dst[q] = fill
            else:
                srow = x + (line * xs[D - 2] + src) * geo.W
                for q in range(qlo):
                    sc = col_table[c0 + q]
                    dst[q] = srow[sc] if sc >= 0 else fill
                memcpy(dst + qlo, srow + geo.last_start + c0 + qlo, (qhi - qlo) * item)
                for q in range(qhi, ncols):
                    sc = col_table[c0 + q]
                    dst[q] = srow[sc] if sc >= 0 else fill
            memset(dst + ncols, 0, (row_len - ncols) * item)
            for q in range(ncols):
                # x - x is 0 exactly for finite x, NaN for NaN or inf.
                finite &= (dst[q] - dst[q]) == 0
    return finite


cdef int _setup(Geometry* geo, xs, ks, os, Py_ssize_t rows, Py_ssize_t seg, Py_ssize_t chunk,
                Py_ssize_t last_start, Py_ssize_t* cxs, Py_ssize_t* cks,
                Py_ssize_t* cos, Py_ssize_t x_size, Py_ssize_t out_size,
                const Py_ssize_t[:, ::1] tables, int nthreads) except -1:
    """Fill `geo`, checking everything the loops will index by (shapes, tables, sizes)."""
    cdef Py_ssize_t d, D = len(xs)
    if D < 2 or D > 64:
        raise ValueError("im2col kernels take 2 to 64 dimensions")
    if x_size != shape_product(xs, D, "xs"):
        raise ValueError(f"x holds {x_size} values, not the product of xs {tuple(xs)}")
    if out_size != shape_product(os, D, "os"):
        raise ValueError(f"out holds {out_size} values, not the product of os {tuple(os)}")
    shape_product(ks, D, "ks")
    check_at_least(rows, 1, "rows")
    check_at_least(seg, 1, "seg")
    check_at_least(chunk, 1, "chunk")
    check_at_least(nthreads, 1, "nthreads")
    if tables.shape[0] != D:
        raise ValueError(f"tables must have one row per axis ({D}), got {tables.shape[0]}")
    for d in range(D):
        if os[d] and ks[d] < 1:
            raise ValueError(f"ks[{d}] is 0 for a non-empty output")
        if os[d]:
            check_at_least(tables.shape[1], os[d] + ks[d] - 1, f"tables.shape[1] (axis {d})")
            check_table(&tables[d, 0], os[d] + ks[d] - 1, xs[d], f"tables[{d}]")
    geo.ndim = D
    geo.n_lead_out = 1
    geo.n_lead_taps = 1
    for d in range(D):
        cxs[d] = xs[d]
        cks[d] = ks[d]
        cos[d] = os[d]
        if d < D - 2:
            geo.n_lead_out *= os[d]
            geo.n_lead_taps *= ks[d]
    geo.ho = os[D - 2]
    geo.wo = os[D - 1]
    geo.kh = ks[D - 2]
    geo.kw = ks[D - 1]
    geo.W = xs[D - 1]
    geo.rows = rows
    geo.seg = seg
    geo.chunk = chunk
    geo.pieces = ceil_div(chunk + geo.kw - 1, chunk)
    geo.last_start = last_start
    geo.n_row_blocks = ceil_div(geo.ho, rows)
    geo.n_segs = ceil_div(geo.wo, seg)
    return 0


cdef int _check_scratch(Py_ssize_t n, Py_ssize_t length, int nthreads, Py_ssize_t needed,
                        str name) except -1:
    if n < nthreads or length < needed:
        raise ValueError(f"{name} must have shape (>= {nthreads}, >= {needed}), "
                         f"got ({n}, {length})")
    return 0


def banded_correlate(const real_or_complex[::1] x, xs, ks, os,
                     const real_or_complex[:, :, ::1] toeplitz,
                     real_or_complex[::1] out, const Py_ssize_t[:, ::1] tables,
                     Py_ssize_t last_start, real_or_complex fill,
                     Py_ssize_t rows, Py_ssize_t seg, Py_ssize_t chunk,
                     real_or_complex[:, ::1] rows_scratch, real_or_complex[:, ::1] out_scratch,
                     int nthreads):
    """Correlation by banded GEMMs (see the module docstring).

    Parameters
    ----------
    x, out : flat C-ordered signal and result; xs, ks, os their shapes (>= 2-D).
    toeplitz : (lead taps * kh, pieces * chunk, chunk); entry [r, t, u] is tap t - u of
        kernel row r where 0 <= t - u < kw, else 0.
    tables : boundary tables per axis (convcore.plugin.extension_tables).
    last_start : the result's offset on the last axis (problem.starts[-1]).
    rows, seg, chunk : output rows and columns per task, and the chunk width B.
    rows_scratch, out_scratch : per-thread workspaces (see backends/im2col.py for sizes).

    Returns
    -------
    bool
        False when the extended signal holds NaN or inf: a banded product multiplies every
        sample of a chunk by the Toeplitz zeros, so such a value would spread over its chunk;
        the caller then recomputes exactly.
    """
    cdef Geometry geo
    cdef Py_ssize_t cxs[64]
    cdef Py_ssize_t cks[64]
    cdef Py_ssize_t cos[64]
    _setup(&geo, xs, ks, os, rows, seg, chunk, last_start, cxs, cks, cos, x.shape[0],
           out.shape[0], tables, nthreads)
    cdef Py_ssize_t ntasks = geo.n_lead_out * geo.n_row_blocks * geo.n_segs
    cdef Py_ssize_t width = tables.shape[1]
    cdef Py_ssize_t t, lead, r0, rb, c0, sb, nb, row_len, tid, kr, p, kp, r, q
    cdef Py_ssize_t longest = ceil_div(min(seg, geo.wo) + geo.kw - 1, chunk) * chunk
    if ntasks:
        if (toeplitz.shape[0] != geo.n_lead_taps * geo.kh
                or toeplitz.shape[1] != geo.pieces * chunk or toeplitz.shape[2] != chunk):
            raise ValueError(f"toeplitz must have shape ({geo.n_lead_taps * geo.kh}, "
                             f"{geo.pieces * chunk}, {chunk})")
        _check_scratch(rows_scratch.shape[0], rows_scratch.shape[1], nthreads,
                       geo.n_lead_taps * (min(rows, geo.ho) + geo.kh - 1) * longest
                       + geo.pieces * chunk, "rows_scratch")
        _check_scratch(out_scratch.shape[0], out_scratch.shape[1], nthreads,
                       min(rows, geo.ho) * longest, "out_scratch")
    cdef Py_ssize_t B = chunk, n_kr = geo.n_lead_taps * geo.kh
    cdef real_or_complex* e
    cdef real_or_complex* cbuf
    cdef Py_ssize_t nonfinite_blocks = 0
    cdef bint block_finite
    cdef Block blk
    # One parallel region for the whole call: on a loaded 2-core machine, waking the team
    # for many short regions cost more than the work (depthwise layers: 50x). The calling
    # thread (OpenMP thread 0) looks for Ctrl-C between its tasks.
    with nogil:
        for t in prange(ntasks, num_threads=nthreads, schedule="static"):
            if omp_get_thread_num() == 0:
                _check_signals()
            blk = _task_block(&geo, t)
            lead, r0, c0, rb, sb = blk.lead, blk.r0, blk.c0, blk.rows, blk.cols
            # Chunks per row: the row's Sb + kw - 1 extended samples, rounded up to B, so
            # the rows of every kernel row stack into one (rb * nb) x B matrix.
            nb = ceil_div(sb + geo.kw - 1, B)
            row_len = nb * B
            tid = omp_get_thread_num()
            e = &rows_scratch[tid, 0]
            cbuf = &out_scratch[tid, 0]
            block_finite = _build_extended_rows(&x[0], cxs, cks, cos, &tables[0, 0], width,
                                                &geo, lead, r0, rb, c0, sb + geo.kw - 1,
                                                row_len, fill, e)
            nonfinite_blocks += 0 if block_finite else 1
            # The piece beyond the last row reads past the block: keep it zero.
            memset(e + geo.n_lead_taps * (rb + geo.kh - 1) * row_len, 0,
                   geo.pieces * B * sizeof(real_or_complex))
            for kr in range(n_kr):
                for p in range(geo.pieces):
                    kp = min(B, B + geo.kw - 1 - p * B)
                    gemm_rowmajor(rb * nb, B, kp,
                                  e + ((kr // geo.kh) * (rb + geo.kh - 1) + kr % geo.kh)
                                  * row_len + p * B, B,
                                  &toeplitz[kr, p * B, 0], B,
                                  kr > 0 or p > 0, cbuf, B)
            for r in range(rb):
                memcpy(&out[0] + (lead * geo.ho + r0 + r) * geo.wo + c0, cbuf + r * row_len,
                       sb * sizeof(real_or_complex))
    return nonfinite_blocks == 0


def patch_correlate(const real_or_complex[::1] x, xs, ks, os,
                    const real_or_complex[::1] taps,
                    real_or_complex[::1] out, const Py_ssize_t[:, ::1] tables,
                    Py_ssize_t last_start, real_or_complex fill,
                    Py_ssize_t rows, Py_ssize_t seg,
                    real_or_complex[:, ::1] rows_scratch, real_or_complex[:, ::1] patch_scratch,
                    int nthreads):
    """Correlation by the textbook patch matrix: per task, (rows * seg) x taps patches times
    the taps as a vector. Same arguments as ``banded_correlate`` with the flat taps instead
    of Toeplitz matrices; `patch_scratch` holds rows * seg * (taps + 1) values per thread."""
    cdef Geometry geo
    cdef Py_ssize_t cxs[64]
    cdef Py_ssize_t cks[64]
    cdef Py_ssize_t cos[64]
    _setup(&geo, xs, ks, os, rows, seg, 1, last_start, cxs, cks, cos, x.shape[0],
           out.shape[0], tables, nthreads)
    cdef Py_ssize_t ntasks = geo.n_lead_out * geo.n_row_blocks * geo.n_segs
    cdef Py_ssize_t width = tables.shape[1], ntaps = taps.shape[0]
    cdef Py_ssize_t rb_most = min(rows, geo.ho), sb_most = min(seg, geo.wo)
    if ntasks:
        if ntaps != geo.n_lead_taps * geo.kh * geo.kw:
            raise ValueError(f"taps must hold {geo.n_lead_taps * geo.kh * geo.kw} values, "
                             f"got {ntaps}")
        _check_scratch(rows_scratch.shape[0], rows_scratch.shape[1], nthreads,
                       geo.n_lead_taps * (rb_most + geo.kh - 1) * (sb_most + geo.kw - 1),
                       "rows_scratch")
        _check_scratch(patch_scratch.shape[0], patch_scratch.shape[1], nthreads,
                       rb_most * sb_most * (ntaps + 1), "patch_scratch")
    cdef Py_ssize_t t, lead, r0, rb, c0, sb, row_len, tid, r, c, jl, a, b, col
    cdef real_or_complex* e
    cdef real_or_complex* cols
    cdef real_or_complex* dst
    cdef const real_or_complex* src
    cdef Block blk
    # One parallel region for the whole call: on a loaded 2-core machine, waking the team
    # for many short regions cost more than the work (depthwise layers: 50x). The calling
    # thread (OpenMP thread 0) looks for Ctrl-C between its tasks.
    with nogil:
        for t in prange(ntasks, num_threads=nthreads, schedule="static"):
            if omp_get_thread_num() == 0:
                _check_signals()
            blk = _task_block(&geo, t)
            lead, r0, c0, rb, sb = blk.lead, blk.r0, blk.c0, blk.rows, blk.cols
            row_len = sb + geo.kw - 1
            tid = omp_get_thread_num()
            e = &rows_scratch[tid, 0]
            cols = &patch_scratch[tid, 0]
            _build_extended_rows(&x[0], cxs, cks, cos, &tables[0, 0], width, &geo, lead,
                                 r0, rb, c0, row_len, row_len, fill, e)
            # cols[(r, c), (jl, a, b)] = E[jl, r + a, c + b]
            for r in range(rb):
                for c in range(sb):
                    dst = cols + (r * sb + c) * ntaps
                    col = 0
                    for jl in range(geo.n_lead_taps):
                        for a in range(geo.kh):
                            src = e + (jl * (rb + geo.kh - 1) + r + a) * row_len + c
                            for b in range(geo.kw):
                                dst[col + b] = src[b]
                            col = col + geo.kw
            dst = cols + rb * sb * ntaps
            gemm_rowmajor(rb * sb, 1, ntaps, cols, ntaps, &taps[0], 1, False, dst, 1)
            for r in range(rb):
                memcpy(&out[0] + (lead * geo.ho + r0 + r) * geo.wo + c0, dst + r * sb,
                       sb * sizeof(real_or_complex))


include "_grads.pxi"
