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
