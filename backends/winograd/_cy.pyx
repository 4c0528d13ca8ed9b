# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Winograd loops: the weights transformed once per call, then, per block of tiles, the input
transform, one GEMM per tile position and the output transform (``_kernels.h``).

A block's transformed tiles and their products stay in the thread's cache between the three
steps; each OpenMP thread owns whole blocks and calls a single-threaded GEMM (the caller
holds the BLAS pools at one thread: ``convcore.plugin.serial_blas``).
"""

from cython.parallel cimport parallel, prange
from cpython.exc cimport PyErr_CheckSignals

from convcore._cy.blas cimport gemm_rowmajor
from convcore._cy.checks cimport check_at_least
from convcore._cy.openmp cimport omp_get_thread_num


cdef extern from "_kernels.h" nogil:
    ctypedef struct ccw_layer:
        const float* x
        float* out
        Py_ssize_t N, C, H, W, K, Ho, Wo
        Py_ssize_t pad_top, pad_left
        Py_ssize_t th, tw
    int CCW_LANES, CCW_PAD
    void ccw_weights(const float* w, Py_ssize_t K, Py_ssize_t C, int m, float* u,
                     Py_ssize_t k0, Py_ssize_t k1)
    void ccw_input(const ccw_layer* p, int m, Py_ssize_t t0, Py_ssize_t T, Py_ssize_t ld,
                   float* v)
    void ccw_output(const ccw_layer* p, int m, Py_ssize_t t0, Py_ssize_t T, Py_ssize_t ld,
                    const float* mm)


def lanes():
    """Tiles one vector of the build's target holds: block widths are multiples of it."""
    return CCW_LANES


def block_width(Py_ssize_t tiles):
    """Columns of a block's GEMM operands: `tiles` rounded up to whole vectors."""
    return (tiles + CCW_LANES - 1) // CCW_LANES * CCW_LANES


def scratch_words(Py_ssize_t m, Py_ssize_t C, Py_ssize_t K, Py_ssize_t block_tiles):
    """float32 words one thread needs for a block: its transformed tiles and their products."""
    return (m + 2) ** 2 * ((C + K) * block_width(block_tiles) + 2 * CCW_PAD)


cdef int _check_signals() except -1 nogil:
    with gil:
        PyErr_CheckSignals()
    return 0


def transform_weights(const float[:, :, :, ::1] w, Py_ssize_t m, float[::1] u):
    """u[xi, k, c] = (G w[k, c] G^T)[xi]: the filters at the (m + 2)^2 tile positions.

    The Python-callable twin of the loop `layer_forward` runs first (tests reach it here).
    """
    cdef Py_ssize_t K = w.shape[0], C = w.shape[1]
    _check_geometry(w, m)
    if u.shape[0] < (m + 2) ** 2 * K * C:
        raise ValueError(f"u must hold (m + 2)^2 * K * C = {(m + 2) ** 2 * K * C} floats, "
                         f"got {u.shape[0]}")
    if K and C:
        with nogil:
            ccw_weights(&w[0, 0, 0, 0], K, C, <int>m, &u[0], 0, K)


cdef int _check_geometry(const float[:, :, :, ::1] w, Py_ssize_t m) except -1:
    if m != 2 and m != 4:
        raise ValueError(f"m (the output tile side) must be 2 or 4, got {m}")
    if w.shape[2] != 3 or w.shape[3] != 3:
        raise ValueError(f"w must hold 3x3 filters, got {w.shape[2]}x{w.shape[3]}")
    return 0


def layer_forward(const float[:, :, :, ::1] x, const float[:, :, :, ::1] w,
                  float[:, :, :, ::1] out, Py_ssize_t m, Py_ssize_t pad_top,
                  Py_ssize_t pad_left, Py_ssize_t block_tiles, float[::1] u,
                  float[:, ::1] scratch, int nthreads, bint weights_ready=False):
    """out[n, k] = the 3x3 cross-correlation of the zero-padded x[n] with w[k] (stride 1).

    Parameters
    ----------
    x : (N, C, H, W); w : (K, C, 3, 3); out : (N, K, Ho, Wo), all C-contiguous float32.
        Ho and Wo may be anything: the input is read through its bounds, zero outside.
    m : 4 for F(4x4, 3x3), 2 for F(2x2, 3x3).
    pad_top, pad_left : the leading zero padding (the trailing padding is what Ho, Wo imply).
    block_tiles : tiles per block (per task).
    u : at least (m + 2)^2 * K * C floats: the transformed weights, written here (read
        as they are when `weights_ready`: ``transform_weights(w, m, u)`` of this very w).
    scratch : (>= nthreads, >= scratch_words(m, C, K, block_tiles)) per-thread workspace.
    nthreads : OpenMP threads.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t K = w.shape[0], Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t a2 = (m + 2) * (m + 2), ld, vs, ms, tiles, nblocks, b, k, t0, T, xi, tid
    cdef float* v
    cdef float* mm
    cdef ccw_layer p
    _check_geometry(w, m)
    check_at_least(block_tiles, 1, "block_tiles")
    check_at_least(nthreads, 1, "nthreads")
    if w.shape[1] != C:
        raise ValueError(f"w must have {C} channels (x's), got {w.shape[1]}")
    if out.shape[0] != N or out.shape[1] != K:
        raise ValueError(f"out must have shape ({N}, {K}, Ho, Wo), got "
                         f"({out.shape[0]}, {out.shape[1]}, {Ho}, {Wo})")
    if N == 0 or K == 0 or Ho == 0 or Wo == 0:
        return
    if C == 0:
        raise ValueError("x must have at least one channel")
    ld = block_width(block_tiles)
    if u.shape[0] < a2 * K * C:
        raise ValueError(f"u must hold (m + 2)^2 * K * C = {a2 * K * C} floats, "
                         f"got {u.shape[0]}")
    vs, ms = C * ld + CCW_PAD, K * ld + CCW_PAD
    if scratch.shape[0] < nthreads or scratch.shape[1] < a2 * (vs + ms):
        raise ValueError(f"scratch must have shape (>= {nthreads}, >= {a2 * (vs + ms)})")
    p.x, p.out = &x[0, 0, 0, 0], &out[0, 0, 0, 0]
    p.N, p.C, p.H, p.W, p.K, p.Ho, p.Wo = N, C, H, W, K, Ho, Wo
    p.pad_top, p.pad_left = pad_top, pad_left
    p.th, p.tw = (Ho + m - 1) // m, (Wo + m - 1) // m
    tiles = N * p.th * p.tw
    nblocks = (tiles + block_tiles - 1) // block_tiles
    # One parallel region for the call (waking a team costs more than a short loop on a
    # loaded machine: docs/design.md, "Threads"): the weights, a barrier, then the blocks.
    # The calling thread (OpenMP thread 0) looks for Ctrl-C between its blocks.
    with nogil, parallel(num_threads=nthreads):
        if not weights_ready:
            for k in prange(K, schedule="static"):
                ccw_weights(&w[0, 0, 0, 0], K, C, <int>m, &u[0], k, k + 1)
        for b in prange(nblocks, schedule="static"):
            tid = omp_get_thread_num()
            if tid == 0:
                _check_signals()
            v = &scratch[tid, 0]
            mm = v + a2 * vs
            t0 = b * block_tiles
            T = min(block_tiles, tiles - t0)
            ccw_input(&p, <int>m, t0, T, ld, v)
            for xi in range(a2):
                gemm_rowmajor(K, ld, C, &u[0] + xi * K * C, C, v + xi * vs, ld, False,
                              mm + xi * ms, ld)
            ccw_output(&p, <int>m, t0, T, ld, mm)


cdef extern from "_transposed.h" nogil:
    ctypedef struct cct_layer:
        const float* x
        float* out
        Py_ssize_t N, K, Hi, Wi, C, Ho, Wo
        Py_ssize_t s
        Py_ssize_t off_h, off_w
        Py_ssize_t start_h, start_w
        Py_ssize_t th, tw
    void cct_input(const cct_layer* p, Py_ssize_t n, Py_ssize_t ty0, Py_ssize_t rows,
                   Py_ssize_t ld, Py_ssize_t vs, float* v, float* rowbuf)
    void cct_output(const cct_layer* p, Py_ssize_t n, Py_ssize_t ty0, Py_ssize_t rows,
                    Py_ssize_t ld, Py_ssize_t ms, const float* mm, float* rowbuf)
    Py_ssize_t cct_rowbuf_words(Py_ssize_t rows, Py_ssize_t tw, Py_ssize_t s)
    void cct_weights(const float* w, Py_ssize_t K, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t s, float* u, Py_ssize_t k0, Py_ssize_t k1)


def transposed_scratch_words(Py_ssize_t K, Py_ssize_t C, Py_ssize_t s, Py_ssize_t tw,
                             Py_ssize_t block_rows):
    """float32 words one thread needs for a block of `block_rows` tile rows of `tw` tiles:
    its transformed tiles, their products (C * s^2 rows) and the row buffers."""
    cdef Py_ssize_t ld = block_rows * tw
    return 16 * ((K + C * s * s) * ld + 2 * CCW_PAD) + cct_rowbuf_words(block_rows, tw, s)


def transposed_weights(const float[:, :, :, ::1] w, Py_ssize_t s, float[:, :, ::1] u):
    """u[xi, (c, ry, rx), k]: the s^2 phases' 2x2 sub-kernels of w (K, C, kh, kw), kernel
    sides at most 2 s, transformed (G h G^T, 16 tile positions; `_transposed.h`)."""
    cdef Py_ssize_t K = w.shape[0], C = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    check_at_least(s, 1, "s")
    if kh > 2 * s or kw > 2 * s:
        raise ValueError(f"w's kernel sides must be at most 2 s = {2 * s}, got {kh}x{kw}")
    if u.shape[0] != 16 or u.shape[1] != C * s * s or u.shape[2] != K:
        raise ValueError(f"u must have shape (16, {C * s * s}, {K}), got "
                         f"({u.shape[0]}, {u.shape[1]}, {u.shape[2]})")
    if K and C and kh and kw:
        with nogil:
            cct_weights(&w[0, 0, 0, 0], K, C, kh, kw, s, &u[0, 0, 0], 0, K)


def transposed_forward(const float[:, :, :, ::1] x, const float[:, :, :, ::1] w,
                       float[:, :, ::1] u, float[:, :, :, ::1] out, Py_ssize_t s,
                       Py_ssize_t off_h, Py_ssize_t off_w, Py_ssize_t start_h,
                       Py_ssize_t start_w, Py_ssize_t th, Py_ssize_t tw, Py_ssize_t block_rows,
                       float[:, ::1] scratch, int nthreads):
    """The stride-`s` transposed convolution of x by F(3x3, 2x2) over its s^2 phases.

    Parameters
    ----------
    x : (N, K, Hi, Wi) float32, C-contiguous: the transposed layer's input.
    w : (K, C, kh, kw), kernel sides at most 2 s: the layer's weight.
    u : (16, C * s^2, K): filled with the phases' 2x2 sub-kernels, transformed (G h G^T),
        rows (c, ry, rx) (``transposed_weights``).
    out : (N, C, Ho, Wo): every element is written.
    s : the stride of both axes.
    off_h, off_w : the windows' input P[u] = x[u + off] (zero outside x).
    start_h, start_w : window t of phase r lands on output t * s + r - start.
    th, tw : tiles (three windows a side) per image column and row.
    block_rows : tile rows per block (per task), counted over the batch: a block may span
        images.
    scratch : (>= nthreads, >= transposed_scratch_words(K, C * s^2, tw, block_rows)).
    nthreads : OpenMP threads.
    """
    cdef Py_ssize_t N = x.shape[0], K = x.shape[1], C = out.shape[1]
    cdef Py_ssize_t rows_out = C * s * s, ld, vs, ms, total, ntasks, t, g, g0, g1, rows
    cdef Py_ssize_t xi, tid, k
    cdef float* v
    cdef float* mm
    cdef float* rowbuf
    cdef cct_layer p
    check_at_least(s, 1, "s")
    check_at_least(block_rows, 1, "block_rows")
    check_at_least(nthreads, 1, "nthreads")
    check_at_least(th, 0, "th")
    check_at_least(tw, 0, "tw")
    if out.shape[0] != N:
        raise ValueError(f"out must hold {N} images (x's), got {out.shape[0]}")
    if u.shape[0] != 16 or u.shape[1] != rows_out or u.shape[2] != K:
        raise ValueError(f"u must have shape (16, {rows_out}, {K}), got "
                         f"({u.shape[0]}, {u.shape[1]}, {u.shape[2]})")
    if w.shape[0] != K or w.shape[1] != C or w.shape[2] > 2 * s or w.shape[3] > 2 * s:
        raise ValueError(f"w must have shape ({K}, {C}, kh, kw) with kh, kw <= 2 s = {2 * s}, "
                         f"got ({w.shape[0]}, {w.shape[1]}, {w.shape[2]}, {w.shape[3]})")
    if N == 0 or C == 0 or out.shape[2] == 0 or out.shape[3] == 0:
        return
    if K == 0:
        raise ValueError("x must have at least one channel")
    # Every output row and column is some window's: th, tw must cover them.
    if (3 * th * s - start_h < out.shape[2]) or (3 * tw * s - start_w < out.shape[3]):
        raise ValueError("th, tw: the tiles do not cover the output")
    ld = block_rows * tw
    vs, ms = K * ld + CCW_PAD, rows_out * ld + CCW_PAD
    if scratch.shape[0] < nthreads or scratch.shape[1] < transposed_scratch_words(
            K, C, s, tw, block_rows):
        raise ValueError(f"scratch must have shape (>= {nthreads}, >= "
                         f"{transposed_scratch_words(K, C, s, tw, block_rows)})")
    p.x, p.out = &x[0, 0, 0, 0], &out[0, 0, 0, 0]
    p.N, p.K, p.Hi, p.Wi = N, K, x.shape[2], x.shape[3]
    p.C, p.Ho, p.Wo = C, out.shape[2], out.shape[3]
    p.s, p.off_h, p.off_w, p.start_h, p.start_w, p.th, p.tw = (s, off_h, off_w, start_h,
                                                                start_w, th, tw)
    # Blocks are runs of block_rows tile rows over the whole batch: a block may span images
    # (small images would otherwise make narrow products).
    total = N * th
    ntasks = (total + block_rows - 1) // block_rows
    # One parallel region: the weights (filters split over the threads), a barrier, the blocks.
    with nogil, parallel(num_threads=nthreads):
        # One contiguous run of filters per thread: each row of u is then written along k.
        for k in prange(nthreads, schedule="static"):
            cct_weights(&w[0, 0, 0, 0], K, C, w.shape[2], w.shape[3], s, &u[0, 0, 0],
                        k * K // nthreads, (k + 1) * K // nthreads)
        for t in prange(ntasks, schedule="static"):
            tid = omp_get_thread_num()
            if tid == 0:
                _check_signals()
            v = &scratch[tid, 0]
            mm = v + 16 * vs
            rowbuf = mm + 16 * ms
            g0 = t * block_rows
            g1 = min(g0 + block_rows, total)
            g = g0
            while g < g1:
                rows = min(th - g % th, g1 - g)
                cct_input(&p, g // th, g % th, rows, ld, vs, v + (g - g0) * tw, rowbuf)
                g = g + rows
            for xi in range(16):
                gemm_rowmajor(rows_out, (g1 - g0) * tw, K, &u[xi, 0, 0], K, v + xi * vs, ld,
                              False, mm + xi * ms, ld)
            g = g0
            while g < g1:
                rows = min(th - g % th, g1 - g)
                cct_output(&p, g // th, g % th, rows, ld, ms, mm + (g - g0) * tw, rowbuf)
                g = g + rows
