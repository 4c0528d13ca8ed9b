# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The two memory passes of the ``fft`` backend that NumPy would run on one core.

FFTW does the transforms with its own threads; between them the spectra are multiplied
(one complex multiply per frequency) and, for overlap-add, the blocks are summed into the
result. Both are memory-bound passes over arrays of tens of megabytes, so they are split over
the engine's threads with ``prange`` and run without the GIL. Complex numbers are handled as
(re, im) pairs of reals: C's complex multiply checks for NaN/inf operands (``__muldc3``) and
does not vectorize, which made this pass 5x slower than the arithmetic written out.
"""

from cython.parallel cimport prange

ctypedef fused real_t:
    float
    double


def multiply_spectra(real_t[:, :, ::1] a, const real_t[:, :, ::1] b, int threads):
    """a[p, i, :] *= b[p, i or 0, :] for interleaved complex rows (re, im, re, im, ...).

    The arrays are complex spectra viewed as reals (last axis doubled). ``b`` has as many
    middle rows as ``a`` or one (overlap-add: every block of the signal is multiplied by the
    same kernel spectrum).
    """
    cdef Py_ssize_t outer = a.shape[0], rows = a.shape[1], cols = a.shape[2] // 2
    cdef Py_ssize_t q, o, i, j
    cdef real_t ar, ai, br, bi
    cdef real_t* pa
    cdef const real_t* pb
    if b.shape[0] != outer or b.shape[2] != a.shape[2] or not (b.shape[1] == rows
                                                               or b.shape[1] == 1):
        raise ValueError("multiply_spectra: shapes do not broadcast")
    if threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads}")
    cdef bint same = b.shape[1] == rows
    with nogil:
        for q in prange(outer * rows, num_threads=threads, schedule="static"):
            o = q // rows
            i = q - o * rows
            pa = &a[o, i, 0]
            pb = &b[o, i if same else 0, 0]
            for j in range(cols):
                ar = pa[2 * j]
                ai = pa[2 * j + 1]
                br = pb[2 * j]
                bi = pb[2 * j + 1]
                pa[2 * j] = ar * br - ai * bi
                pa[2 * j + 1] = ar * bi + ai * br


def overlap_add(const real_t[:, :, ::1] blocks, Py_ssize_t step, Py_ssize_t first,
                Py_ssize_t col0, real_t[:, ::1] out, int threads):
    """out[i, c] = full[first + i, col0 + c], full = the sum of block b placed at row b * step.

    ``blocks`` has shape (nblocks, N, C) (C = 1 for a 1-D signal; complex data is passed as
    interleaved reals, C and col0 doubled) with ``N - step <= step``: each output row is the
    head of one block plus the tail of the block before.
    """
    cdef Py_ssize_t nblocks = blocks.shape[0], width = blocks.shape[1]
    cdef Py_ssize_t n = out.shape[0], cols = out.shape[1]
    cdef Py_ssize_t b, r, t, c, lo, hi, tail = width - step
    cdef const real_t* head
    cdef const real_t* prev
    cdef real_t* dst
    if threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads}")
    if step < 1 or step > width:
        raise ValueError(f"overlap_add: step must be in [1, {width}] (the block length), "
                         f"got {step}")
    if nblocks < 1:
        raise ValueError("overlap_add: no blocks")
    if first < 0 or col0 < 0:
        raise ValueError(f"overlap_add: first and col0 must be non-negative, got {first}, "
                         f"{col0}")
    if tail > step:
        raise ValueError("overlap_add: blocks overlap more than one neighbour")
    if col0 + cols > blocks.shape[2]:
        raise ValueError("overlap_add: column window outside the blocks")
    with nogil:
        for b in prange(nblocks + 1, num_threads=threads, schedule="static"):
            lo = max(first, b * step) - b * step
            hi = min(first + n, (b + 1) * step) - b * step
            for r in range(lo, hi):
                dst = &out[b * step + r - first, 0]
                if b < nblocks:
                    head = &blocks[b, r, col0]
                    if b >= 1 and r < tail:
                        prev = &blocks[b - 1, r + step, col0]
                        for c in range(cols):
                            dst[c] = head[c] + prev[c]
                    else:
                        for c in range(cols):
                            dst[c] = head[c]
                elif r < tail:
                    prev = &blocks[b - 1, r + step, col0]
                    for c in range(cols):
                        dst[c] = prev[c]
                else:
                    for c in range(cols):
                        dst[c] = 0
