# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The two memory passes of the ``fft`` backend that NumPy would run on one core.

FFTW does the transforms with its own threads; between them the spectra are multiplied
(one complex multiply per frequency) and, for overlap-add, the blocks are summed into the
result. Both are memory-bound passes over arrays of tens of megabytes, so they are split over
the engine's threads with ``prange`` and run without the GIL.
"""

from cython.parallel cimport prange

ctypedef fused cplx_t:
    float complex
    double complex

ctypedef fused flt_t:
    float
    double
    float complex
    double complex


def multiply_spectra(cplx_t[:, :, ::1] a, const cplx_t[:, :, ::1] b, int threads):
    """a[p, i, j] *= b[p, i or 0, j]: the signal's spectra times the kernel's, in place.

    ``b`` has as many middle rows as ``a`` or one (overlap-add: every block of the signal is
    multiplied by the same kernel spectrum).
    """
    cdef Py_ssize_t outer = a.shape[0], rows = a.shape[1], cols = a.shape[2]
    cdef Py_ssize_t q, o, i, j
    cdef bint same = b.shape[1] == rows
    if b.shape[0] != outer or b.shape[2] != cols or not (same or b.shape[1] == 1):
        raise ValueError("multiply_spectra: shapes do not broadcast")
    with nogil:
        for q in prange(outer * rows, num_threads=threads, schedule="static"):
            o = q // rows
            i = q - o * rows
            if same:
                for j in range(cols):
                    a[o, i, j] = a[o, i, j] * b[o, i, j]
            else:
                for j in range(cols):
                    a[o, i, j] = a[o, i, j] * b[o, 0, j]


def overlap_add(const flt_t[:, ::1] blocks, Py_ssize_t step, Py_ssize_t first,
                flt_t[::1] out, int threads):
    """out[i] = full[first + i], where full is the sum of block b placed at b * step.

    ``blocks`` has shape (nblocks, N) with ``N - step <= step``: each output sample is the sum
    of at most two blocks (the head of one and the tail of the one before).
    """
    cdef Py_ssize_t nblocks = blocks.shape[0], width = blocks.shape[1]
    cdef Py_ssize_t n = out.shape[0], i, t, b, r
    cdef flt_t acc
    if width - step > step:
        raise ValueError("overlap_add: blocks overlap more than one neighbour")
    with nogil:
        for i in prange(n, num_threads=threads, schedule="static"):
            t = first + i
            b = t // step
            r = t - b * step
            acc = 0
            if b < nblocks:
                acc = blocks[b, r]
            if b >= 1 and b - 1 < nblocks and r + step < width:
                acc = acc + blocks[b - 1, r + step]
            out[i] = acc
